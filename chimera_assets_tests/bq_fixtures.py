"""Pytest fixtures for the BigQuery backend against the local emulator.

Start the emulator and point the tests at it::

    export CHIMERA_BQ_EMULATOR="$(bash .ci/bigquery_emulator.sh start 9050)"   # http://127.0.0.1:9050
    .venv/bin/pytest -m bigquery
    bash .ci/bigquery_emulator.sh stop

Without ``CHIMERA_BQ_EMULATOR`` every test using these fixtures is skipped (with that reason).
``CHIMERA_BQ_EMULATOR_GRPC`` ("127.0.0.1:9060") names the emulator's Storage Read gRPC port; by
default the port ``.ci/bigquery_emulator.sh`` uses (REST port + 10) is tried, and reads fall back to
REST paging when nothing listens there.

Isolation: one random root per test session (``t<hex>_``), and each ``bigquery_warehouse`` gets its
own dataset prefix under it (``t<hex>_<n>_``), so tests never see each other's tables. The datasets
of a test are deleted when it ends, and any left over from the session when the session ends.
(The staging dataset is ``<prefix>staging``, so it falls under the same prefix.) Warehouses made here
create the raw tables without ``require_partition_filter``: the emulator cannot MERGE into such a
table (see ``BigQueryWarehouse.__init__``).

``capture_jobs(client_or_warehouse)`` records every job a client is asked to run (method, SQL, config).

From a conftest fixture (e.g. the backend-parametrised contract suite), call
``make_bigquery_warehouse(request)``; nothing needs importing as a fixture::

    @pytest.fixture(params=["duckdb", pytest.param("bigquery", marks=pytest.mark.bigquery)])
    def warehouse(request, tmp_path):
        if request.param == "bigquery":
            return make_bigquery_warehouse(request)
        return DuckDBWarehouse(tmp_path / "warehouse.duckdb")

or import the ``bigquery_warehouse`` fixture (``from chimera_assets_tests.bq_fixtures import
bigquery_warehouse``). Both share one session per pytest run.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import socket
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlparse

import pytest

from chimera_assets.settings import SCHEMAS, get_settings
from chimera_assets.warehouse.bigquery_backend import BigQueryWarehouse

EMULATOR_ENV = "CHIMERA_BQ_EMULATOR"
EMULATOR_PROJECT = "test"  # the --project the emulator is started with
SKIP_REASON = (
    f"{EMULATOR_ENV} is not set: start the BigQuery emulator with "
    f'`export {EMULATOR_ENV}="$(bash .ci/bigquery_emulator.sh start 9050)"` to run BigQuery tests'
)


def _grpc_endpoint(rest_url: str) -> str | None:
    explicit = os.environ.get("CHIMERA_BQ_EMULATOR_GRPC")
    if explicit:
        return explicit
    u = urlparse(rest_url)
    host, port = u.hostname or "127.0.0.1", (u.port or 80) + 10
    try:
        with socket.create_connection((host, port), timeout=1):
            return f"{host}:{port}"
    except OSError:
        return None


@dataclass
class BigQuerySession:
    endpoint: str
    storage_endpoint: str | None
    root_prefix: str
    _counter: Iterator[int] = field(default_factory=itertools.count)

    def make_warehouse(self, prefix: str | None = None) -> BigQueryWarehouse:
        """A warehouse on the emulator with its own datasets (``<root><n>_<schema>``)."""
        prefix = prefix or f"{self.root_prefix}{next(self._counter)}_"
        settings = dataclasses.replace(
            get_settings({}),
            warehouse="bigquery",
            bq_project=EMULATOR_PROJECT,
            bq_location="US",
            bq_dataset_prefix=prefix,
            bq_endpoint=self.endpoint,
        )
        return BigQueryWarehouse.from_settings(settings, storage_endpoint=self.storage_endpoint)

    def sweep(self) -> None:
        """Delete every dataset this session created (whatever a test left behind)."""
        wh = self.make_warehouse(self.root_prefix)
        try:
            for ds in wh.client.list_datasets(EMULATOR_PROJECT):
                if ds.dataset_id.startswith(self.root_prefix):
                    wh.client.delete_dataset(ds.reference, delete_contents=True, not_found_ok=True)
        finally:
            wh.close()


# One emulator session per pytest run (keyed by its config), shared by the fixtures below and by
# ``make_bigquery_warehouse`` (which conftest fixtures call without importing any fixture).
_SESSIONS: dict[int, BigQuerySession] = {}


def _open_session() -> BigQuerySession:
    endpoint = os.environ.get(EMULATOR_ENV)
    if not endpoint:
        pytest.skip(SKIP_REASON)
    endpoint = endpoint.rstrip("/")
    try:
        with urllib.request.urlopen(f"{endpoint}/bigquery/v2/projects/{EMULATOR_PROJECT}/datasets", timeout=10):
            pass
    except (urllib.error.URLError, OSError) as exc:
        pytest.fail(f"{EMULATOR_ENV}={endpoint} is set but the emulator does not answer: {exc}")
    return BigQuerySession(endpoint, _grpc_endpoint(endpoint), f"t{uuid.uuid4().hex[:8]}_")


def session_for(config: pytest.Config) -> BigQuerySession:
    """The run's emulator session; its datasets are swept when pytest finishes."""
    key = id(config)
    session = _SESSIONS.get(key)
    if session is None:
        session = _SESSIONS[key] = _open_session()

        def cleanup() -> None:
            _SESSIONS.pop(key, None)
            try:
                session.sweep()
            except Exception as exc:  # the emulator may already be gone; never fail the run here
                print(f"bq_fixtures: could not delete the session's datasets: {exc}")

        config.add_cleanup(cleanup)
    return session


def _close(wh: BigQueryWarehouse) -> None:
    wh.before_commit = None
    try:
        wh.drop_datasets(SCHEMAS)
    finally:
        wh.close()


def make_bigquery_warehouse(request: pytest.FixtureRequest) -> BigQueryWarehouse:
    """A ``BigQueryWarehouse`` on the emulator with fresh, private datasets, deleted when the requesting
    test ends. Skips the test (with the reason) when CHIMERA_BQ_EMULATOR is not set."""
    wh = session_for(request.config).make_warehouse()
    request.addfinalizer(lambda: _close(wh))
    return wh


@pytest.fixture(scope="session")
def bigquery_session(request: pytest.FixtureRequest) -> BigQuerySession:
    return session_for(request.config)


@pytest.fixture
def bigquery_warehouse(request: pytest.FixtureRequest) -> BigQueryWarehouse:
    """A ``BigQueryWarehouse`` on the emulator with fresh, private datasets (deleted afterwards)."""
    return make_bigquery_warehouse(request)


# -- capturing the jobs a warehouse sends ---------------------------------------------------------------
JOB_METHODS = ("query", "load_table_from_file", "load_table_from_dataframe", "load_table_from_json",
               "load_table_from_uri", "copy_table", "extract_table")


@dataclass
class SentJob:
    """One job a client was asked to run: its method, SQL (queries), config and its ``op`` label."""

    method: str
    sql: str | None
    config: object

    @property
    def labels(self) -> dict[str, str]:
        return dict(getattr(self.config, "labels", None) or {})

    @property
    def op(self) -> str | None:
        return self.labels.get("op")


class JobLog(list):
    """The jobs sent through the patched client(s), in order."""

    def queries(self) -> list[SentJob]:
        return [j for j in self if j.method == "query"]

    def loads(self) -> list[SentJob]:
        return [j for j in self if j.method.startswith("load_")]


def capture_jobs(target, monkeypatch: pytest.MonkeyPatch | None = None) -> JobLog:
    """Record every job ``target`` (a ``bigquery.Client``, a warehouse with a fixed client, or - with
    ``monkeypatch``, undone after the test - the ``Client`` class itself, i.e. every client) is asked to
    run, then run it. Returns the live log."""
    log = JobLog()
    client = getattr(target, "client", target) if not isinstance(target, type) else target
    if isinstance(client, type) and monkeypatch is None:
        raise ValueError("patching the Client class needs monkeypatch (so it is undone)")
    for name in JOB_METHODS:
        original = getattr(client, name)

        def wrapper(*args, _name=name, _original=original, **kwargs):
            if isinstance(client, type):  # unbound: args[0] is the client
                args_ = args[1:]
            else:
                args_ = args
            sql = args_[0] if _name == "query" and args_ else kwargs.get("query")
            log.append(SentJob(_name, sql, kwargs.get("job_config")))
            return _original(*args, **kwargs)

        if monkeypatch is not None:
            monkeypatch.setattr(client, name, wrapper)
        else:
            setattr(client, name, wrapper)
    return log
