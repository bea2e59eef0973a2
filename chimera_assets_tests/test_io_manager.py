"""The MERGE IO manager inside Dagster: multi-date AND multi-root runs, rewrites, rejections, lookbacks."""


import json
from datetime import date

import dagster as dg
import polars as pl
import pytest

from chimera_assets.definitions import build_definitions
from chimera_assets.lib.asset_common import lookback
from chimera_assets.lib.io_manager import WarehouseIOManager, WarehouseResource
from chimera_assets.lib.partitions import date_symbol_partitions, parse_partition_keys
from chimera_assets.lib.runner import root_cause
from chimera_assets.schemas import SESSION_BARS
from chimera_assets.warehouse import get_warehouse
from chimera_assets_tests.frames import rows_for, session_rows

CLOSE = {"value": 1.0, "drop": set(), "extra": None}


@dg.asset(key=dg.AssetKey(["features", "session_bars"]), partitions_def=date_symbol_partitions(),
          io_manager_key="warehouse_io", backfill_policy=dg.BackfillPolicy.single_run())
def toy_bars(context: dg.AssetExecutionContext) -> pl.DataFrame:
    keys = [k for k in parse_partition_keys(context.partition_keys) if k not in CLOSE["drop"]]
    if CLOSE["extra"]:
        keys.append(CLOSE["extra"])
    return rows_for(SESSION_BARS, session_rows(keys, close=CLOSE["value"]))


@dg.asset(partitions_def=date_symbol_partitions(), io_manager_key="mem",
          ins={"bars": dg.AssetIn(dg.AssetKey(["features", "session_bars"]), partition_mapping=lookback(3))})
def toy_reader(bars: pl.DataFrame) -> int:
    return bars.height


def _defs():
    wh = WarehouseResource()
    return dg.Definitions(
        assets=[toy_bars, toy_reader],
        resources={"warehouse_io": WarehouseIOManager(warehouse=wh), "mem": dg.InMemoryIOManager()},
    )


def _run(start, end, r0, r1, select=("features/session_bars",), raise_on_error=True):
    job = _defs().resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey.from_user_string(s) for s in select}
    )
    return job.execute_in_process(
        tags={"dagster/asset_partition_range_start": f"{start}|{r0}", "dagster/asset_partition_range_end": f"{end}|{r1}"},
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=raise_on_error,
    )


@pytest.fixture(autouse=True)
def _reset():
    CLOSE.update(value=1.0, drop=set(), extra=None)


def test_one_run_over_three_dates_and_two_roots_stores_all_six_slices():
    res = _run("2024-01-03", "2024-01-05", "ZL", "MES")
    assert res.success
    back = get_warehouse().read(SESSION_BARS)
    assert sorted(back.select("trade_date", "symbol").rows()) == sorted(
        (date(2024, 1, d), s) for d in (3, 4, 5) for s in ("ZL", "MES")
    )
    mats = res.get_asset_materialization_events()
    assert len(mats) == 6
    md = mats[0].materialization.metadata
    assert md["dagster/table_name"].value == "duckdb:features.session_bars"
    assert [c for c, _ in json.loads(md["chimera/columns"].value)] == SESSION_BARS.column_names
    # The full TableSchema is definition metadata (cheap per partition event), as the UI shows it.
    defn = build_definitions().resolve_asset_graph().get(dg.AssetKey(["features", "session_bars"]))
    assert [c.name for c in defn.metadata["dagster/column_schema"].columns] == SESSION_BARS.column_names
    # A range run: the total is not passed off as each partition's row count.
    assert md["rows_written_in_run"].value == 6 and md["partitions_written"].value == 6
    assert "dagster/partition_row_count" not in md


def test_rerun_three_times_then_fewer_rows_deletes_only_dropped_keys():
    for _ in range(3):
        _run("2024-01-03", "2024-01-05", "ZL", "MES")
    _run("2024-01-08", "2024-01-08", "ZL", "ZL")
    CLOSE.update(value=2.0, drop={(date(2024, 1, 4), "ZL")})
    _run("2024-01-03", "2024-01-05", "ZL", "ZL")
    back = get_warehouse().read(SESSION_BARS).sort("trade_date", "symbol")
    assert back.select("trade_date", "symbol").is_duplicated().sum() == 0
    zl = back.filter(pl.col("symbol") == "ZL")
    assert zl["trade_date"].to_list() == [date(2024, 1, 3), date(2024, 1, 5), date(2024, 1, 8)]
    assert zl["close"].to_list() == [2.0, 2.0, 1.0]  # the 01-08 slice was not part of the rewrite
    assert back.filter(pl.col("symbol") == "MES")["close"].to_list() == [1.0, 1.0, 1.0]


def test_row_outside_the_run_partitions_fails_the_step_and_writes_nothing():
    CLOSE.update(extra=(date(2024, 2, 1), "ES"))
    res = _run("2024-01-03", "2024-01-03", "ZL", "ZL", raise_on_error=False)
    assert not res.success
    msg = root_cause(next(e for e in res.all_events if e.is_step_failure).step_failure_data.error)
    assert "features.session_bars" in msg and "outside the partitions" in msg and "ES" in msg
    assert get_warehouse().read(SESSION_BARS).height == 0


def test_lookback_mapping_loads_earlier_partitions():
    _run("2024-01-02", "2024-01-05", "ZL", "ZL")
    res = _run("2024-01-05", "2024-01-05", "ZL", "ZL", select=("toy_reader",))
    # 2024-01-05 with a 3-partition lookback reads 01-02..01-05: four rows.
    assert res.output_for_node("toy_reader") == 4
