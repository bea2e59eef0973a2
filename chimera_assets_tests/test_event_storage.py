"""Batched event bookkeeping stores what the stock storage stores.

The same ranged run (date x root partitions, two assets, a partitioned check) goes into two
persistent instances: stock storage with events stored one by one, and the project's configuration
with ``DAGSTER_EVENT_BATCH_SIZE`` (SQLite: ``BatchingSqliteEventLogStorage``; Postgres:
dagster-postgres, which batches by itself). Compared: the rows of ``event_logs``, ``asset_keys``,
``asset_event_tags`` (run ids and timestamps normalised), the materialized partitions and the
partition status the UI shows (Dagster's asset status cache, what GraphQL's partition status reads).

Postgres tests need ``CHIMERA_TEST_POSTGRES_URL`` (``.ci/postgres.sh start`` prints one); each test
uses its own fresh database.
"""


import os
import uuid
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from chimera_assets.lib.event_storage import BatchingSqliteEventLogStorage

DATES = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-21")
ROOTS = dg.StaticPartitionsDefinition(["ES", "MES", "ZL"])
PDEF = dg.MultiPartitionsDefinition({"date": DATES, "symbol": ROOTS})
RANGE = {"dagster/asset_partition_range_start": "2024-01-01|ES", "dagster/asset_partition_range_end": "2024-01-20|ZL"}
N_PARTITIONS = 20 * 3


@dg.asset(partitions_def=PDEF, code_version="1", backfill_policy=dg.BackfillPolicy.single_run())
def bars(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"partitions": len(context.partition_keys)})


@dg.asset(partitions_def=PDEF, code_version="2", deps=[bars], backfill_policy=dg.BackfillPolicy.single_run())
def features(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 3})


@dg.asset_check(asset=features)
def features_rows(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


@dg.asset(code_version="1")
def report() -> None:  # unpartitioned: single events next to the batches
    return None


JOB = dg.Definitions(assets=[bars, features, report], asset_checks=[features_rows]).resolve_implicit_global_asset_job_def()


def _sqlite_yaml(home: Path, batched: bool) -> str:
    cls = ("chimera_assets.lib.event_storage", "BatchingSqliteEventLogStorage") if batched else (
        "dagster._core.storage.event_log", "SqliteEventLogStorage")
    return f"""telemetry:
  enabled: false
run_storage:
  module: dagster._core.storage.runs
  class: SqliteRunStorage
  config:
    base_dir: {home / 'history'}
event_log_storage:
  module: {cls[0]}
  class: {cls[1]}
  config:
    base_dir: {home / 'history' / 'runs'}
schedule_storage:
  module: dagster._core.storage.schedules
  class: SqliteScheduleStorage
  config:
    base_dir: {home / 'schedules'}
"""


def _run_twice(instance: dg.DagsterInstance) -> list[str]:
    """A ranged run of both partitioned assets, a re-run of a sub-range, then the unpartitioned one."""
    run_ids = []
    for tags in (RANGE, {"dagster/asset_partition_range_start": "2024-01-05|ES",
                         "dagster/asset_partition_range_end": "2024-01-08|ZL"}):
        res = JOB.get_subset(asset_selection={bars.key, features.key}).execute_in_process(instance=instance, tags=tags)
        assert res.success
        run_ids.append(res.run_id)
    res = JOB.get_subset(asset_selection={report.key}).execute_in_process(instance=instance)
    run_ids.append(res.run_id)
    return run_ids


def _snapshot(instance: dg.DagsterInstance, run_ids: list[str], conn) -> dict:
    """Storage rows with run ids replaced by their order and timestamps dropped."""
    order = {rid: f"run{i}" for i, rid in enumerate(run_ids)}
    events = Counter(
        (order.get(r.run_id), r.dagster_event_type, r.asset_key, r.partition, r.step_key)
        for r in conn.execute(sa.text(
            "SELECT run_id, dagster_event_type, asset_key, partition, step_key FROM event_logs"))
    )
    keys = {
        r.asset_key: order.get(r.last_run_id)
        for r in conn.execute(sa.text("SELECT asset_key, last_run_id FROM asset_keys"))
    }
    tags = Counter(
        (r.asset_key, r.key, r.value)
        for r in conn.execute(sa.text("SELECT asset_key, key, value FROM asset_event_tags"))
    )
    from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

    status = {}
    materialized = {}
    for key in (bars.key, features.key):
        materialized[key] = set(instance.get_materialized_partitions(key))
        cache = get_and_update_asset_status_cache_value(instance, key, PDEF)
        subset = cache.deserialize_materialized_partition_subsets(PDEF)
        status[key] = (
            set(subset.get_partition_keys()),
            set(cache.deserialize_failed_partition_subsets(PDEF).get_partition_keys()),
            set(cache.deserialize_in_progress_partition_subsets(PDEF).get_partition_keys()),
        )
    latest = {}
    for key in (bars.key, features.key, report.key):
        ev = instance.get_latest_materialization_event(key)
        latest[key] = (order.get(ev.run_id), ev.asset_materialization.partition)
    checks = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(features.key, "features_rows"), limit=10
    )
    return {
        "events": events, "asset_keys": keys, "tags": tags, "materialized": materialized,
        "status": status, "latest": latest, "checks": [c.status for c in checks],
    }


def _sqlite_snapshot(home: Path, batched: bool, monkeypatch) -> tuple[dict, dg.DagsterInstance]:
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(_sqlite_yaml(home, batched))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000" if batched else "0")
    monkeypatch.setenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
    instance = dg.DagsterInstance.get()
    run_ids = _run_twice(instance)
    engine = sa.create_engine(f"sqlite:///{home / 'history' / 'runs' / 'index.db'}")
    with engine.connect() as conn:
        snap = _snapshot(instance, run_ids, conn)
    engine.dispose()
    # The run shard of the first run holds the same event rows as the index shard (asset events).
    shard = sa.create_engine(f"sqlite:///{home / 'history' / 'runs' / (run_ids[0] + '.db')}")
    with shard.connect() as conn:
        snap["run_shard_materializations"] = conn.execute(sa.text(
            "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")).scalar()
    shard.dispose()
    return snap, instance


def _assert_complete(snap: dict) -> None:
    """Every (date, root) partition has its own materialization event and shows materialized."""
    for key in (bars.key, features.key):
        assert len(snap["materialized"][key]) == N_PARTITIONS
        assert snap["status"][key][0] == snap["materialized"][key]
        per_run0 = sum(n for (run, typ, ak, _p, _s), n in snap["events"].items()
                       if run == "run0" and typ == "ASSET_MATERIALIZATION" and ak == key.to_string())
        assert per_run0 == N_PARTITIONS


def test_batched_sqlite_storage_stores_the_stock_rows(tmp_path, monkeypatch):
    stock, _ = _sqlite_snapshot(tmp_path / "stock", batched=False, monkeypatch=monkeypatch)
    calls = Counter()
    original = BatchingSqliteEventLogStorage.store_event

    def counting_store_event(self, event):
        calls[event.dagster_event_type] += 1
        return original(self, event)

    monkeypatch.setattr(BatchingSqliteEventLogStorage, "store_event", counting_store_event)
    batched, instance = _sqlite_snapshot(tmp_path / "batched", batched=True, monkeypatch=monkeypatch)
    # the dagster.yaml entry builds the batching class (from_config_value), and materializations of
    # the ranged runs never went through the per-event path
    assert type(instance.event_log_storage) is BatchingSqliteEventLogStorage
    assert calls[dg.DagsterEventType.ASSET_MATERIALIZATION] == 1  # the unpartitioned report only
    _assert_complete(stock)
    for part in stock:
        assert batched[part] == stock[part], part
    assert batched["run_shard_materializations"] == 2 * N_PARTITIONS


# ---------------------------------------------------------------------------------------------------
# Postgres (dagster-postgres, psycopg2 URL)
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def postgres_url():
    url = os.environ.get("CHIMERA_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("CHIMERA_TEST_POSTGRES_URL is not set (start a server with: bash .ci/postgres.sh start)")
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        admin.connect().close()
    except sa.exc.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers at CHIMERA_TEST_POSTGRES_URL: {exc.orig}")
    created = []

    def make() -> str:
        name = f"chimera_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return url.rsplit("/", 1)[0] + "/" + name

    yield make
    with admin.connect() as conn:
        for name in created:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _postgres_snapshot(home: Path, url: str, batched: bool, monkeypatch) -> dict:
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(f"telemetry:\n  enabled: false\nstorage:\n  postgres:\n    postgres_url: {url}\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000" if batched else "0")
    monkeypatch.setenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
    with dg.DagsterInstance.get() as instance:
        run_ids = _run_twice(instance)
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            snap = _snapshot(instance, run_ids, conn)
        engine.dispose()
    return snap


@pytest.mark.postgres
def test_batched_postgres_storage_stores_the_stock_rows(tmp_path, monkeypatch, postgres_url):
    from dagster_postgres.event_log import PostgresEventLogStorage

    calls = Counter()
    original = PostgresEventLogStorage.store_event_batch

    def counting_batch(self, events):
        calls["batches"] += 1
        return original(self, events)

    monkeypatch.setattr(PostgresEventLogStorage, "store_event_batch", counting_batch)
    stock = _postgres_snapshot(tmp_path / "stock", postgres_url(), batched=False, monkeypatch=monkeypatch)
    assert calls["batches"] == 0
    batched = _postgres_snapshot(tmp_path / "batched", postgres_url(), batched=True, monkeypatch=monkeypatch)
    assert calls["batches"] > 0
    _assert_complete(stock)
    for part in stock:
        assert batched[part] == stock[part], part


@pytest.mark.postgres
def test_chimera_run_records_in_a_postgres_instance(tmp_path, monkeypatch, postgres_url, capsys):
    """The production dagster.yaml of docs/deployment.md (psycopg2 URL) works for ``chimera run``."""
    from chimera_assets.cli import main
    from chimera_assets.lib.instance import ensure_dagster_home

    url = postgres_url()
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text(f"storage:\n  postgres:\n    postgres_url: {url}\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert ensure_dagster_home(home).state == "user" and ensure_dagster_home(home).batched
    code = main(["run", "--demo", "--roots", "ZL", "--start", "2024-03-04", "--end", "2024-03-08", "--no-training"])
    assert code == 0, capsys.readouterr()
    with dg.DagsterInstance.get() as instance:
        assert "PostgresEventLogStorage" in type(instance.event_log_storage).__name__
        parts = instance.get_materialized_partitions(dg.AssetKey(["features", "daily_ml_matrix"]))
    assert {p for p in parts if p.endswith("|ZL")} >= {f"2024-03-0{d}|ZL" for d in range(4, 9)}
