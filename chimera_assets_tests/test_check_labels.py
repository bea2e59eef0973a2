"""Check history entries name what they checked: a range run's evaluations (stored without a partition
when checks are not per-partition) carry the dates and roots of the run in ``checked``."""

from __future__ import annotations

from datetime import date

import dagster as dg

from chimera_assets.defs.features.assets import FEATURE_ASSETS
from chimera_assets.defs.market_data.assets import RAW_ASSETS
from chimera_assets.defs.reference.assets import REFERENCE_ASSETS
from chimera_assets.demo.data import write_demo_files
from chimera_assets.lib.checks.build import build_checks
from chimera_assets.lib.checks.table_checks import checked_label
from chimera_assets.lib.io_manager import WarehouseIOManager, WarehouseResource
from chimera_assets.lib.resources import DatabentoSource, PolicySource
from chimera_assets.quality.registry import RULES

RAW_1H = dg.AssetKey(["market_data", "databento_futures_ohlcv_1h"])


def test_checked_label_names_dates_roots_and_count():
    keys = [(date(2024, 1, 2), "ZL"), (date(2024, 1, 3), "ZL"), (date(2024, 1, 2), "MES"), (date(2024, 1, 3), "MES")]
    assert checked_label(keys) == "2024-01-02..2024-01-03 x MES,ZL (4 partitions)"
    assert checked_label([(date(2024, 1, 2), None)]) == "2024-01-02 (1 partition)"
    assert checked_label(None) == "whole table"


def test_range_run_check_evaluations_name_their_partitions(tmp_path):
    landing = tmp_path / "landing"
    write_demo_files(landing, ["ZL"], date(2024, 1, 1), date(2024, 2, 1))
    wr = WarehouseResource(duckdb_path=str(tmp_path / "w.duckdb"))
    defs = dg.Definitions(
        assets=[*RAW_ASSETS, *REFERENCE_ASSETS, *FEATURE_ASSETS],
        asset_checks=build_checks(),
        resources={"warehouse": wr, "warehouse_io": WarehouseIOManager(warehouse=wr),
                   "databento": DatabentoSource(landing_dir=str(landing)), "policy": PolicySource()},
    )
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={RAW_1H})
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
        tags={"dagster/asset_partition_range_start": "2024-01-08|ZL", "dagster/asset_partition_range_end": "2024-01-12|ZL"},
    )
    assert result.success
    evals = [e for e in result.get_asset_check_evaluations() if e.asset_key == RAW_1H and e.check_name in RULES]
    assert evals, "no check evaluated on the raw table"
    for ev in evals:
        assert ev.partition is None
        assert "checked" in ev.metadata, (ev.check_name, sorted(ev.metadata))
        assert ev.metadata["checked"].value == "2024-01-08..2024-01-12 x ZL (5 partitions)"
