"""``chimera bigquery migrate-partitioning``: DAY-partitioned tables (the old layout) -> MONTH, on the emulator."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from chimera_assets import cli, schemas
from chimera_assets.schemas import TableSpec
from chimera_assets.warehouse.base import Slice, WarehouseError
from chimera_assets.warehouse.bigquery_backend import BigQueryWarehouse, bigquery_schema
from chimera_assets.warehouse.bigquery_jobs import JobStats
from chimera_assets.warehouse.bigquery_migrate import (
    ABSENT,
    OK,
    REBUILD,
    UPDATE,
    apply_migration,
    plan_migration,
)
from chimera_assets_tests.bq_fixtures import EMULATOR_PROJECT, bigquery_warehouse, capture_jobs  # noqa: F401
from chimera_assets_tests.test_bigquery_production import _partitions, synthetic_frame, weekdays

pytestmark = pytest.mark.bigquery


def create_old_layout(wh: BigQueryWarehouse, spec: TableSpec, frame: pl.DataFrame) -> None:
    """The table as the backend created it before the MONTH grain: DAY partitions, clustered by symbol."""
    from google.cloud import bigquery as bq

    wh._ensure_dataset(spec)
    table = bq.Table(wh.table_id(spec), schema=bigquery_schema(spec))
    table.time_partitioning = bq.TimePartitioning(type_="DAY", field=spec.date_column)
    table.clustering_fields = [spec.symbol_column]
    wh.client.create_table(table)
    wh._load(spec, frame, wh.table_id(spec), {}, JobStats())


def month_counts(frame: pl.DataFrame, col: str) -> dict[str, int]:
    return dict(frame.group_by(pl.col(col).dt.strftime("%Y%m")).len().rows())


def test_day_partitioned_tables_are_copied_verified_and_swapped(bigquery_warehouse):  # noqa: F811
    wh = bigquery_warehouse
    bars, feats, matrix = schemas.SESSION_BARS, schemas.MARKET_FEATURES, schemas.DAILY_ML_MATRIX
    dates = weekdays(dt.date(2023, 11, 1), dt.date(2024, 3, 29))
    old_rows = synthetic_frame(bars, dates, 7.0)
    create_old_layout(wh, bars, old_rows)
    # grain right, clustering old: updated in place
    create_old_layout(wh, feats, synthetic_frame(feats, dates[:3]))
    table = wh.client.get_table(wh.table_id(feats))
    wh.client.delete_table(table)
    table.time_partitioning.type_ = "MONTH"
    from google.cloud import bigquery as bq

    new = bq.Table(wh.table_id(feats), schema=table.schema)
    new.time_partitioning = bq.TimePartitioning(type_="MONTH", field="trade_date")
    new.clustering_fields = ["symbol"]
    wh.client.create_table(new)
    wh.ensure_table(schemas.PIVOTS)  # already right

    # the backend refuses to write into the old grain, naming the command
    with pytest.raises(WarehouseError, match=r"features.session_bars is partitioned by DAY.*migrate-partitioning"):
        wh.merge(bars, old_rows.head(1), Slice.from_keys([(dates[0], "ZL")]))

    specs = [bars, feats, schemas.PIVOTS, matrix]
    plans = {p.spec.fqn: p for p in plan_migration(wh, specs)}
    assert {k: p.action for k, p in plans.items()} == {
        bars.fqn: REBUILD, feats.fqn: UPDATE, schemas.PIVOTS.fqn: OK, matrix.fqn: ABSENT}
    assert plans[bars.fqn].num_rows == len(dates)
    assert wh.table_info(bars)["partition_type"] == "DAY"  # planning changed nothing

    jobs = capture_jobs(wh)
    apply_migration(wh, list(plans.values()), now=dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC))
    migration_jobs = list(jobs)
    info = wh.table_info(bars)
    assert (info["partition_type"], info["partition_field"], info["clustering"]) == (
        "MONTH", "trade_date", ["symbol", "trade_date"])
    after = wh.read(bars)
    assert after.height == len(dates) and month_counts(after, "trade_date") == month_counts(old_rows, "trade_date")
    assert after.sort("trade_date").equals(old_rows.sort("trade_date"))
    assert _partitions(wh, bars) == ["202311", "202312", "202401", "202402", "202403"]
    backup = wh.client.get_table(f"{wh.project}.{wh.dataset_id('features')}.session_bars__day_202612030930")
    assert backup.time_partitioning.type_ == "DAY" and backup.num_rows == len(dates)
    assert wh.table_info(feats)["clustering"] == ["symbol", "trade_date"]
    # every migration job carries the cost controls; the copy is ONE statement over 5 month partitions
    assert migration_jobs and all(j.method == "query" for j in migration_jobs)
    assert all(j.config.maximum_bytes_billed == wh.maximum_bytes_billed for j in migration_jobs)
    assert all(j.labels.get("app") == "chimera" and j.labels["op"].startswith("migrate") for j in migration_jobs)
    assert len([j for j in migration_jobs if j.sql.startswith("INSERT INTO")]) == 1
    # the migrated table takes writes again, and a second plan finds nothing to do
    wh._known_tables.clear()
    wh.merge(bars, synthetic_frame(bars, dates[:1], 8.0), Slice.from_keys([(dates[0], "ZL")]))
    assert wh.read(bars).filter(pl.col("trade_date") == dates[0])["close"].to_list() == [8.0]
    assert {p.action for p in plan_migration(wh, specs)} == {OK, ABSENT}


def test_cli_dry_run_changes_nothing_and_apply_migrates(bigquery_warehouse, monkeypatch, capsys):  # noqa: F811
    wh = bigquery_warehouse
    spec = schemas.OHLCV_1D
    dates = weekdays(dt.date(2024, 1, 29), dt.date(2024, 2, 2))
    create_old_layout(wh, spec, synthetic_frame(spec, dates))
    monkeypatch.setenv("CHIMERA_WAREHOUSE", "bigquery")
    monkeypatch.setenv("CHIMERA_BQ_ENDPOINT", wh.endpoint)
    monkeypatch.setenv("CHIMERA_BQ_PROJECT", EMULATOR_PROJECT)
    monkeypatch.setenv("CHIMERA_BQ_DATASET_PREFIX", wh.dataset_prefix)
    assert cli.main(["bigquery", "migrate-partitioning", "--roots", "ZL"]) == 0
    out = capsys.readouterr().out
    assert "dry run" in out and "market_data.databento_futures_ohlcv_1d" in out and "rebuild" in out
    assert wh.table_info(spec)["partition_type"] == "DAY"
    assert cli.main(["bigquery", "migrate-partitioning", "--roots", "ZL", "--apply"]) == 0
    assert "applied" in capsys.readouterr().out
    assert wh.table_info(spec)["partition_type"] == "MONTH" and wh.row_count(spec) == len(dates)
    monkeypatch.setenv("CHIMERA_WAREHOUSE", "duckdb")
    assert cli.main(["bigquery", "migrate-partitioning"]) == 2
