"""`chimera run` records a raw partition as materialized only where a source loaded it (issue 14 case 6):
the runner gives the raw assets a run of their own, in which they record per-partition materializations
for the partitions with data, and the next stage fails naming the session days that have none."""

from __future__ import annotations

from datetime import date

import dagster as dg

from chimera_assets.definitions import build_definitions
from chimera_assets.demo.data import write_demo_files
from chimera_assets.lib.runner import run_graph
from chimera_assets.settings import get_settings
from chimera_assets.warehouse import get_warehouse

RAW_1H = dg.AssetKey(["market_data", "databento_futures_ohlcv_1h"])


def test_cli_range_beyond_the_files_marks_only_loaded_raw_partitions_and_names_the_missing(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    write_demo_files(landing, ["ZL"], date(2024, 1, 1), date(2024, 2, 1))  # UTC days of January only
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(landing))
    instance = dg.DagsterInstance.ephemeral()
    lines: list[str] = []
    summary = run_graph(build_definitions(), date(2024, 1, 2), date(2024, 2, 9), ["ZL"], instance,
                        get_warehouse(get_settings()), progress=lines.append, include_training=False)
    done = instance.get_materialized_partitions(RAW_1H)
    january = {k for k in done if k.startswith("2024-01")}
    assert len(january) >= 20, sorted(done)
    assert not {k for k in done if k.startswith("2024-02-0") and k != "2024-02-01|ZL"}, sorted(done)
    # The session bars stage refuses to publish empty session days: one error naming them.
    assert not summary.success
    err = " ".join(s.error or "" for s in summary.stages)
    assert "2024-02-05|ZL" in err or "2024-02-06|ZL" in err, "\n".join(lines) + err
