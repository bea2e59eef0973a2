"""Raw runs record a materialization only for partitions with a source (issue 14 case 6, raw part), and
declarative automation sees those per-partition events like a normal Output's (demo data)."""

from __future__ import annotations

from datetime import date

import dagster as dg

from chimera_assets.demo.data import write_demo_files
from chimera_assets_tests.test_automation import (  # noqa: F401 - _quiet is an autouse fixture
    CHAIN,
    NEW_DAY,
    RAW_1H,
    _first_tick,
    _history,
    _only,
    _quiet,
    _requested,
    _tick,
    defs,
)


def test_a_raw_range_with_a_partition_without_source_records_the_others_and_automation_follows_them(
    defs, tmp_path, monkeypatch  # noqa: F811 - the module fixture
):
    landing = tmp_path / "landing"
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(landing))
    write_demo_files(landing, ["ZL"], date(2024, 3, 28), date(2024, 4, 2))  # ZL only: MES has no source
    instance = dg.DagsterInstance.ephemeral()
    _history(instance, policy_dates=[NEW_DAY])
    tick1 = _first_tick(defs, instance)
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={RAW_1H})
    res = job.execute_in_process(
        instance=instance, run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        tags={"dagster/asset_partition_range_start": f"{NEW_DAY}|ZL",
              "dagster/asset_partition_range_end": f"{NEW_DAY}|MES"},
    )
    assert res.success
    mats = {str(e.asset_materialization.partition) for e in instance.fetch_materializations(RAW_1H, limit=1000).records
            if e.run_id == res.run_id}
    assert mats == {f"{NEW_DAY}|ZL"}, mats  # MES has no file: not recorded as materialized
    got = _requested(_tick(defs, instance, tick1.cursor))
    assert _only(got, "features/") == {k.to_user_string(): {f"{NEW_DAY}|ZL"} for k in CHAIN}
