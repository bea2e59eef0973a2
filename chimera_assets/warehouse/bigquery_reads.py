"""BigQuery reads of ``BigQueryWarehouse``: a query per read (date-filtered), results through the
Storage Read API (gRPC) where available, else REST paging."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import polars as pl
import pyarrow as pa

from chimera_assets.schemas import TableSpec
from chimera_assets.warehouse.base import Slice, conform
from chimera_assets.warehouse.bigquery_client import quiet_storage_deprecation
from chimera_assets.warehouse.bigquery_jobs import slice_labels
from chimera_assets.warehouse.merge_sql import BIGQUERY, slice_predicate

log = logging.getLogger(__name__)

#: Lower bound of the date filter an unbounded read of a ``require_partition_filter`` table sends.
ALL_DATES_FROM = dt.date(1900, 1, 1)


class BigQueryReadsMixin:
    """Reads; mixed into ``BigQueryWarehouse`` (uses its client, names, session and ``run_query``)."""

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
            with quiet_storage_deprecation():
                return rows.to_arrow(bqstorage_client=self._emulator_storage_client(), create_bqstorage_client=False)
        from google.api_core import exceptions as api_exceptions

        try:
            with quiet_storage_deprecation():
                return rows.to_arrow(create_bqstorage_client=True)
        except (api_exceptions.PermissionDenied, api_exceptions.Forbidden) as exc:
            log.warning(
                "BigQuery Storage Read API refused (%s); reading through the REST API instead (slower). "
                "Grant roles/bigquery.readSessionUser to avoid this.", type(exc).__name__,
            )
            self.use_storage_api = False
            return rows.to_arrow(create_bqstorage_client=False)

    def _where(self, spec: TableSpec, slice_: Slice | None) -> tuple[str, list[tuple[str, Any]]]:
        """The WHERE clause of a read: the slice; on a table that requires a partition filter and no
        slice, an explicit whole-history bound (and a warning: that read scans every partition)."""
        if slice_ is not None and not slice_.everything:
            pred, params = slice_predicate(spec, slice_, "t", BIGQUERY)
            return f" WHERE {pred}", params
        if spec.partition_filter_required:
            log.warning("unbounded read of %s scans every partition; pass a date range (a Slice)", spec.fqn)
            return f" WHERE t.{BIGQUERY.quote(spec.date_column)} >= @all_from", [("all_from", ALL_DATES_FROM)]
        return "", []

    def read(self, spec: TableSpec, slice_: Slice | None = None, columns: list[str] | None = None) -> pl.DataFrame:
        cols = columns or spec.column_names
        for c in cols:
            spec.column(c)  # allow-list: only declared columns
        with self.session():
            if not self.table_exists(spec):
                return spec.empty_frame().select(cols)
            where, params = self._where(spec, slice_)
            sql = f"SELECT {', '.join(BIGQUERY.quote(c) for c in cols)} FROM {self._sql_name(spec)} AS t{where}"  # noqa: S608 - names from the spec
            with self._errors("read", spec):
                _, rows = self.run_query(sql, params, spec, "read", slice_labels(slice_))
                table = self._to_arrow(rows)
        out = conform(spec, pl.from_arrow(table))
        if out.height == 0 and out.width == 0:
            return spec.empty_frame().select(cols)
        return out.select(cols)

    def row_count(self, spec: TableSpec) -> int:
        with self.session():
            if not self.table_exists(spec):
                return 0
            where, params = self._where(spec, None)
            with self._errors("count", spec):
                _, rows = self.run_query(f"SELECT COUNT(*) AS n FROM {self._sql_name(spec)} AS t{where}", params, spec, "count")  # noqa: S608 - names from the spec
                return int(next(iter(rows))[0])
