"""The Dagster IO manager: polars frames in and out of the warehouse, one MERGE per write.

Unlike the stock DB IO managers it stores any set of partition keys of a date x symbol asset in
one write (several dates AND several roots), and it deletes the rows of those partitions that the
new frame no longer has in the same statement, so re-running a partition never duplicates rows.
"""


import json

import dagster as dg
import polars as pl
from pydantic import PrivateAttr

from chimera_assets.features.columns import column_doc
from chimera_assets.lib.checks.audits import audit_for
from chimera_assets.lib.partitions import parse_partition_keys
from chimera_assets.schemas import TableSpec, table_for
from chimera_assets.settings import Settings, get_settings
from chimera_assets.warehouse import MergeResult, Slice, Warehouse, get_warehouse


def spec_for_asset_key(key: dg.AssetKey) -> TableSpec:
    """Asset key ``["features", "session_bars"]`` -> the table spec of ``features.session_bars``."""
    return table_for(".".join(key.path))


def _column_tags(doc: dict) -> dict[str, str]:
    """unit, family, code version and the lookahead/hindsight flags as column tags (strings only)."""
    tags = {k: str(doc[k]) for k in ("unit", "family", "code_version") if doc[k]}
    tags.update({flag: "true" for flag in ("lookahead", "hindsight") if doc[flag]})
    return tags


def column_schema(spec: TableSpec) -> dg.TableSchema:
    """``dagster/column_schema`` of ``spec``: type, nullability, description and tags (unit, family,
    code version, ``lookahead``/``hindsight``) per column, shown in the UI's column table."""
    docs = {c.name: column_doc(c, spec.name) for c in spec.columns}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(c.name, c.bigquery_type(), description=docs[c.name]["description"] or None,
                           constraints=dg.TableColumnConstraints(nullable=c.nullable), tags=_column_tags(docs[c.name]))
            for c in spec.columns
        ]
    )


def columns_text(spec: TableSpec, stored: dict[str, str] | None = None) -> str:
    """The column names and types as compact JSON text, recorded on every materialization.

    ``stored``: the table's types as the warehouse holds them (``Warehouse.stored_column_types``), so
    a column retyped by hand shows as a retyped column to the schema-change check; without it, the
    spec's. The full ``dagster/column_schema`` (a nested TableSchema) lives in the asset definition's
    metadata instead: serialising it on each of thousands of partition events cost ~0.55 ms per event,
    about a fifth of Dagster's bookkeeping per partition. The schema-change check reads this text.
    """
    types = {c.name: c.type for c in column_schema(spec).columns}
    types.update({k: v for k, v in (stored or {}).items() if k in types})
    return json.dumps([[n, t] for n, t in types.items()], separators=(",", ":"))


def table_name(spec: TableSpec, wh: Warehouse) -> str:
    """The full name of the table where it lives: ``project.<prefix>dataset.table`` on BigQuery,
    ``duckdb:schema.table`` on DuckDB."""
    full = getattr(wh, "full_table_name", None)
    return full(spec) if full is not None else f"{wh.kind}:{spec.fqn}"


def written_metadata(spec: TableSpec, wh: Warehouse) -> dict:
    """Metadata every write of ``spec`` records (cheap to serialise per partition). The column types are
    read back from the stored table: a type changed by hand is reported by ``column_schema_change``."""
    return {
        "dagster/table_name": dg.MetadataValue.text(table_name(spec, wh)),
        "chimera/columns": dg.MetadataValue.text(columns_text(spec, wh.stored_column_types(spec))),
    }


def row_count_metadata(rows_written: int, partitions: int | None) -> dict:
    """Row counts of one write. Dagster copies a range run's metadata onto every partition's event,
    so ``dagster/partition_row_count`` is set only when the write covered a single partition; a range
    records its total as ``rows_written_in_run`` with the partition count instead."""
    if partitions is None:
        return {"dagster/row_count": dg.MetadataValue.int(rows_written)}
    out = {"rows_written_in_run": dg.MetadataValue.int(rows_written), "partitions_written": dg.MetadataValue.int(partitions)}
    if partitions == 1:
        out["dagster/partition_row_count"] = dg.MetadataValue.int(rows_written)
    return out


def with_table_metadata(assets: list) -> list:
    """Attach ``dagster/column_schema`` to the definition of every asset stored as a table."""

    def attach(asset_spec: dg.AssetSpec) -> dg.AssetSpec:
        try:
            spec = spec_for_asset_key(asset_spec.key)
        except KeyError:
            return asset_spec
        return asset_spec.merge_attributes(metadata={"dagster/column_schema": column_schema(spec)})

    return list(dg.map_asset_specs(attach, assets))


def slice_for_context(context: dg.InputContext | dg.OutputContext, spec: TableSpec) -> Slice:
    if not context.has_asset_partitions or spec.date_column is None:
        return Slice.whole_table()
    return Slice.from_keys(parse_partition_keys(context.asset_partition_keys))


class WarehouseResource(dg.ConfigurableResource):
    """The configured warehouse: DuckDB by default (settings from the environment unless overridden).

    On BigQuery, ``definitions`` uses the subclass ``BigQueryWarehouseResource`` (built on dagster-gcp's
    ``BigQueryResource``), whose fields - project, location, dataset prefix, byte cap, job timeout,
    credentials as ``EnvVar`` - the Dagster UI shows. A plain ``WarehouseResource`` with
    ``CHIMERA_WAREHOUSE=bigquery`` builds the same warehouse from the environment.
    """

    duckdb_path: str | None = None
    _warehouses: dict = PrivateAttr(default_factory=dict)
    _run_id: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # The run id labels every BigQuery job of the run (sensors have no run: no label).
        run = getattr(context, "run", None)
        self._run_id = run.run_id if run is not None else None

    def get(self) -> Warehouse:
        """One warehouse object per resource instance and configuration (a BigQuery warehouse keeps no
        client between operations; DuckDB opens one connection per operation)."""
        settings = get_settings()
        key = (settings, self.duckdb_path)
        if key not in self._warehouses:
            self._warehouses[key] = self._build(settings)
        return self._warehouses[key]

    def _build(self, settings: Settings) -> Warehouse:
        if self.duckdb_path and settings.warehouse == "duckdb":
            from chimera_assets.warehouse.duckdb_backend import DuckDBWarehouse

            return DuckDBWarehouse(self.duckdb_path)
        wh = get_warehouse(settings)
        if self._run_id and hasattr(wh, "labels"):
            wh.labels = {**wh.labels, "dagster_run": self._run_id}
        return wh


def job_metadata(result: MergeResult) -> dict:
    """Materialization metadata of the jobs behind a write (BigQuery: job ids, bytes billed, slot ms);
    empty for backends that run no jobs."""
    stats = getattr(result, "job_metadata", None)
    if stats is None:
        return {}
    out = {}
    for name, value in stats().items():
        if isinstance(value, list):
            out[name] = dg.MetadataValue.json(value)
        else:
            out[name] = dg.MetadataValue.int(int(value))
    return out


class WarehouseIOManager(dg.ConfigurableIOManager):
    warehouse: WarehouseResource

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | None) -> None:
        if obj is None:
            return
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()}: expected a polars DataFrame, got {type(obj)}")
        spec = spec_for_asset_key(context.asset_key)
        slice_ = slice_for_context(context, spec)
        wh = self.warehouse.get()
        # The table's write audit (None for tables without one): the rows are published only if it passes.
        result = wh.merge(spec, obj, slice_, audit=audit_for(spec))
        n_parts = len(context.asset_partition_keys) if context.has_asset_partitions else None
        context.add_output_metadata({
            **written_metadata(spec, wh), **row_count_metadata(result.rows_written, n_parts), **job_metadata(result),
        })

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        assert context.asset_key is not None
        spec = spec_for_asset_key(context.asset_key)
        if context.has_asset_partitions and not context.asset_partition_keys:
            return spec.empty_frame()
        return self.warehouse.get().read(spec, slice_for_context(context, spec))
