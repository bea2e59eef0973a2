"""BigQuery production limits on the emulator: partition grain (4,000 partitions per job), cost controls
and labels on every job, get-before-create, retries, Dagster resource wiring. Offline tests first."""

from __future__ import annotations

import dataclasses
import datetime as dt

import dagster as dg
import polars as pl
import pytest

from chimera_assets import schemas
from chimera_assets.schemas import ALL_TABLES, DAILY_ML_MATRIX, REGIME_WEIGHTS, TableSpec, training_table
from chimera_assets.warehouse.base import Slice, WarehouseError
from chimera_assets.warehouse.bigquery_backend import BigQueryWarehouse
from chimera_assets.warehouse.bigquery_jobs import RetryPolicy, is_retryable, sanitize_labels, slice_labels
from chimera_assets_tests.bq_fixtures import (  # noqa: F401 - fixtures
    EMULATOR_PROJECT,
    bigquery_session,
    bigquery_warehouse,
    capture_jobs,
)

bigquery = pytest.mark.bigquery
FIRST, LAST = dt.date(2010, 6, 7), dt.date(2026, 12, 3)  # the spec's first trade date .. today
BQ_PARTITION_LIMIT = 4000


def weekdays(start: dt.date, end: dt.date) -> list[dt.date]:
    days = pl.date_range(start, end, "1d", eager=True)
    return days.filter(days.dt.weekday() <= 5).to_list()


def synthetic_frame(spec: TableSpec, dates: list[dt.date], value: float = 1.0) -> pl.DataFrame:
    """One row per date (and root "ZL" where the table has a symbol), every column typed by the spec;
    STRUCT columns NULL. Synthetic: only the keys and the row count matter here."""
    n = len(dates)
    cols: dict[str, pl.Series] = {}
    for c in spec.columns:
        dtype = c.polars_dtype()
        if c.name == spec.date_column:
            s = pl.Series(c.name, dates, dtype)
        elif c.name == spec.symbol_column:
            s = pl.Series(c.name, ["ZL"] * n, dtype)
        elif c.type == "TIMESTAMP":
            s = pl.Series(c.name, [dt.datetime(d.year, d.month, d.day, 14, tzinfo=dt.UTC) for d in dates], dtype)
        elif c.type == "DATE":
            s = pl.Series(c.name, dates, dtype)
        elif c.type == "FLOAT64":
            s = pl.Series(c.name, [value] * n, dtype)
        elif c.type == "INT64":
            s = pl.Series(c.name, [1] * n, dtype)
        elif c.type == "BOOL":
            s = pl.Series(c.name, [True] * n, dtype)
        elif c.type == "STRING":
            s = pl.Series(c.name, ["x"] * n, dtype)
        else:
            s = pl.Series(c.name, [None] * n, dtype)
        cols[c.name] = s
    return pl.DataFrame(list(cols.values()))


# -- offline ------------------------------------------------------------------------------------------


def test_every_date_partitioned_spec_is_month_partitioned_and_clustered_by_symbol_and_date():
    specs = [s for s in ALL_TABLES.values() if s.date_column] + [training_table("ZL")]
    assert len(specs) >= 12
    for spec in specs:
        assert spec.partition_granularity == "MONTH", spec.fqn
        clustering = spec.bigquery_clustering
        assert spec.date_column in clustering, spec.fqn
        if spec.symbol_column:
            assert clustering[:2] == (spec.symbol_column, spec.date_column), spec.fqn
    assert DAILY_ML_MATRIX.bigquery_clustering == ("symbol", "data_date", "regime_name")
    raw = {s.fqn for s in specs if s.partition_filter_required}
    assert raw == {schemas.OHLCV_1M.fqn, schemas.OHLCV_1H.fqn, schemas.OHLCV_1D.fqn, schemas.STATISTICS.fqn}


def test_labels_follow_bigquery_rules():
    labels = sanitize_labels({"Dagster Run": "ABC/def", "asset": "features.daily_ml_matrix", "x": None,
                              "1bad": "v" * 80})
    assert labels == {"dagster_run": "abc_def", "asset": "features_daily_ml_matrix", "k1bad": "v" * 63}
    s = Slice.from_keys([(dt.date(2024, 1, 3), "ZL"), (dt.date(2024, 1, 5), "MES")])
    assert slice_labels(s) == {"partition_range": "2024-01-03_2024-01-05", "roots": "mes-zl"}
    assert slice_labels(Slice.whole_table()) == {"partition_range": "all"}


def _api_error(cls, message: str, reason: str | None = None):
    return cls(message, errors=[{"reason": reason, "message": message}] if reason else [])


def test_retry_predicate_uses_types_and_reasons():
    from google.api_core import exceptions as ex

    assert is_retryable(_api_error(ex.Conflict, "Already Exists"))
    assert is_retryable(_api_error(ex.TooManyRequests, "slow down"))
    assert is_retryable(_api_error(ex.ServiceUnavailable, "try again"))
    assert is_retryable(_api_error(ex.Forbidden, "Exceeded rate limits", "rateLimitExceeded"))
    assert is_retryable(_api_error(ex.BadRequest, "oops", "backendError"))
    assert is_retryable(_api_error(ex.BadRequest, "Could not serialize access to table t due to concurrent update",
                                   "invalidQuery"))
    assert not is_retryable(_api_error(ex.BadRequest, "Syntax error", "invalidQuery"))
    assert not is_retryable(_api_error(ex.Forbidden, "Query exceeded limit for bytes billed", "bytesBilledLimitExceeded"))
    assert not is_retryable(_api_error(ex.Forbidden, "Access Denied", "accessDenied"))
    assert not is_retryable(_api_error(ex.Forbidden, "Quota exceeded: too many bytes per day", "quotaExceeded"))
    assert not is_retryable(ValueError("concurrent update"))  # only Google API errors


# -- against the emulator ----------------------------------------------------------------------------


def _partitions(wh: BigQueryWarehouse, spec: TableSpec) -> list[str]:
    """The table's partition ids as BigQuery reports them (INFORMATION_SCHEMA.PARTITIONS)."""
    from google.cloud import bigquery as bq

    sql = (f"SELECT partition_id FROM `{wh.project}`.`{wh.dataset_id(spec.schema)}`.INFORMATION_SCHEMA.PARTITIONS "
           "WHERE table_name = @t AND total_rows > 0")
    config = bq.QueryJobConfig(query_parameters=[bq.ScalarQueryParameter("t", "STRING", spec.name)])
    return sorted(r[0] for r in wh.client.query(sql, job_config=config).result())


def _months(lo: dt.date, hi: dt.date) -> int:
    return (hi.year - lo.year) * 12 + hi.month - lo.month + 1


def _assert_job_controls(wh: BigQueryWarehouse, jobs, spec: TableSpec) -> None:
    """Every job: labels (app, asset, op, partition range); queries: the byte cap; all: the timeout."""
    assert jobs
    for job in jobs:
        labels = job.labels
        assert labels.get("app") == "chimera", (job.method, labels)
        assert labels.get("asset") == f"{spec.schema}__{spec.name}", labels
        assert labels.get("op") and labels.get("partition_range"), labels
        assert int(job.config.job_timeout_ms) == int(wh.job_timeout_s * 1000)  # (kept as text in the API form)
        if job.method == "query":
            assert job.config.maximum_bytes_billed == wh.maximum_bytes_billed
        else:
            assert job.method == "load_table_from_file"  # loads bill no bytes: no byte cap exists for them


@bigquery
@pytest.mark.slow
def test_15_year_backfill_of_every_date_partitioned_table_is_one_merge_within_the_partition_limit(
    bigquery_session,  # noqa: F811
):
    wh = bigquery_session.make_warehouse()
    try:
        dates = weekdays(FIRST, LAST)
        assert len(dates) > BQ_PARTITION_LIMIT  # as DAY partitions this history would exceed the limit
        specs = [s for s in ALL_TABLES.values() if s.date_column] + [training_table("ZL")]
        for spec in specs:
            whole = spec.schema == "training"  # the training tables are rebuilt whole
            slice_ = Slice.whole_table() if whole else Slice.from_keys(
                [(d, "ZL" if spec.symbol_column else None) for d in dates])
            for value, days in ((1.0, dates), (2.0, dates[:-1])):  # backfill, then a full rewrite minus a day
                jobs = capture_jobs(wh)
                result = wh.merge(spec, synthetic_frame(spec, days, value), slice_)
                merges = [j for j in jobs.queries() if j.sql.lstrip().startswith("MERGE")]
                assert len(merges) == 1 and len(jobs.loads()) == 1, f"{spec.fqn}: {[j.op for j in jobs]}"
                assert "BEGIN TRANSACTION" not in merges[0].sql
                _assert_job_controls(wh, jobs, spec)
                assert len(result.jobs.job_ids) == 2
                wh.client.query = type(wh.client).query.__get__(wh.client)  # un-patch for the checks below
                wh.client.load_table_from_file = type(wh.client).load_table_from_file.__get__(wh.client)
            info = wh.table_info(spec)
            assert (info["partition_type"], info["partition_field"]) == ("MONTH", spec.date_column)
            parts = _partitions(wh, spec)
            # The MERGE may modify only the partitions of its slice (or, whole-table, of the table): every
            # month from the first to the last date; BigQuery reports exactly those.
            assert len(parts) == _months(FIRST, LAST) <= BQ_PARTITION_LIMIT, spec.fqn
            assert parts[0] == "201006" and parts[-1] == "202612"
            assert wh.row_count(spec) == len(dates) - 1
    finally:
        wh.before_commit = None
        wh.drop_datasets()
        wh.close()


@bigquery
def test_reads_and_counts_of_raw_tables_always_filter_on_the_date(bigquery_warehouse):  # noqa: F811
    wh = bigquery_warehouse
    spec = schemas.OHLCV_1D
    dates = weekdays(dt.date(2024, 1, 1), dt.date(2024, 3, 29))
    wh.merge(spec, synthetic_frame(spec, dates), Slice.from_keys([(d, "ZL") for d in dates]))
    # Production's layout: the raw table refuses any query without a filter on its date (the emulator
    # enforces it for queries; it cannot MERGE into such a table, so the write came first).
    wh.require_partition_filters = True
    table = wh.client.get_table(wh.table_id(spec))
    table.require_partition_filter = True
    wh.client.update_table(table, ["require_partition_filter"])
    assert wh.table_info(spec)["require_partition_filter"] is True
    with pytest.raises(Exception, match="without a filter"):
        wh.client.query(f"SELECT COUNT(*) FROM {wh._sql_name(spec)}").result()
    jobs = capture_jobs(wh)
    assert wh.read(spec, Slice.from_keys([(dates[3], "ZL")])).height == 1
    assert wh.read(spec).height == len(dates)  # unbounded: an explicit whole-history date bound
    assert wh.row_count(spec) == len(dates)
    assert len(jobs.queries()) == 3
    for job in jobs.queries():
        assert "WHERE" in job.sql and "`date`" in job.sql.split("WHERE", 1)[1], job.sql
        assert job.config.maximum_bytes_billed == wh.maximum_bytes_billed and job.labels["op"] in ("read", "count")


def test_production_warehouse_creates_raw_tables_that_require_a_partition_filter():
    wh = BigQueryWarehouse("my-proj", client=object())
    assert wh.require_partition_filters is True
    assert wh.table_definition(schemas.OHLCV_1M).require_partition_filter is True
    assert not wh.table_definition(schemas.SESSION_BARS).require_partition_filter
    month = wh.table_definition(DAILY_ML_MATRIX)
    assert (month.time_partitioning.type_, month.time_partitioning.field) == ("MONTH", "data_date")
    assert month.clustering_fields == ["symbol", "data_date", "regime_name"]


@bigquery
def test_an_upsert_without_slice_bounds_the_match_by_the_frame_dates(bigquery_warehouse):  # noqa: F811
    wh = bigquery_warehouse
    spec = schemas.STATISTICS  # requires a partition filter: an unbounded MERGE would be refused
    dates = weekdays(dt.date(2024, 5, 1), dt.date(2024, 5, 10))
    wh.merge(spec, synthetic_frame(spec, dates), None)
    jobs = capture_jobs(wh)
    wh.merge(spec, synthetic_frame(spec, dates[:2], value=3.0), None)
    (merge,) = [j for j in jobs.queries() if j.op == "merge"]
    assert "BETWEEN @b0 AND @b1" in merge.sql and "DELETE" not in merge.sql
    back = wh.read(spec).sort("trade_date")
    assert back.height == len(dates) and back["price"].to_list() == [3.0, 3.0] + [1.0] * (len(dates) - 2)
    jobs.clear()
    wh.merge(spec, spec.empty_frame(), None)  # nothing to upsert, nothing to delete: no job at all
    assert jobs == []


@bigquery
def test_datasets_are_looked_up_before_created(bigquery_session, monkeypatch):  # noqa: F811
    first = bigquery_session.make_warehouse()
    try:
        created: list[str] = []
        original = first.client.create_dataset

        def recording_create(dataset, *args, **kwargs):
            created.append(getattr(dataset, "dataset_id", str(dataset)))
            return original(dataset, *args, **kwargs)

        first.client.create_dataset = recording_create
        day = dt.date(2024, 1, 3)
        frame = synthetic_frame(schemas.SESSION_BARS, [day])
        first.merge(schemas.SESSION_BARS, frame, Slice.from_keys([(day, "ZL")]))
        assert sorted(created) == sorted([first.dataset_id("features"), first.staging_dataset])
        staging = first.client.get_dataset(f"{first.project}.{first.staging_dataset}")
        assert staging.default_table_expiration_ms >= 6 * 3600 * 1000

        # A second process with a least-privilege account: the datasets exist, so it never asks to create
        # one (datasets.create would be refused).
        second = bigquery_session.make_warehouse(first.dataset_prefix)

        def refuse(*args, **kwargs):
            raise AssertionError("create_dataset called for an existing dataset")

        second.client.create_dataset = refuse
        second.merge(schemas.SESSION_BARS, frame, Slice.from_keys([(day, "ZL")]))
        assert second.read(schemas.SESSION_BARS).height == 1
        second.close()
    finally:
        first.drop_datasets()
        first.close()


@bigquery
def test_conflicts_rate_limits_and_failed_loads_are_retried(bigquery_warehouse):  # noqa: F811
    from google.api_core import exceptions as ex

    wh = bigquery_warehouse
    wh.retry_policy = RetryPolicy(initial=0.01, maximum=0.05, deadline=30)
    spec, day = schemas.SESSION_BARS, dt.date(2024, 2, 5)
    failures = {
        "query": [_api_error(ex.Conflict, "Could not serialize access to table due to concurrent update"),
                  _api_error(ex.BadRequest, "Transaction is aborted due to concurrent update", "invalidQuery"),
                  _api_error(ex.Forbidden, "Exceeded rate limits", "rateLimitExceeded")],
        "load_table_from_file": [_api_error(ex.ServiceUnavailable, "backend unavailable")],
    }
    calls: dict[str, int] = {"query": 0, "load_table_from_file": 0}
    for name in calls:
        original = getattr(wh.client, name)

        def flaky(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            if failures[_name]:
                raise failures[_name].pop(0)
            return _original(*args, **kwargs)

        setattr(wh.client, name, flaky)
    result = wh.merge(spec, synthetic_frame(spec, [day], 5.0), Slice.from_keys([(day, "ZL")]))
    assert calls == {"query": 4, "load_table_from_file": 2}
    assert result.jobs.retries == 4 and result.job_metadata()["bigquery/job_retries"] == 4
    assert wh.read(spec)["close"].to_list() == [5.0]

    # a real error is not retried: one attempt, a clear error naming the table, the table unchanged
    calls["query"] = 0
    failures["query"] = [_api_error(ex.BadRequest, "Syntax error: unexpected keyword", "invalidQuery")]
    with pytest.raises(WarehouseError, match="features.session_bars.*Syntax error"):
        wh.merge(spec, synthetic_frame(spec, [day], 6.0), Slice.from_keys([(day, "ZL")]))
    assert calls["query"] == 1
    assert wh.read(spec)["close"].to_list() == [5.0]
    # a query over the byte cap is refused at once, the error says which setting caps it
    calls["query"] = 0
    failures["query"] = [_api_error(ex.Forbidden, "Query exceeded limit for bytes billed: 1000.",
                                    "bytesBilledLimitExceeded")]
    with pytest.raises(WarehouseError, match=r"byte cap of \d+ bytes \(CHIMERA_BQ_MAX_BYTES_BILLED"):
        wh.merge(spec, synthetic_frame(spec, [day], 6.0), Slice.from_keys([(day, "ZL")]))
    assert calls["query"] == 1


@bigquery
def test_dagster_resource_labels_jobs_with_the_run_and_records_job_metadata(bigquery_session, monkeypatch):  # noqa: F811
    from google.cloud import bigquery as bq

    from chimera_assets.lib.bigquery_resource import BigQueryWarehouseResource
    from chimera_assets.lib.io_manager import WarehouseIOManager

    prefix = f"{bigquery_session.root_prefix}dg_"
    resource = BigQueryWarehouseResource(project=EMULATOR_PROJECT, location="US", dataset_prefix=prefix,
                                         endpoint=bigquery_session.endpoint, maximum_bytes_billed=123 * 1024**2)

    @dg.asset(key=["training", "regime_weights"], io_manager_key="warehouse_io")
    def regime_weights() -> pl.DataFrame:
        return pl.DataFrame({"regime": ["calm"], "weight": [100], "description": ["quiet"]})

    jobs = capture_jobs(bq.Client, monkeypatch)
    closed: list[object] = []
    monkeypatch.setattr(bq.Client, "close", lambda self: closed.append(self))
    result = dg.materialize([regime_weights], resources={
        "warehouse": resource, "warehouse_io": WarehouseIOManager(warehouse=resource)})
    assert result.success
    assert jobs and all(j.labels.get("dagster_run") == result.run_id for j in jobs)
    assert all(j.config.maximum_bytes_billed == 123 * 1024**2 for j in jobs.queries())
    md = result.asset_materializations_for_node("training__regime_weights")[0].metadata
    assert md["dagster/table_name"].value == f"{EMULATOR_PROJECT}.{prefix}training.regime_weights"
    assert len(md["bigquery/job_ids"].value) == 2 and "bigquery/bytes_billed" in md and "bigquery/slot_ms" in md
    assert closed  # every client the resource opened was closed when its operation ended
    wh = BigQueryWarehouse.from_settings(dataclasses.replace(resource.settings()))
    try:
        assert wh.read(REGIME_WEIGHTS)["regime"].to_list() == ["calm"]
    finally:
        monkeypatch.undo()
        wh.drop_datasets()
        wh.close()


def test_definitions_show_bigquery_settings_as_resource_fields(monkeypatch):
    from chimera_assets.lib.io_manager import WarehouseResource
    from chimera_assets.lib.warehouse_resource import warehouse_resource

    assert type(warehouse_resource()) is WarehouseResource  # DuckDB: zero config
    monkeypatch.setenv("CHIMERA_WAREHOUSE", "bigquery")
    monkeypatch.setenv("CHIMERA_BQ_PROJECT", "prod-project")
    monkeypatch.setenv("CHIMERA_BQ_CREDENTIALS_JSON", '{"secret": "TOPSECRET"}')
    monkeypatch.setenv("CHIMERA_BQ_MAX_BYTES_BILLED", str(5 * 1024**3))
    monkeypatch.setenv("CHIMERA_BQ_DATASET_PREFIX", "prod_")
    res = warehouse_resource()
    from dagster_gcp import BigQueryResource

    assert isinstance(res, BigQueryResource) and isinstance(res, WarehouseResource)
    assert res.maximum_bytes_billed == 5 * 1024**3 and res.dataset_prefix == "prod_"
    # secrets and the project are EnvVars: the UI shows the variable's name, never the value
    assert isinstance(res.credentials_json, dg.EnvVar) and res.credentials_json.env_var_name == "CHIMERA_BQ_CREDENTIALS_JSON"
    assert isinstance(res.project, dg.EnvVar)
    fields = set(type(res).model_fields)
    assert {"project", "location", "dataset_prefix", "maximum_bytes_billed", "job_timeout_s", "gcp_credentials",
            "credentials_json", "staging_dataset"} <= fields
    # the code location wires it as the `warehouse` resource (and the IO manager's), with those config fields
    from chimera_assets.definitions import build_definitions

    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    wired = defs.get_repository_def().get_top_level_resources()["warehouse"]
    assert {"project", "maximum_bytes_billed", "credentials_json"} <= set(wired.config_schema.config_type.fields)
