"""The production backend: Google BigQuery (or the local emulator when ``CHIMERA_BQ_ENDPOINT`` is set).

A write is: validate the frame (``prepare_frame``) -> blocking audit of that local frame -> LOAD JOB
of a parquet buffer into a staging table in the staging dataset (its tables expire by themselves) ->
``before_commit`` hook -> ONE ``MERGE`` (atomic: the target changes completely or not at all) -> the
staging table is dropped. A crash anywhere before the MERGE leaves the target untouched and at worst a
staging table that BigQuery deletes when it expires.

Tables are created from the spec: REQUIRED for non-nullable columns, RECORD for STRUCTs, partitioned
on the spec's date column at ``spec.partition_granularity`` (MONTH: 2010-2026 is ~200 partitions, so
any backfill or whole-table rebuild is one MERGE under BigQuery's 4,000-partitions-per-job limit),
clustered on ``spec.bigquery_clustering``, ``require_partition_filter`` on the raw tables. Values
always travel as query parameters; identifiers come only from the specs (``check_identifier``).

Every job carries a byte cap, a timeout and labels, and is retried on transient errors
(``bigquery_jobs``). Datasets are looked up before they are created (``datasets.create`` is needed
only when one is missing), so a least-privilege account works with pre-created datasets.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from chimera_assets.schemas import TableSpec, check_identifier
from chimera_assets.settings import (
    DEFAULT_JOB_TIMEOUT_S,
    DEFAULT_MAX_BYTES_BILLED,
    DEFAULT_STAGING_TTL_HOURS,
    MIN_STAGING_TTL_HOURS,
    SCHEMAS,
    Settings,
    bq_storage_endpoint,
)
from chimera_assets.warehouse.base import Audit, Slice, Warehouse, WarehouseError, prepare_frame
from chimera_assets.warehouse.bigquery_client import (  # noqa: F401 - re-exported for callers and tests
    PROJECT_ID,
    BigQueryCredentialsError,
    bigquery_schema,
    error_text,
    evolve,
    make_client,
    query_parameter,
    quiet_storage_deprecation,
    schema_as_list,
)
from chimera_assets.warehouse.bigquery_jobs import (
    BigQueryMergeResult,
    JobStats,
    RetryPolicy,
    sanitize_labels,
    slice_labels,
)
from chimera_assets.warehouse.bigquery_reads import ALL_DATES_FROM, BigQueryReadsMixin  # noqa: F401 - re-exported
from chimera_assets.warehouse.bigquery_tables import BigQueryTablesMixin
from chimera_assets.warehouse.merge_sql import BIGQUERY, merge_statement

log = logging.getLogger(__name__)



class BigQueryWarehouse(BigQueryTablesMixin, BigQueryReadsMixin, Warehouse):
    kind = "bigquery"

    def __init__(
        self,
        project: str | None,
        location: str = "US",
        dataset_prefix: str = "",
        endpoint: str | None = None,
        client: Any = None,
        client_scope: Callable[[], AbstractContextManager[Any]] | None = None,
        dataset_name: Callable[[str], str] | None = None,
        staging_dataset: str | None = None,
        staging_ttl: dt.timedelta = dt.timedelta(hours=DEFAULT_STAGING_TTL_HOURS),
        maximum_bytes_billed: int = DEFAULT_MAX_BYTES_BILLED,
        job_timeout_s: float = DEFAULT_JOB_TIMEOUT_S,
        retry_policy: RetryPolicy | None = None,
        use_storage_api: bool | None = None,
        storage_endpoint: str | None = None,
        labels: dict[str, str] | None = None,
        require_partition_filters: bool = True,
    ):
        """``client_scope`` (e.g. dagster-gcp's ``BigQueryResource.get_client``) is entered once per
        operation and its client is not kept afterwards; ``client`` is a fixed client (tests); without
        either, ``make_client`` builds one on first use.

        Reads go through the BigQuery Storage Read API (gRPC, ~10x faster than REST paging) against
        Google when no ``endpoint`` is set; against an emulator only when its gRPC ``storage_endpoint``
        ("host:port", plain-text channel) is given, else through REST. ``use_storage_api`` overrides.

        ``require_partition_filters=False`` creates the raw tables without ``require_partition_filter``:
        only for the emulator, which refuses every MERGE into such a table (it runs a MERGE as internal
        SELECTs without WHERE), where BigQuery accepts the partition filter of the MERGE's ON clause."""
        if dataset_prefix and not dataset_prefix.replace("_", "").isalnum():
            raise WarehouseError(f"invalid BigQuery dataset prefix {dataset_prefix!r}")
        if staging_ttl < dt.timedelta(hours=MIN_STAGING_TTL_HOURS):
            raise WarehouseError(f"staging_ttl {staging_ttl} is below {MIN_STAGING_TTL_HOURS} h")
        self.project = project
        self.location = location
        self.dataset_prefix = dataset_prefix
        self.endpoint = endpoint
        self.staging_dataset = check_identifier(staging_dataset or f"{dataset_prefix}staging")
        self.staging_ttl = staging_ttl
        self.maximum_bytes_billed = int(maximum_bytes_billed)
        self.job_timeout_s = float(job_timeout_s)
        self.retry_policy = retry_policy or RetryPolicy()
        self.require_partition_filters = require_partition_filters
        self.storage_endpoint = storage_endpoint
        if use_storage_api is None:
            use_storage_api = endpoint is None or storage_endpoint is not None
        self.use_storage_api = use_storage_api
        self._storage_client: Any = None
        self.labels = sanitize_labels({"app": "chimera", **(labels or {})})
        self._client = client
        self._client_scope = client_scope
        self._scoped = threading.local()
        self._dataset_name = dataset_name
        self._known_datasets: set[str] = set()
        self._known_tables: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Settings, client: Any = None, **kwargs: Any) -> BigQueryWarehouse:
        """The warehouse ``settings`` describe. An emulator's Storage Read gRPC address may come from
        ``CHIMERA_BQ_STORAGE_ENDPOINT`` ("127.0.0.1:9060"); it is ignored without CHIMERA_BQ_ENDPOINT."""
        if settings.bq_endpoint and "storage_endpoint" not in kwargs:
            kwargs["storage_endpoint"] = bq_storage_endpoint()
        kwargs.setdefault("staging_dataset", settings.staging_dataset_name)
        kwargs.setdefault("staging_ttl", dt.timedelta(hours=settings.bq_staging_ttl_hours))
        kwargs.setdefault("maximum_bytes_billed", settings.bq_max_bytes_billed)
        kwargs.setdefault("job_timeout_s", settings.bq_job_timeout_s)
        # The emulator cannot MERGE into a table that requires a partition filter (see __init__).
        kwargs.setdefault("require_partition_filters", not settings.bq_endpoint)
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

        Every operation enters ``resource.get_client()`` (where its credentials are set up) and uses that
        client only inside it. Settings still decide the dataset names."""
        settings = dataclasses.replace(
            settings,
            bq_project=resource.project or settings.bq_project,
            bq_location=resource.location or settings.bq_location,
        )
        return cls.from_settings(settings, client_scope=resource.get_client, **kwargs)

    def __repr__(self) -> str:
        where = f", endpoint={self.endpoint!r}" if self.endpoint else ""
        return f"BigQueryWarehouse(project={self.project!r}, prefix={self.dataset_prefix!r}{where})"

    # -- client and names ---------------------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator[Any]:
        """The client for one operation. With a ``client_scope`` the scope is entered here (once, even
        when operations nest) and left when the outermost operation ends; nothing keeps its client."""
        current = getattr(self._scoped, "client", None)
        if current is not None or self._client_scope is None:
            yield current if current is not None else self.client
            return
        with self._client_scope() as client:
            self._scoped.client = client
            self.project = self.project or client.project
            try:
                yield client
            finally:
                self._scoped.client = None

    @property
    def client(self):
        scoped = getattr(self._scoped, "client", None)
        if scoped is not None:
            return scoped
        if self._client_scope is not None:
            raise WarehouseError("the BigQuery client of a resource is only available inside warehouse.session()")
        if self._client is None:
            self._client = make_client(self.project, self.location, self.endpoint)
            self.project = self.project or self._client.project
        return self._client

    def close(self) -> None:
        if self._storage_client is not None:
            self._storage_client.transport.close()
            self._storage_client = None
        if self._client is not None:
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
        if not project or not PROJECT_ID.match(project):
            raise WarehouseError(f"invalid BigQuery project id {project!r}")
        return project

    def table_id(self, spec: TableSpec, name: str | None = None) -> str:
        """``project.dataset.table`` (API form)."""
        return f"{self._project()}.{self.dataset_id(spec.schema)}.{check_identifier(name or spec.name)}"

    def full_table_name(self, spec: TableSpec) -> str:
        """``project.<prefix>dataset.table``: the ``dagster/table_name`` of the asset."""
        return self.table_id(spec)

    def staging_table_id(self, name: str) -> str:
        return f"{self._project()}.{self.staging_dataset}.{check_identifier(name)}"

    def _sql_name(self, spec: TableSpec, name: str | None = None) -> str:
        """The quoted table name for SQL text."""
        return f"`{self._project()}`.{BIGQUERY.quote(self.dataset_id(spec.schema))}.{BIGQUERY.quote(name or spec.name)}"

    def _staging_sql_name(self, name: str) -> str:
        return f"`{self._project()}`.{BIGQUERY.quote(self.staging_dataset)}.{BIGQUERY.quote(name)}"

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
            hint = ""
            if "bytesbilledlimitexceeded" in error_text(exc).lower():
                hint = (f"; the job would bill more than the byte cap of {self.maximum_bytes_billed} bytes "
                        "(CHIMERA_BQ_MAX_BYTES_BILLED / the resource's maximum_bytes_billed)")
            raise WarehouseError(
                f"BigQuery {action} {spec.fqn} ({self.table_id(spec)}) failed: {error_text(exc)}{hint}"
            ) from exc
        if auth_failure is not None:  # outside the except block: no chained auth response
            raise BigQueryCredentialsError(
                f"BigQuery {action} {spec.fqn}: credentials were refused or unavailable ({auth_failure})"
            )

    # -- jobs -----------------------------------------------------------------------------------
    def job_labels(self, spec: TableSpec, op: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        """Labels of one job: the warehouse's (app, Dagster run id), the asset, the operation, and the
        partition range of the write or read (``extra``)."""
        return {
            **self.labels,
            **sanitize_labels({"op": op, "dataset": spec.schema, "table": spec.name, "asset": f"{spec.schema}__{spec.name}"}),
            **(extra or {}),
        }

    def _retrying(self, attempt: Callable[[], Any], spec: TableSpec, op: str, stats: JobStats | None) -> Any:
        def on_retry(exc: BaseException) -> None:
            if stats is not None:
                stats.retries += 1
            log.warning("%s: BigQuery %s failed transiently, retrying: %s", spec.fqn, op, error_text(exc))

        return self.retry_policy.retry(on_retry)(attempt)()

    def run_query(
        self,
        sql: str,
        params: list[tuple[str, Any]],
        spec: TableSpec,
        op: str,
        labels: dict[str, str] | None = None,
        stats: JobStats | None = None,
    ):
        """Run one query job to completion (retried on transient errors); returns (job, rows)."""
        from google.cloud import bigquery

        def attempt():
            config = bigquery.QueryJobConfig(
                query_parameters=[query_parameter(n, v) for n, v in params],
                labels=self.job_labels(spec, op, labels),
                maximum_bytes_billed=self.maximum_bytes_billed,
                job_timeout_ms=int(self.job_timeout_s * 1000),
            )
            # job_retry=None: this loop is the one retry policy (the library's would nest inside it).
            job = self.client.query(sql, job_config=config, location=self.location, job_retry=None)
            rows = job.result(timeout=self.job_timeout_s + 60)
            return job, rows

        job, rows = self._retrying(attempt, spec, op, stats)
        if stats is not None:
            stats.add(job)
        return job, rows

    def _load(self, spec: TableSpec, frame: pl.DataFrame, table_id: str, labels: dict[str, str], stats: JobStats):
        """One parquet load job of ``frame`` into ``table_id`` (WRITE_TRUNCATE: a retried load cannot
        leave the rows twice)."""
        from google.cloud import bigquery

        buf = io.BytesIO()
        pq.write_table(frame.to_arrow().cast(spec.arrow_schema()), buf, compression="zstd")

        def attempt():
            config = bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.PARQUET,
                write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
                create_disposition=bigquery.CreateDisposition.CREATE_NEVER,
                schema=bigquery_schema(spec),
                labels=self.job_labels(spec, "stage", labels),
                job_timeout_ms=int(self.job_timeout_s * 1000),
            )
            buf.seek(0)
            job = self.client.load_table_from_file(buf, table_id, job_config=config, location=self.location, rewind=True)
            job.result(timeout=self.job_timeout_s + 60)
            return job

        job = self._retrying(attempt, spec, "stage", stats)
        stats.add(job)
        if job.output_rows is not None and job.output_rows != frame.height:
            raise WarehouseError(f"{spec.fqn}: staged {job.output_rows} rows, expected {frame.height}")

    # -- writes -------------------------------------------------------------------------------
    @staticmethod
    def staging_prefix(spec: TableSpec) -> str:
        """Names of ``spec``'s staging tables start with this (<= 51 chars: + 12 hex <= 63)."""
        return f"_stg_{spec.schema[:12]}_{spec.name[:32]}_"

    def _stage(self, spec: TableSpec, frame: pl.DataFrame, labels: dict[str, str], stats: JobStats) -> str:
        """Create an expiring table in the staging dataset and load ``frame`` into it (one load job)."""
        self._ensure_dataset_id(self.staging_dataset, default_expiration=self.staging_ttl)
        name = f"{self.staging_prefix(spec)}{uuid.uuid4().hex[:12]}"
        staging = self.table_definition(spec, self.staging_table_id(name), partitioned=False)
        staging.expires = dt.datetime.now(dt.UTC) + self.staging_ttl
        staging.labels = {**self.labels, "staging": "true"}
        self.client.create_table(staging)
        if frame.height:
            self._load(spec, frame, self.staging_table_id(name), labels, stats)
        return name

    def merge(
        self, spec: TableSpec, frame: pl.DataFrame, slice_: Slice | None, audit: Audit | None = None
    ) -> BigQueryMergeResult:
        frame = prepare_frame(spec, frame, slice_)
        stats = JobStats()
        bounds = None
        if spec.date_column and frame.height and (slice_ is None or not slice_.everything):
            dates = frame.get_column(spec.date_column)
            bounds = (dates.min(), dates.max())
        labels = slice_labels(slice_, bounds)
        if audit is not None:
            audit(frame)  # the local frame is exactly what would be staged: no download of it
        with self.session():
            self.ensure_table(spec)
            if slice_ is None and frame.height == 0:
                return BigQueryMergeResult(spec.fqn, 0, jobs=stats)  # nothing to upsert, nothing to delete
            staging: str | None = None
            t0 = time.monotonic()
            try:
                with self._errors("stage rows for", spec):
                    staging = self._stage(spec, frame, labels, stats)
                if self.before_commit is not None:
                    self.before_commit(spec)
                sql, params = merge_statement(
                    spec, self._sql_name(spec), self._staging_sql_name(staging), slice_, BIGQUERY,
                    bounds=bounds if slice_ is None else None,
                )
                with self._errors("merge into", spec):
                    job, _ = self.run_query(sql, params, spec, "merge", labels, stats)
                log.info(
                    "merged into %s: %s row(s) affected, %s bytes billed (%d staged, %.1fs)",
                    spec.fqn, job.num_dml_affected_rows, job.total_bytes_billed, frame.height, time.monotonic() - t0,
                )
            finally:
                if staging is not None:
                    self._drop_staging(staging)
        return BigQueryMergeResult(spec.fqn, frame.height, jobs=stats)

    def _drop_staging(self, name: str) -> None:
        try:
            self.client.delete_table(self.staging_table_id(name), not_found_ok=True)
        except Exception as exc:  # never mask the write's own outcome; the table expires anyway
            log.warning("could not drop staging table %s (it expires by itself): %s", name, error_text(exc))

    # -- maintenance (tests, teardown) ------------------------------------------------------------
    def drop_datasets(self, schemas: Sequence[str] = SCHEMAS) -> None:
        """Delete this warehouse's datasets (and its staging dataset) with everything in them (test
        teardown; never in production code)."""
        with self.session():
            for dataset in [*(self.dataset_id(s) for s in schemas), self.staging_dataset]:
                ds_id = f"{self._project()}.{dataset}"
                self.client.delete_dataset(ds_id, delete_contents=True, not_found_ok=True)
                self._known_datasets.discard(ds_id)
        self._known_tables.clear()
