"""`chimera run` records a raw partition as materialized only where a source loaded it (issue 14 case 6):
the runner gives the raw assets a run of their own, in which they record per-partition materializations
for the partitions with data. The dates after the last loaded bar do not fail the run (SPEC 6.3,
2026-12-08): the summary names them and they are listed as missing."""

from __future__ import annotations

from datetime import date

import dagster as dg

from chimera_assets.definitions import build_definitions
from chimera_assets.demo.data import write_demo_files
from chimera_assets.lib.runner import format_summary, run_graph
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
    # The run builds what exists and names the dates beyond the loaded data (2024-02-02..02-09, 6 trade dates).
    assert summary.success, "\n".join(lines)
    assert summary.beyond_data == {"ZL": (date(2024, 2, 2), date(2024, 2, 9), 6)}
    assert any("2024-02-02..2024-02-09 (6 trade date(s)) are after its last loaded bar" in ln for ln in lines), lines
    missing_n, missing = summary.gap_days["missing"]
    assert missing_n == 6 and "2024-02-05|ZL" in missing and "2024-02-09|ZL" in missing
    text = format_summary(summary)
    assert "beyond the loaded data: ZL 2024-02-02..2024-02-09 (6 trade date(s), empty)" in text, text
