"""The production backend: Google BigQuery (or the local emulator when ``CHIMERA_BQ_ENDPOINT`` is set).

A write is: validate the frame (``prepare_frame``) -> LOAD JOB of a parquet buffer into a staging
table ``<dataset>._stg_<table>_<id>`` that expires by itself -> optional audit of the staged rows ->
``before_commit`` hook -> ONE ``MERGE`` (atomic: the target changes completely or not at all) ->
the staging table is dropped. A crash anywhere before the MERGE leaves the target untouched and at
worst a staging table that BigQuery deletes when it expires.

Tables are created from the spec: REQUIRED for non-nullable columns, RECORD for STRUCTs, DAY
partitioning on the spec's date column, clustering on ``spec.clustering``. Values always travel as
query parameters; identifiers come only from the specs (``check_identifier``).

Credentials, in order: ``CHIMERA_BQ_ENDPOINT`` (emulator: anonymous); ``CHIMERA_BQ_CREDENTIALS_JSON``
(a service-account key as JSON text); otherwise Google's application default credentials, which
include a key file named by ``GOOGLE_APPLICATION_CREDENTIALS``. Credentials are never logged and
never appear in an error message.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import logging
import os
import re
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from chimera_assets.schemas import Column, TableSpec, check_identifier
from chimera_assets.settings import SCHEMAS, Settings
from chimera_assets.warehouse.base import (
    Audit,
    MergeResult,
    Slice,
    Warehouse,
    WarehouseError,
    conform,
    prepare_frame,
)
from chimera_assets.warehouse.merge_sql import BIGQUERY, merge_statement, slice_predicate

log = logging.getLogger(__name__)

BIGQUERY_SCOPES = ("https://www.googleapis.com/auth/bigquery",)
# Project ids: lower-case letters, digits, hyphens, optionally "domain.tld:" in front (legacy).
_PROJECT_ID = re.compile(r"^(?:[a-z0-9.\-]+:)?[a-z][a-z0-9\-]{0,62}$")
# Messages of BigQuery's DML conflicts that succeed when simply retried.
_RETRYABLE_DML = ("could not serialize access", "concurrent update", "too many dml statements")


class BigQueryCredentialsError(WarehouseError):
    """No usable credentials (the message says where they were looked for, never what they are)."""


def schema_field(col: Column):
    """``bigquery.SchemaField`` for a spec column (RECORD with sub-fields for STRUCT)."""
    from google.cloud import bigquery

    mode = "NULLABLE" if col.nullable else "REQUIRED"
    if col.type == "STRUCT":
        return bigquery.SchemaField(
            col.name, "RECORD", mode=mode, fields=[schema_field(f) for f in col.fields],
            description=col.description or None,
        )
    return bigquery.SchemaField(col.name, col.type, mode=mode, description=col.description or None)


def bigquery_schema(spec: TableSpec) -> list:
    return [schema_field(c) for c in spec.columns]


def _schema_as_list(fields: Sequence) -> list[dict]:
    """SchemaFields as plain nested data: [{"name", "type", "mode", "fields": [...]}]."""
    out = []
    for f in fields:
        ftype = _LEGACY_TYPES.get(f.field_type, f.field_type)
        item: dict[str, Any] = {"name": f.name, "type": ftype, "mode": f.mode or "NULLABLE"}
        if f.fields:
            item["fields"] = _schema_as_list(f.fields)
        out.append(item)
    return out


_LEGACY_TYPES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "RECORD": "STRUCT"}


def _evolve(have: list, want: Sequence[Column], path: str, problems: list[str], added: list[str]) -> list:
    """``have`` (SchemaFields) with the ``want`` columns it lacks appended, recursively into RECORDs.
    Type conflicts and missing REQUIRED columns go to ``problems``; appended names to ``added``."""
    by_name = {f.name: f for f in have}
    out = list(have)
    for col in want:
        name = f"{path}{col.name}"
        field = by_name.get(col.name)
        if field is None:
            if not col.nullable:
                problems.append(f"REQUIRED column {name} is missing (cannot be added to a table)")
                continue
            out.append(schema_field(col))
            added.append(name)
            continue
        have_type = _LEGACY_TYPES.get(field.field_type, field.field_type)
        if have_type != col.type:
            problems.append(f"{name} is {have_type}, the spec says {col.type}")
            continue
        if col.type == "STRUCT":
            sub = _evolve(list(field.fields), col.fields, f"{name}.", problems, added)
            if len(sub) != len(field.fields):
                api = field.to_api_repr()
                api["fields"] = [f.to_api_repr() for f in sub]
                out[out.index(field)] = type(field).from_api_repr(api)
    return out


def query_parameter(name: str, value: Any):
    """A typed ``ScalarQueryParameter`` (DATE for dates, STRING for symbols, ...)."""
    from google.cloud import bigquery

    if isinstance(value, dt.datetime):
        kind = "TIMESTAMP"
    elif isinstance(value, dt.date):
        kind = "DATE"
    elif isinstance(value, bool):
        kind = "BOOL"
    elif isinstance(value, int):
        kind = "INT64"
    elif isinstance(value, float):
        kind = "FLOAT64"
    elif isinstance(value, str):
        kind = "STRING"
    else:
        raise TypeError(f"unsupported query parameter type for {name}: {type(value).__name__}")
    return bigquery.ScalarQueryParameter(name, kind, value)


@contextmanager
def _quiet_storage_deprecation() -> Iterator[None]:
    """google-cloud-bigquery 3.47 warns (PendingDeprecation) on every Storage Read page it turns into
    arrow, suggesting pandas-gbq; the path works (it is the library's own), so keep the logs clean."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Retrieving Arrow record batches directly", category=PendingDeprecationWarning
        )
        yield


def _error_text(exc: BaseException) -> str:
    """A short, credential-free description of a Google API error."""
    message = getattr(exc, "message", None) or str(exc)
    errors = getattr(exc, "errors", None) or []
    reasons = sorted({e.get("reason") for e in errors if isinstance(e, dict) and e.get("reason")})
    text = f"{type(exc).__name__}: {message}"
    if reasons:
        text += f" (reason: {', '.join(reasons)})"
    return text[:2000]


def make_client(
    project: str | None,
    location: str | None = None,
    endpoint: str | None = None,
    env: dict[str, str] | None = None,
):
    """A ``bigquery.Client`` with credentials found the usual ways (see the module docstring)."""
    from google.cloud import bigquery

    env = os.environ if env is None else env
    if endpoint:
        from google.auth.credentials import AnonymousCredentials

        return bigquery.Client(
            project=project or "test", location=location, credentials=AnonymousCredentials(),
            client_options={"api_endpoint": endpoint},
        )
    from google.auth import exceptions as auth_exceptions

    credentials = None
    key_json = env.get("CHIMERA_BQ_CREDENTIALS_JSON")
    if key_json:
        credentials, key_project = _credentials_from_json(key_json)
        project = project or key_project
    failure = None
    try:
        return bigquery.Client(project=project, location=location, credentials=credentials)
    except (auth_exceptions.GoogleAuthError, OSError) as exc:
        failure = type(exc).__name__
    # Raised outside the except block so no exception chain (which could quote a key) is attached.
    raise BigQueryCredentialsError(
        "no BigQuery credentials/project: set CHIMERA_BQ_PROJECT and either run "
        "`gcloud auth application-default login`, set GOOGLE_APPLICATION_CREDENTIALS to a key "
        f"file, or CHIMERA_BQ_CREDENTIALS_JSON to a key's JSON text ({failure})"
    )


def _credentials_from_json(key_json: str):
    """Service-account credentials from the key's JSON text, and the key's project."""
    from google.oauth2 import service_account

    try:
        info = json.loads(key_json)
        credentials = service_account.Credentials.from_service_account_info(info, scopes=BIGQUERY_SCOPES)
        return credentials, info.get("project_id")
    except Exception:
        pass
    # Outside the except block: the decode error holds the key text, it must not be chained.
    raise BigQueryCredentialsError("CHIMERA_BQ_CREDENTIALS_JSON is set but is not a valid service-account key")


class BigQueryWarehouse(Warehouse):
    kind = "bigquery"
    #: A BigQuery job may modify at most 4,000 partitions; wider writes are split by date windows,
    max_partitions_per_merge: int = 3500
    #: ... published in one multi-statement transaction (True) or as separate MERGE jobs (False).
    atomic_windows: bool = True

    def __init__(
        self,
        project: str | None,
        location: str = "US",
        dataset_prefix: str = "",
        endpoint: str | None = None,
        client: Any = None,
        client_factory: Callable[[], Any] | None = None,
        dataset_name: Callable[[str], str] | None = None,
        staging_ttl: dt.timedelta = dt.timedelta(hours=1),
        use_storage_api: bool | None = None,
        storage_endpoint: str | None = None,
        labels: dict[str, str] | None = None,
    ):
        """``client`` (or ``client_factory``) lets Dagster's ``BigQueryResource`` supply the client;
        otherwise ``make_client`` builds one on first use.

        Reads go through the BigQuery Storage Read API (gRPC, ~10x faster than REST paging) against
        Google when no ``endpoint`` is set; against an emulator only when its gRPC ``storage_endpoint``
        ("host:port", plain-text channel) is given, else through REST. ``use_storage_api`` overrides."""
        if dataset_prefix and not dataset_prefix.replace("_", "").isalnum():
            raise WarehouseError(f"invalid BigQuery dataset prefix {dataset_prefix!r}")
        self.project = project
        self.location = location
        self.dataset_prefix = dataset_prefix
        self.endpoint = endpoint
        self.staging_ttl = staging_ttl
        self.storage_endpoint = storage_endpoint
        if use_storage_api is None:
            use_storage_api = endpoint is None or storage_endpoint is not None
        self.use_storage_api = use_storage_api
        self._storage_client: Any = None
        self.labels = {"app": "chimera", **(labels or {})}
        self._client = client
        self._client_factory = client_factory
        self._dataset_name = dataset_name
        self._known_datasets: set[str] = set()
        self._known_tables: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Settings, client: Any = None, **kwargs: Any) -> BigQueryWarehouse:
        """The warehouse ``settings`` describe. An emulator's Storage Read gRPC address may come from
        ``CHIMERA_BQ_STORAGE_ENDPOINT`` ("127.0.0.1:9060"); it is ignored without CHIMERA_BQ_ENDPOINT."""
        if settings.bq_endpoint and "storage_endpoint" not in kwargs:
            kwargs["storage_endpoint"] = os.environ.get("CHIMERA_BQ_STORAGE_ENDPOINT") or None
        return cls(
            project=settings.bq_project,
            location=settings.bq_location,
            dataset_prefix=settings.bq_dataset_prefix,
            endpoint=settings.bq_endpoint,
            client=client,
            dataset_name=settings.dataset_name,
            **kwargs,
        )

    @classmethod
    def from_bigquery_resource(cls, resource: Any, settings: Settings, **kwargs: Any) -> BigQueryWarehouse:
        """Use dagster-gcp's ``BigQueryResource`` (its project/location/``gcp_credentials``) for the client.

        The client is built inside the resource's context (where its credentials are set up) and keeps
        the loaded credentials afterwards. Settings still decide the dataset names."""
        with resource.get_client() as client:
            pass
        settings = dataclasses.replace(
            settings,
            bq_project=resource.project or settings.bq_project or client.project,
            bq_location=resource.location or settings.bq_location,
        )
        return cls.from_settings(settings, client=client, **kwargs)

    def __repr__(self) -> str:
        where = f", endpoint={self.endpoint!r}" if self.endpoint else ""
        return f"BigQueryWarehouse(project={self.project!r}, prefix={self.dataset_prefix!r}{where})"

    # -- client and names ---------------------------------------------------------------------
    @property
    def client(self):
        if self._client is None:
            if self._client_factory is not None:
                self._client = self._client_factory()
            else:
                self._client = make_client(self.project, self.location, self.endpoint)
            self.project = self.project or self._client.project
        return self._client

    def close(self) -> None:
        if self._storage_client is not None:
            self._storage_client.transport.close()
            self._storage_client = None
        if self._client is not None and self._client_factory is None:
            self._client.close()
            self._client = None

    def dataset_id(self, schema: str) -> str:
        if self._dataset_name is not None:
            name = self._dataset_name(schema)
        else:
            if schema not in SCHEMAS:
                raise WarehouseError(f"unknown warehouse schema {schema!r}; known: {list(SCHEMAS)}")
            name = f"{self.dataset_prefix}{schema}"
        return check_identifier(name)

    def _project(self) -> str:
        project = self.project or self.client.project
        if not project or not _PROJECT_ID.match(project):
            raise WarehouseError(f"invalid BigQuery project id {project!r}")
        return project

    def table_id(self, spec: TableSpec, name: str | None = None) -> str:
        """``project.dataset.table`` (API form)."""
        return f"{self._project()}.{self.dataset_id(spec.schema)}.{check_identifier(name or spec.name)}"

    def _sql_name(self, spec: TableSpec, name: str | None = None) -> str:
        """The quoted table name for SQL text."""
        return f"`{self._project()}`.{BIGQUERY.quote(self.dataset_id(spec.schema))}.{BIGQUERY.quote(name or spec.name)}"

    @contextmanager
    def _errors(self, action: str, spec: TableSpec) -> Iterator[None]:
        """Turn Google client errors into ``WarehouseError`` naming the table (nothing secret)."""
        from google.api_core import exceptions as api_exceptions
        from google.auth import exceptions as auth_exceptions

        auth_failure = None
        try:
            yield
        except WarehouseError:
            raise
        except auth_exceptions.GoogleAuthError as exc:
            auth_failure = type(exc).__name__
        except (api_exceptions.GoogleAPIError, ValueError, OSError) as exc:
            raise WarehouseError(
                f"BigQuery {action} {spec.fqn} ({self.table_id(spec)}) failed: {_error_text(exc)}"
            ) from exc
        if auth_failure is not None:  # outside the except block: no chained auth response
            raise BigQueryCredentialsError(
                f"BigQuery {action} {spec.fqn}: credentials were refused or unavailable ({auth_failure})"
            )

    def _job_labels(self, spec: TableSpec, op: str) -> dict[str, str]:
        return {**self.labels, "op": op, "dataset": spec.schema, "table": spec.name.lower()[:63]}

    # -- DDL ----------------------------------------------------------------------------------
    def _ensure_dataset(self, spec: TableSpec) -> None:
        from google.cloud import bigquery

        ds_id = f"{self._project()}.{self.dataset_id(spec.schema)}"
        if ds_id in self._known_datasets:
            return
        ds = bigquery.Dataset(ds_id)
        ds.location = self.location
        ds.labels = dict(self.labels)
        ds = self.client.create_dataset(ds, exists_ok=True)
        if ds.location and self.location and ds.location.lower() != self.location.lower():
            raise WarehouseError(
                f"BigQuery dataset {ds_id} is in {ds.location}, not in the configured CHIMERA_BQ_LOCATION "
                f"{self.location}"
            )
        self._known_datasets.add(ds_id)

    def _table_definition(self, spec: TableSpec, name: str | None = None):
        from google.cloud import bigquery

        table = bigquery.Table(self.table_id(spec, name), schema=bigquery_schema(spec))
        if spec.description:
            table.description = spec.description
        return table

    def ensure_table(self, spec: TableSpec) -> None:
        from google.cloud import bigquery

        if spec.fqn in self._known_tables:
            return
        with self._errors("create", spec):
            self._ensure_dataset(spec)
            table = self._table_definition(spec)
            if spec.date_column:
                table.time_partitioning = bigquery.TimePartitioning(
                    type_=bigquery.TimePartitioningType.DAY, field=spec.date_column
                )
            if spec.clustering:
                table.clustering_fields = list(spec.clustering)
            table.labels = dict(self.labels)
            existing = self.client.create_table(table, exists_ok=True)
            self._check_layout(spec, existing)
        self._known_tables.add(spec.fqn)

    def _check_layout(self, spec: TableSpec, table) -> None:
        """Reconcile an existing table with the spec: columns and STRUCT fields the spec appended are
        added (NULLABLE, as BigQuery allows); a changed type or partitioning is refused."""
        part = table.time_partitioning.field if table.time_partitioning else None
        if spec.date_column and part != spec.date_column:
            raise WarehouseError(
                f"BigQuery table {spec.fqn} is partitioned on {part!r}, the spec says {spec.date_column!r}; "
                "recreate it (drop, then rematerialize)"
            )
        problems: list[str] = []
        added: list[str] = []
        evolved = _evolve(list(table.schema), spec.columns, "", problems, added)
        if problems:
            raise WarehouseError(f"BigQuery table {spec.fqn} does not match its spec: {'; '.join(problems)}")
        if not added:
            return
        log.info("adding %s to BigQuery table %s", added, spec.fqn)
        table.schema = evolved
        updated = self.client.update_table(table, ["schema"])
        still: list[str] = []
        _evolve(list(updated.schema), spec.columns, "", [], still)
        if still:
            raise WarehouseError(f"BigQuery table {spec.fqn}: could not add {still} to its schema")

    def table_exists(self, spec: TableSpec) -> bool:
        from google.api_core.exceptions import NotFound

        with self._errors("look up", spec):
            try:
                self.client.get_table(self.table_id(spec))
                return True
            except NotFound:
                self._known_tables.discard(spec.fqn)
                return False

    def drop_table(self, spec: TableSpec) -> None:
        with self._errors("drop", spec):
            self.client.delete_table(self.table_id(spec), not_found_ok=True)
        self._known_tables.discard(spec.fqn)

    def table_info(self, spec: TableSpec) -> dict:
        """What BigQuery reports for the table: partitioning, clustering, nested schema, size."""
        with self._errors("describe", spec):
            t = self.client.get_table(self.table_id(spec))
        tp = t.time_partitioning
        return {
            "table_id": self.table_id(spec),
            "partition_field": tp.field if tp else None,
            "partition_type": tp.type_ if tp else None,
            "clustering": list(t.clustering_fields or []),
            "schema": _schema_as_list(t.schema),
            "num_rows": t.num_rows,
            "location": t.location,
        }

    def table_layout(self, spec: TableSpec) -> dict:
        """Same shape as ``DuckDBWarehouse.table_layout``, but as BigQuery enforces it."""
        info = self.table_info(spec)
        return {"partition_by": info["partition_field"], "cluster_by": info["clustering"], "key": list(spec.key)}

    # -- writes -------------------------------------------------------------------------------
    def _stage(self, spec: TableSpec, frame: pl.DataFrame) -> str:
        """Create an expiring staging table and load ``frame`` into it with one load job."""
        from google.cloud import bigquery

        name = f"_stg_{spec.name[:40]}_{uuid.uuid4().hex[:12]}"
        staging = self._table_definition(spec, name)
        staging.expires = dt.datetime.now(dt.UTC) + self.staging_ttl
        staging.labels = {**self.labels, "staging": "true"}
        self.client.create_table(staging)
        if frame.height:
            buf = io.BytesIO()
            table = frame.to_arrow().cast(spec.arrow_schema())
            pq.write_table(table, buf, compression="zstd")
            buf.seek(0)
            config = bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.PARQUET,
                write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
                create_disposition=bigquery.CreateDisposition.CREATE_NEVER,
                schema=bigquery_schema(spec),
                labels=self._job_labels(spec, "stage"),
            )
            job = self.client.load_table_from_file(
                buf, self.table_id(spec, name), job_config=config, location=self.location, rewind=True
            )
            job.result()
            if job.output_rows is not None and job.output_rows != frame.height:
                raise WarehouseError(f"{spec.fqn}: staged {job.output_rows} rows, expected {frame.height}")
        return name

    def _query(self, sql: str, params: list[tuple[str, Any]], spec: TableSpec, op: str):
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(
            query_parameters=[query_parameter(n, v) for n, v in params], labels=self._job_labels(spec, op)
        )
        return self.client.query(sql, job_config=config, location=self.location)

    def merge(
        self, spec: TableSpec, frame: pl.DataFrame, slice_: Slice | None, audit: Audit | None = None
    ) -> MergeResult:
        frame = prepare_frame(spec, frame, slice_)
        self.ensure_table(spec)
        staging: str | None = None
        t0 = time.monotonic()
        try:
            with self._errors("stage rows for", spec):
                staging = self._stage(spec, frame)
            if audit is not None:
                audit(self._read_sql(spec, f"SELECT * FROM {self._sql_name(spec, staging)}", [], "audit"))  # noqa: S608 - names from the spec
            if self.before_commit is not None:
                self.before_commit(spec)
            for sql, params in self._merge_jobs(spec, frame, staging, slice_):
                job = self._run_dml(sql, params, spec)
                log.info(
                    "merged into %s: %s row(s) affected, %s bytes billed (%d staged, %.1fs so far)",
                    spec.fqn, job.num_dml_affected_rows, job.total_bytes_billed, frame.height,
                    time.monotonic() - t0,
                )
        finally:
            if staging is not None:
                self._drop_staging(spec, staging)
        return MergeResult(spec.fqn, frame.height)

    def _merge_jobs(
        self, spec: TableSpec, frame: pl.DataFrame, staging: str, slice_: Slice | None
    ) -> list[tuple[str, list[tuple[str, Any]]]]:
        """The statement(s) publishing the staging table: normally ONE MERGE.

        A write spanning more partition days than one BigQuery job may modify (4,000) is split into
        one MERGE per window of dates: by default inside ONE multi-statement transaction (all or
        nothing); with ``atomic_windows = False`` as separate jobs, each atomic and idempotent, so an
        interruption leaves whole windows old or new (never a partial partition) and a re-run converges.
        """
        target, stg = self._sql_name(spec), self._sql_name(spec, staging)
        windows = self._date_windows(spec, frame, slice_)
        if windows is None:
            return [merge_statement(spec, target, stg, slice_, BIGQUERY)]
        assert spec.date_column is not None
        date_col = BIGQUERY.quote(spec.date_column)
        jobs: list[tuple[str, list[tuple[str, Any]]]] = []
        for k, (lo, hi) in enumerate(windows):
            source = f"(SELECT * FROM {stg} WHERE {date_col} BETWEEN @w{k}_lo AND @w{k}_hi)"  # noqa: S608 - spec names
            sub = None
            if slice_ is not None:
                sub = Slice(tuple((sym, max(a, lo), min(b, hi)) for sym, a, b in slice_.ranges if a <= hi and b >= lo))
            sql, named = merge_statement(spec, target, source, sub, BIGQUERY)
            # Each window's slice parameters get their own names (@p3 -> @w2_p3).
            sql = re.sub(r"@(p\d+)\b", rf"@w{k}_\1", sql)
            jobs.append((sql, [(f"w{k}_lo", lo), (f"w{k}_hi", hi)] + [(f"w{k}_{n}", v) for n, v in named]))
        log.info(
            "%s: the write spans more than %d partition days: %d MERGEs%s", spec.fqn,
            self.max_partitions_per_merge, len(jobs), " in one transaction" if self.atomic_windows else "",
        )
        if not self.atomic_windows:
            return jobs
        script = (
            "BEGIN\n  BEGIN TRANSACTION;\n"
            + "".join(f"{sql.rstrip()};\n" for sql, _ in jobs)
            + "  COMMIT TRANSACTION;\nEXCEPTION WHEN ERROR THEN\n  ROLLBACK TRANSACTION;\n"
            "  RAISE USING MESSAGE = @@error.message;\nEND;"
        )
        return [(script, [p for _, params in jobs for p in params])]

    def _date_windows(
        self, spec: TableSpec, frame: pl.DataFrame, slice_: Slice | None
    ) -> list[tuple[dt.date, dt.date]] | None:
        """Date windows of at most ``max_partitions_per_merge`` partition days each, or None when the
        write fits one MERGE. The days a MERGE may modify: the slice's days (or, without a slice, the
        frame's dates); a whole-table write of a partitioned table is never split."""
        if spec.date_column is None or (slice_ is not None and slice_.everything):
            return None
        if slice_ is None:
            days = set(frame.get_column(spec.date_column).unique().to_list())
        else:
            days = set()
            for _, lo, hi in slice_.ranges:
                days.update(lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1))
        limit = self.max_partitions_per_merge
        if len(days) <= limit:
            return None
        ordered = sorted(days)
        return [(ordered[i], ordered[min(i + limit, len(ordered)) - 1]) for i in range(0, len(ordered), limit)]

    def _run_dml(self, sql: str, params: list[tuple[str, Any]], spec: TableSpec, attempts: int = 5):
        """Run one DML statement; retry only BigQuery's concurrent-DML conflicts (the statement is atomic,
        so a failed attempt changed nothing)."""
        delay = 1.0
        for attempt in range(1, attempts + 1):
            try:
                with self._errors("merge into", spec):
                    job = self._query(sql, params, spec, "merge")
                    job.result()
                    return job
            except WarehouseError as exc:
                if attempt == attempts or not any(m in str(exc).lower() for m in _RETRYABLE_DML):
                    raise
                log.warning("%s: concurrent DML conflict, retrying in %.0fs (%d/%d)", spec.fqn, delay, attempt, attempts)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")

    def _drop_staging(self, spec: TableSpec, name: str) -> None:
        try:
            self.client.delete_table(self.table_id(spec, name), not_found_ok=True)
        except Exception as exc:  # never mask the write's own outcome; the table expires anyway
            log.warning("could not drop staging table %s (it expires by itself): %s", name, _error_text(exc))

    # -- reads --------------------------------------------------------------------------------
    def _emulator_storage_client(self):
        """A Storage Read client on a plain-text gRPC channel to the emulator (never googleapis)."""
        if self._storage_client is None:
            import grpc
            from google.cloud import bigquery_storage_v1
            from google.cloud.bigquery_storage_v1.services.big_query_read.transports import (
                BigQueryReadGrpcTransport,
            )

            channel = grpc.insecure_channel(self.storage_endpoint)
            self._storage_client = bigquery_storage_v1.BigQueryReadClient(
                transport=BigQueryReadGrpcTransport(channel=channel)
            )
        return self._storage_client

    def _to_arrow(self, rows) -> pa.Table:
        if not self.use_storage_api:
            return rows.to_arrow(create_bqstorage_client=False)
        if self.endpoint:
            if not self.storage_endpoint:  # the default Storage client would dial googleapis
                return rows.to_arrow(create_bqstorage_client=False)
            with _quiet_storage_deprecation():
                return rows.to_arrow(
                    bqstorage_client=self._emulator_storage_client(), create_bqstorage_client=False
                )
        from google.api_core import exceptions as api_exceptions

        try:
            with _quiet_storage_deprecation():
                return rows.to_arrow(create_bqstorage_client=True)
        except (api_exceptions.PermissionDenied, api_exceptions.Forbidden) as exc:
            log.warning(
                "BigQuery Storage Read API refused (%s); reading through the REST API instead (slower). "
                "Grant roles/bigquery.readSessionUser to avoid this.", type(exc).__name__,
            )
            self.use_storage_api = False
            return rows.to_arrow(create_bqstorage_client=False)

    def _read_sql(self, spec: TableSpec, sql: str, params: list[tuple[str, Any]], op: str) -> pl.DataFrame:
        with self._errors("read", spec):
            rows = self._query(sql, params, spec, op).result()
            table = self._to_arrow(rows)
        return conform(spec, pl.from_arrow(table))

    def read(
        self, spec: TableSpec, slice_: Slice | None = None, columns: list[str] | None = None
    ) -> pl.DataFrame:
        cols = columns or spec.column_names
        for c in cols:
            spec.column(c)  # allow-list: only declared columns
        if not self.table_exists(spec):
            return spec.empty_frame().select(cols)
        sql = f"SELECT {', '.join(BIGQUERY.quote(c) for c in cols)} FROM {self._sql_name(spec)} AS t"  # noqa: S608 - names from the spec
        params: list[tuple[str, Any]] = []
        if slice_ is not None and not slice_.everything:
            pred, params = slice_predicate(spec, slice_, "t", BIGQUERY)
            sql += f" WHERE {pred}"
        out = self._read_sql(spec, sql, params, "read")
        if out.height == 0 and out.width == 0:
            return spec.empty_frame().select(cols)
        return out.select(cols)

    def row_count(self, spec: TableSpec) -> int:
        if not self.table_exists(spec):
            return 0
        with self._errors("count", spec):
            rows = self._query(f"SELECT COUNT(*) AS n FROM {self._sql_name(spec)}", [], spec, "count").result()  # noqa: S608 - names from the spec
            return int(next(iter(rows))[0])

    # -- maintenance (tests, teardown) ------------------------------------------------------------
    def drop_datasets(self, schemas: Sequence[str] = SCHEMAS) -> None:
        """Delete this warehouse's datasets with everything in them (test teardown; never in production code)."""
        for schema in schemas:
            ds_id = f"{self._project()}.{self.dataset_id(schema)}"
            self.client.delete_dataset(ds_id, delete_contents=True, not_found_ok=True)
            self._known_datasets.discard(ds_id)
        self._known_tables.clear()
