"""Issue 29 item 10: a raw run whose partitions are partly without a source file still checks its rows.

Such a run records one materialization per partition with data (none for the others) and yields no
Output, so Dagster skips the raw asset's check steps; the asset then evaluates them itself."""

from __future__ import annotations

from datetime import date

import dagster as dg

from chimera_assets.definitions import build_definitions
from chimera_assets.demo.data import write_demo_files
from chimera_assets.lib.checks.evaluation import summarise_evaluations
from chimera_assets_tests.dagster_helpers import asset_key, run_range
from chimera_assets_tests.reliability.helpers import H1


def test_a_run_mixing_raw_partitions_with_and_without_files_evaluates_the_raw_checks(tmp_path, monkeypatch):
    monkeypatch.setenv("CHIMERA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(tmp_path / "landing"))
    write_demo_files(tmp_path / "landing", ["ZL", "MES"], date(2024, 3, 1), date(2024, 3, 7), files="daily")
    instance = dg.DagsterInstance.ephemeral()
    # 03-04..03-06 have files, 03-07..03-08 do not.
    res = run_range([H1], "2024-03-04", "2024-03-08", "ZL", "MES", defs=build_definitions(), instance=instance)
    assert res.success
    mats = res.get_asset_materialization_events()
    assert 0 < len(mats) < 10, "the mixed path records a materialization per partition with data"
    evals = [e for e in res.get_asset_check_evaluations() if e.asset_key == asset_key(H1)]
    names = {e.check_name for e in evals}
    assert {"keys_not_null", "no_duplicate_keys", "ohlc_consistent", "column_schema_change",
            "source_files_present"} <= names, names
    passed, failed, warned = summarise_evaluations(evals)
    assert passed >= 5 and not failed, (passed, failed, warned)
    # The same checks in a run where every partition has a file (the Output path) give the same names.
    res_full = run_range([H1], "2024-03-04", "2024-03-06", "ZL", "MES", defs=build_definitions(), instance=instance)
    full = {e.check_name for e in res_full.get_asset_check_evaluations() if e.asset_key == asset_key(H1)}
    assert full == names, (full, names)


def test_the_record_range_tag_takes_the_fast_path_with_its_check_steps(tmp_path, monkeypatch):
    """The tag a caller (the CLI's raw stage) may set: one Output for the range, checks as steps."""
    from chimera_assets.defs.market_data.assets import RECORD_RANGE_TAG
    from chimera_assets_tests.dagster_helpers import QUIET

    monkeypatch.setenv("CHIMERA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(tmp_path / "landing"))
    write_demo_files(tmp_path / "landing", ["ZL", "MES"], date(2024, 3, 1), date(2024, 3, 7), files="daily")
    job = build_definitions().resolve_implicit_global_asset_job_def().get_subset(asset_selection={asset_key(H1)})
    res = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), run_config=QUIET,
        tags={"dagster/asset_partition_range_start": "2024-03-04|ZL",
              "dagster/asset_partition_range_end": "2024-03-08|MES", RECORD_RANGE_TAG: "1"},
    )
    assert res.success
    assert len(res.get_asset_materialization_events()) == 10  # the whole range, from one Output
    evals = [e for e in res.get_asset_check_evaluations() if e.asset_key == asset_key(H1)]
    assert {"ohlc_consistent", "source_files_present"} <= {e.check_name for e in evals}
