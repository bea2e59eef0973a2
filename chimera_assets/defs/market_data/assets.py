"""``market_data.*``: raw Databento OHLCV, statistics and definitions, partitioned by date x root.

Each asset plans its load (:mod:`chimera_assets.ingest.plan`: which requested partitions to load from
which files, which to skip and why) and executes it (:mod:`chimera_assets.ingest.execute`): an upsert
of the planned partitions' rows from every file covering them, then one ledger write. A file that
fails to decode (or is refused: other dataset, UNDEF prices, a record count beyond its header's
bound) leaves a ``failed`` row, raises one error naming it, and writes nothing.
"""

from pathlib import Path

import dagster as dg
import polars as pl

from chimera_assets.defs.market_data.file_problems import file_problem_lines, reports_headerless
from chimera_assets.defs.market_data.inline_checks import raw_check_evaluations
from chimera_assets.ingest import ledger
from chimera_assets.ingest.enrich import enrich_hook
from chimera_assets.ingest.execute import IngestError, date_blocks, execute, prepare, unchanged_rows
from chimera_assets.ingest.landing import SCHEMA_TABLES, list_dbn_files
from chimera_assets.ingest.plan import ALREADY_LOADED, NO_SESSION
from chimera_assets.lib.asset_keys import asset_key
from chimera_assets.lib.checks.audits import audit_for
from chimera_assets.lib.io_manager import (
    WarehouseResource,
    job_metadata,
    row_count_metadata,
    written_metadata,
)
from chimera_assets.lib.partitions import DATE_DIM, SYMBOL_DIM, date_symbol_partitions, parse_partition_keys
from chimera_assets.lib.resources import DatabentoSource
from chimera_assets.schemas import DEFINITIONS, LOAD_STATE, OHLCV_1D, STATISTICS, TableSpec
from chimera_assets.universe import get_universe
from chimera_assets.warehouse.base import Warehouse

RAW_GROUP = "market_data"
#: Run tag: record one materialization for the whole range even when some partitions have no source
#: (fast: one event instead of one per partition, and the check steps run as steps).
RECORD_RANGE_TAG = "chimera/raw_record_range"


def _source_files(context: dg.AssetExecutionContext, source: DatabentoSource, schema: str, keys, wh) -> list[Path]:
    if source.mode == "api":
        from chimera_assets.ingest.api_chunks import fetch_chunks_for

        return fetch_chunks_for(context, source, schema, keys, wh)
    landing = source.landing_path()
    if not landing.exists():
        context.log.warning(f"landing directory {landing} does not exist; nothing to ingest")
    return list_dbn_files(landing)


# Trade dates per write of a long backfill (about a quarter): bounds the rows held in memory at once.
BLOCK_TRADE_DATES = 65


def _date_blocks(keys: list, n: int | None = None) -> list[list]:
    """``keys`` in blocks of at most ``n`` (default ``BLOCK_TRADE_DATES``) consecutive trade dates."""
    return date_blocks(keys, n or BLOCK_TRADE_DATES)


def ingest_partitions(
    context: dg.AssetExecutionContext, spec: TableSpec, schema: str, source: DatabentoSource, wh: Warehouse
):
    """Load the DBN rows of ``schema`` for the run's partition keys into ``spec``'s table: plan, then
    execute (:mod:`chimera_assets.ingest.execute`), then one ledger write for the whole load.

    Yields one ``MaterializeResult`` when every requested partition has a source; otherwise, in a run
    of raw assets (the UI's market_data group, the sensors' raw job), an ``AssetMaterialization`` per
    partition that holds the source's data and nothing for partitions no file covers: they are never
    shown as materialized. A run that also carries other assets needs the Output (Dagster skips every
    step, asset or check, whose upstream yields none), so there the whole range is recorded, with the
    partitions without source named in the metadata.
    """
    keys = parse_partition_keys(context.partition_keys)
    universe = get_universe()
    run_id = context.run.run_id
    source_kind = "api" if source.mode == "api" else "file"
    paths = _source_files(context, source, schema, keys, wh)
    prep = prepare(wh, spec, schema, keys, paths, universe, run_id)
    for path, symbols in prep.foreign:
        context.log.warning(
            f"skipping {path}: its series {symbols} belong to no root of the universe {universe.path} "
            f"(roots {universe.root_names}); add the root there to load it"
        )
    if prep.failed_rows:
        ledger.record(wh, prep.failed_rows)  # before the load: a failed file never blocks the others
    for line in file_problem_lines(prep, spec, reports_headerless(context)):
        context.log.warning(line)
    plan = prep.plan
    context.log.info(f"{spec.fqn}: {len(plan.files)} {schema} file(s) to read; {plan.summary()}")
    rows = unchanged_rows(prep, schema, source_kind, run_id)
    done = None
    if plan.load:
        done = execute(
            wh,
            spec,
            schema,
            prep,
            universe,
            source_kind=source_kind,
            run_id=run_id,
            audit=audit_for(spec),
            frame_hook=enrich_hook(spec, wh, plan.load),
            block_dates=BLOCK_TRADE_DATES,
        )
        rows += done.ledger_rows
    ledger.record(wh, rows)  # one ledger write per load (a lost write is repaired by the next plan)
    if prep.blocking:
        # The other files' partitions are loaded; the run asked for the dates this file claims.
        raise IngestError(f"cannot ingest {spec.fqn}: {'; '.join(prep.blocking)}")
    metadata = {
        **row_count_metadata(done.rows_written if done else 0, len(plan.load) or None),
        "partitions_loaded": len(plan.load),
        "partitions_already_loaded": sum(1 for w in plan.skipped.values() if w == ALREADY_LOADED),
        "partitions_without_source": len(plan.without_source),
        "files": len(plan.files),
        "files_skipped_unchanged": len(plan.unchanged),
        "files_failed": len(prep.failed_rows),
        "files_failed_before": len(prep.quarantined),
        "plan": dg.MetadataValue.text(plan.summary()[:2000]),
    }
    if done is not None and done.merge_result is not None:
        metadata.update(job_metadata(done.merge_result))  # BigQuery: job ids, bytes billed, slot ms
    if done is not None:
        metadata["rows_per_root"] = dg.MetadataValue.json({k: int(v) for k, v in sorted(done.per_root.items())})
    missing = plan.without_source
    if missing:
        metadata["partitions_without_source_examples"] = dg.MetadataValue.json(
            [f"{d.isoformat()}|{r}" for d, r in missing[:20]]
        )
    # RECORD_RANGE_TAG: a caller (e.g. lib/runner.py's raw stage) may ask for the fast path, one
    # materialization for the range with the partitions without source named in the metadata.
    if not missing or _downstream_in_run(context) or context.run.tags.get(RECORD_RANGE_TAG) == "1":
        if missing:
            context.log.warning(
                f"{spec.fqn}: {len(missing)} requested partition(s) have no source file (e.g. "
                f"{', '.join(f'{d}|{r}' for d, r in missing[:5])}); left as they are. This run carries assets "
                "besides the raw ones, so Dagster records one materialization for the whole range and they show "
                "as materialized (metadata partitions_without_source says which); materialize the raw assets in "
                "a run of their own to record only the partitions that have a source"
            )
        yield dg.MaterializeResult(metadata={**written_metadata(spec, wh), **metadata})
        return
    context.log.warning(
        f"{spec.fqn}: {len(missing)} requested partition(s) have no source file (e.g. "
        f"{', '.join(f'{d}|{r}' for d, r in missing[:5])}); they are left as they are and not recorded as "
        "materialized"
    )
    for d, r in plan.with_data:
        # The dimension tags Dagster puts on a range run's own per-partition events (the UI filters on them).
        tags = {f"dagster/partition/{DATE_DIM}": d.isoformat(), f"dagster/partition/{SYMBOL_DIM}": r}
        yield dg.AssetMaterialization(
            asset_key=context.asset_key,
            partition=dg.MultiPartitionKey({DATE_DIM: d.isoformat(), SYMBOL_DIM: r}),
            metadata=metadata if plan.skipped.get((d, r)) != NO_SESSION else {**metadata, "note": NO_SESSION},
            tags=tags,
        )
    # No Output on this path: Dagster skips the check steps, so the checks are evaluated here.
    yield from raw_check_evaluations(context, spec, schema, wh, source, keys)


def _downstream_in_run(context: dg.AssetExecutionContext) -> bool:
    """Whether the run carries assets other than the raw ones (the CLI's stages, "materialize all").
    Dagster skips every step (asset or check) depending on an asset that yields no Output, so such a
    run needs this asset's (whole-range) Output; a run of raw assets only does not."""
    layer = context.job_def.asset_layer
    selected = set(context.run.asset_selection or ()) or set(layer.executable_asset_keys)
    return any(k.path[0] != RAW_GROUP for k in selected)


def _raw_asset(spec: TableSpec, schema: str, deps: list[dg.AssetKey] | None = None) -> dg.AssetsDefinition:
    @dg.asset(
        key=asset_key(spec),
        partitions_def=date_symbol_partitions(),
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key="warehouse_io",
        group_name=RAW_GROUP,
        deps=deps or [],
        pool="warehouse_writer",
        output_required=False,
        kinds={"databento", "polars"},
        description=f"Databento {schema} rows ({spec.fqn}); key {list(spec.key)}.",
    )
    def _asset(context: dg.AssetExecutionContext, databento: DatabentoSource, warehouse: WarehouseResource):
        yield from ingest_partitions(context, spec, schema, databento, warehouse.get())

    return _asset


definitions_asset = _raw_asset(DEFINITIONS, "definition")
statistics_asset = _raw_asset(STATISTICS, "statistics")
# No deps between the raw assets: a raw asset with no source for a run records no materialization
# (no Output), and Dagster skips every step depending on it in the same run, so a missing definitions
# file would stop the bars from loading. Definitions and settlements already in the warehouse are
# attached at load time (a run that loads them together may attach them on the next load only).
ohlcv_1m_asset = _raw_asset(SCHEMA_TABLES["ohlcv-1m"], "ohlcv-1m")
ohlcv_1h_asset = _raw_asset(SCHEMA_TABLES["ohlcv-1h"], "ohlcv-1h")
ohlcv_1d_asset = _raw_asset(OHLCV_1D, "ohlcv-1d")


@dg.asset(
    key=asset_key(LOAD_STATE),
    deps=[
        asset_key(DEFINITIONS),
        asset_key(STATISTICS),
        asset_key(SCHEMA_TABLES["ohlcv-1m"]),
        asset_key(SCHEMA_TABLES["ohlcv-1h"]),
        asset_key(OHLCV_1D),
    ],
    group_name="ops",
    kinds={"polars"},
    description="The load ledger: one row per file/API-chunk load attempt. The raw assets append to it; "
    "materializing this asset publishes its status counts and recent failures.",
)
def databento_load_state(warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    wh.ensure_table(LOAD_STATE)
    led = ledger.read_ledger(wh)
    counts = {s: int(n) for s, n in led.group_by("status").len().rows()} if led.height else {}
    failures = (
        led.filter(pl.col("status") == "failed")
        .sort("finished_at", descending=True)
        .head(20)
        .select("finished_at", "file_path", "schema", "error")
    )
    md = "| finished_at | file | schema | error |\n|---|---|---|---|\n" + "".join(
        f"| {r[0]} | {r[1]} | {r[2]} | {(r[3] or '')[:200]} |\n" for r in failures.rows()
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": led.height,
            **written_metadata(LOAD_STATE, wh),
            "status_counts": dg.MetadataValue.json(counts),
            "recent_failures": dg.MetadataValue.md(md if failures.height else "none"),
        }
    )


RAW_ASSETS = [
    definitions_asset,
    statistics_asset,
    ohlcv_1m_asset,
    ohlcv_1h_asset,
    ohlcv_1d_asset,
    databento_load_state,
]
