"""BigQuery DDL of ``BigQueryWarehouse``: datasets (looked up before created), tables from the spec
(partition grain, clustering, partition filter), layout checks and schema evolution, descriptions."""

from __future__ import annotations

import datetime as dt
import logging

from chimera_assets.schemas import TableSpec
from chimera_assets.warehouse.base import WarehouseError, spec_dialect_types
from chimera_assets.warehouse.bigquery_client import bigquery_schema, evolve, schema_as_list

# The REST API reports legacy type names.
_BIGQUERY_ALIASES = {"FLOAT": "FLOAT64", "INTEGER": "INT64", "BOOLEAN": "BOOL", "RECORD": "STRUCT"}

log = logging.getLogger(__name__)


class BigQueryTablesMixin:
    """Datasets and tables; mixed into ``BigQueryWarehouse`` (uses its client, names and session)."""

    def _ensure_dataset_id(self, dataset: str, default_expiration: dt.timedelta | None = None) -> None:
        """Get the dataset; create it only if it does not exist (``datasets.create`` is then the only
        extra permission needed). A dataset in another location is refused."""
        from google.api_core.exceptions import NotFound
        from google.cloud import bigquery

        ds_id = f"{self._project()}.{dataset}"
        if ds_id in self._known_datasets:
            return
        try:
            ds = self.client.get_dataset(ds_id)
        except NotFound:
            new = bigquery.Dataset(ds_id)
            new.location = self.location
            new.labels = dict(self.labels)
            if default_expiration is not None:
                new.default_table_expiration_ms = int(default_expiration.total_seconds() * 1000)
            ds = self.client.create_dataset(new, exists_ok=True)  # exists_ok: another writer won the race
        if ds.location and self.location and ds.location.lower() != self.location.lower():
            raise WarehouseError(
                f"BigQuery dataset {ds_id} is in {ds.location}, not in the configured CHIMERA_BQ_LOCATION "
                f"{self.location}"
            )
        self._known_datasets.add(ds_id)

    def _ensure_dataset(self, spec: TableSpec) -> None:
        with self.session():
            self._ensure_dataset_id(self.dataset_id(spec.schema))

    def table_definition(self, spec: TableSpec, table_id: str | None = None, partitioned: bool = True):
        """The ``bigquery.Table`` the spec describes: schema, partitioning, clustering, partition filter."""
        from google.cloud import bigquery

        table = bigquery.Table(table_id or self.table_id(spec), schema=bigquery_schema(spec))
        if spec.description:
            table.description = spec.description
        table.labels = dict(self.labels)
        if partitioned and spec.date_column:
            table.time_partitioning = bigquery.TimePartitioning(type_=spec.partition_granularity, field=spec.date_column)
            table.require_partition_filter = self.requires_partition_filter(spec)
        if partitioned and spec.bigquery_clustering:
            table.clustering_fields = list(spec.bigquery_clustering)
        return table

    def requires_partition_filter(self, spec: TableSpec) -> bool:
        return self.require_partition_filters and spec.partition_filter_required

    def ensure_table(self, spec: TableSpec) -> None:
        from google.api_core.exceptions import NotFound

        if spec.fqn in self._known_tables:
            return
        with self.session(), self._errors("create", spec):
            self._ensure_dataset_id(self.dataset_id(spec.schema))
            try:
                existing = self.client.get_table(self.table_id(spec))
            except NotFound:
                existing = self.client.create_table(self.table_definition(spec), exists_ok=True)
            self._check_layout(spec, existing)
        self._known_tables.add(spec.fqn)

    def _check_layout(self, spec: TableSpec, table) -> None:
        """Reconcile an existing table with the spec: columns and STRUCT fields the spec appended are
        added (NULLABLE, as BigQuery allows); another partition column or grain is refused (the grain
        is changed by ``chimera bigquery migrate-partitioning``)."""
        tp = table.time_partitioning
        part = tp.field if tp else None
        if spec.date_column and part != spec.date_column:
            raise WarehouseError(
                f"BigQuery table {spec.fqn} is partitioned on {part!r}, the spec says {spec.date_column!r}; "
                "recreate it (drop, then rematerialize)"
            )
        if spec.date_column and tp.type_ != spec.partition_granularity:
            raise WarehouseError(
                f"BigQuery table {spec.fqn} is partitioned by {tp.type_}, the spec says {spec.partition_granularity}; "
                "migrate it with `chimera bigquery migrate-partitioning --apply` (docs/deployment.md)"
            )
        if spec.date_column and list(table.clustering_fields or []) != list(spec.bigquery_clustering):
            log.warning("BigQuery table %s is clustered on %s, the spec says %s (`chimera bigquery "
                        "migrate-partitioning --apply` updates it)", spec.fqn, table.clustering_fields,
                        list(spec.bigquery_clustering))
        problems: list[str] = []
        added: list[str] = []
        evolved = evolve(list(table.schema), spec.columns, "", problems, added)
        if problems:
            raise WarehouseError(f"BigQuery table {spec.fqn} does not match its spec: {'; '.join(problems)}")
        if not added:
            return
        log.info("adding %s to BigQuery table %s", added, spec.fqn)
        table.schema = evolved
        updated = self.client.update_table(table, ["schema"])
        still: list[str] = []
        evolve(list(updated.schema), spec.columns, "", [], still)
        if still:
            raise WarehouseError(f"BigQuery table {spec.fqn}: could not add {still} to its schema")

    def table_exists(self, spec: TableSpec) -> bool:
        from google.api_core.exceptions import NotFound

        with self.session(), self._errors("look up", spec):
            try:
                self.client.get_table(self.table_id(spec))
                return True
            except NotFound:
                self._known_tables.discard(spec.fqn)
                return False

    def stored_column_types(self, spec: TableSpec) -> dict[str, str]:
        from google.api_core.exceptions import NotFound

        with self.session(), self._errors("describe", spec):
            try:
                table = self.client.get_table(self.table_id(spec))
            except NotFound:
                return {}
        return spec_dialect_types(spec, {f.name: f.field_type for f in table.schema}, _BIGQUERY_ALIASES, bigquery=True)

    def drop_table(self, spec: TableSpec) -> None:
        with self.session(), self._errors("drop", spec):
            self.client.delete_table(self.table_id(spec), not_found_ok=True)
        self._known_tables.discard(spec.fqn)

    def table_info(self, spec: TableSpec) -> dict:
        """What BigQuery reports for the table: partitioning, clustering, nested schema, size."""
        with self.session(), self._errors("describe", spec):
            t = self.client.get_table(self.table_id(spec))
        tp = t.time_partitioning
        return {
            "table_id": self.table_id(spec),
            "partition_field": tp.field if tp else None,
            "partition_type": tp.type_ if tp else None,
            "require_partition_filter": bool(t.require_partition_filter),
            "clustering": list(t.clustering_fields or []),
            "schema": schema_as_list(t.schema),
            "num_rows": t.num_rows,
            "num_bytes": t.num_bytes,
            "location": t.location,
        }

    def table_layout(self, spec: TableSpec) -> dict:
        """Same shape as ``DuckDBWarehouse.table_layout``, but as BigQuery enforces it."""
        info = self.table_info(spec)
        return {"partition_by": info["partition_field"], "partition_type": info["partition_type"],
                "cluster_by": info["clustering"], "key": list(spec.key)}
