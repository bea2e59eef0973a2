"""``market_data.*``: raw Databento OHLCV, statistics and definitions, partitioned by date x root.

Each asset reads the DBN files (landing directory or API chunks) that cover the requested
partitions and MERGEs their rows into its table, for exactly the partitions the files cover
completely. Every file used leaves a ledger row in ``ops.databento_load_state``; a file that fails
to decode leaves a ``failed`` row, raises one error naming it, and writes nothing.
"""


from pathlib import Path

import dagster as dg
import polars as pl

from chimera_assets.checks import audit_for
from chimera_assets.ingest import ledger
from chimera_assets.ingest.landing import (
    SCHEMA_TABLES,
    FileLoad,
    LandingFileError,
    build_raw_frame,
    covered_keys,
    list_dbn_files,
    select_files,
)
from chimera_assets.io_manager import WarehouseResource, row_count_metadata, written_metadata
from chimera_assets.partitions import date_symbol_partitions, parse_partition_keys
from chimera_assets.resources import DatabentoSource
from chimera_assets.schemas import DEFINITIONS, LOAD_STATE, OHLCV_1D, STATISTICS, TableSpec
from chimera_assets.universe import get_universe
from chimera_assets.warehouse.base import AuditFailed, Slice, Warehouse

RAW_GROUP = "market_data"


class IngestError(RuntimeError):
    """Raw ingestion failed; the message names the input (file or API request)."""


def _source_files(context: dg.AssetExecutionContext, source: DatabentoSource, schema: str, keys, wh) -> list[Path]:
    if source.mode == "api":
        from chimera_assets.ingest.api_chunks import fetch_chunks_for

        return fetch_chunks_for(context, source, schema, keys, wh)
    landing = source.landing_path()
    if not landing.exists():
        context.log.warning(f"landing directory {landing} does not exist; nothing to ingest")
    return list_dbn_files(landing)


def _latest_definitions(wh: Warehouse) -> pl.DataFrame:
    """The latest known definition per instrument_id (raw_symbol, instrument class); may be empty."""
    defs = wh.read(DEFINITIONS, columns=["instrument_id", "valid_date", "raw_symbol", "instrument_class"])
    return defs.sort("valid_date").group_by("instrument_id").last().select(
        "instrument_id", pl.col("raw_symbol").alias("_def_raw"), pl.col("instrument_class").alias("_cls")
    )


def _attach_definitions(frame: pl.DataFrame, latest: pl.DataFrame) -> pl.DataFrame:
    """raw_symbol (and is_spread from the instrument class) from known definitions, else as decoded."""
    if frame.is_empty() or "raw_symbol" not in frame.columns or latest.is_empty():
        return frame
    return (
        frame.join(latest, on="instrument_id", how="left")
        .with_columns(
            pl.coalesce("_def_raw", "raw_symbol").alias("raw_symbol"),
            pl.when(pl.col("_cls").is_not_null())
            .then(pl.col("_cls").is_in(["S", "T", "M"]))
            .otherwise(pl.col("is_spread"))
            .alias("is_spread"),
        )
        .drop("_def_raw", "_cls")
    )


def _attach_settlements(frame: pl.DataFrame, stats: pl.DataFrame) -> pl.DataFrame:
    """settle (stat_type 3 price) and open_interest (stat_type 9 quantity) for the 1d table, from the
    statistics rows of the partitions being written."""
    if stats.is_empty() or frame.is_empty():
        return frame
    key = ["trade_date", "symbol", "instrument_id"]
    settle = stats.filter(pl.col("stat_type") == 3).select(*key, pl.col("price").alias("_settle"))
    oi = stats.filter(pl.col("stat_type") == 9).select(*key, pl.col("quantity").alias("_oi"))
    return (
        frame.join(settle.rename({"trade_date": "date"}), on=["date", "symbol", "instrument_id"], how="left")
        .join(oi.rename({"trade_date": "date"}), on=["date", "symbol", "instrument_id"], how="left")
        .with_columns(
            pl.coalesce("_settle", "settle").alias("settle"), pl.coalesce("_oi", "open_interest").alias("open_interest")
        )
        .drop("_settle", "_oi")
    )


def _series_for(keys, universe, schema: str) -> set[str]:
    """The series a load of ``keys`` writes (statistics/definitions come by parent symbol)."""
    roots = {r for _, r in keys if r}
    out: set[str] = set()
    for r in roots:
        cfg = universe.roots[r]
        out.update(cfg.statistics_series if schema in ("statistics", "definition") else cfg.series)
    return out


def _quarantine_unreadable(context, unreadable, failed, wh, dataset, schema, run_id, started) -> None:
    """A file that cannot be read fails the run once, loudly, with a ``failed`` ledger row; afterwards
    it is skipped with a warning (its sha256 is known as failed) so one bad download cannot block
    every later run. Replacing the file (new content) makes it eligible again."""
    new_bad = []
    for path, reason in unreadable:
        sha = ledger.file_sha256(path)
        if sha in failed:
            context.log.warning(f"skipping {path}: it failed before ({reason})")
        else:
            new_bad.append((path, sha, reason))
    if not new_bad:
        return
    ledger.record(wh, [
        dict(source_kind="file", dataset=dataset, schema=schema, status="failed", error=reason[:2000],
             file_path=str(path), content_sha256=sha, run_id=run_id, started_at=started,
             finished_at=ledger.now_utc())
        for path, sha, reason in new_bad
    ])
    names = "; ".join(reason for _, _, reason in new_bad)
    raise IngestError(f"cannot ingest: {names}")


# Trade dates per write of a long backfill (about a quarter): bounds the rows held in memory at once.
BLOCK_TRADE_DATES = 65


def _date_blocks(keys: list, n: int | None = None) -> list[list]:
    """``keys`` split into blocks of at most ``n`` (default ``BLOCK_TRADE_DATES``) consecutive trade dates,
    every root of a date in the same block."""
    n = n or BLOCK_TRADE_DATES
    dates = sorted({d for d, _ in keys})
    blocks = []
    for i in range(0, len(dates), n):
        chunk = set(dates[i : i + n])
        blocks.append([k for k in keys if k[0] in chunk])
    return blocks


def _merge_loads(a: FileLoad | None, b: FileLoad) -> FileLoad:
    """One ledger row per file: a file read for two blocks adds the rows it gave each block."""
    if a is None:
        return b
    firsts = [t for t in (a.first_ts, b.first_ts) if t is not None]
    lasts = [t for t in (a.last_ts, b.last_ts) if t is not None]
    return FileLoad(a.path, a.info, max(a.records, b.records), a.rows_for_keys + b.rows_for_keys,
                    min(firsts) if firsts else None, max(lasts) if lasts else None,
                    max(a.unmapped_dropped, b.unmapped_dropped))


def ingest_partitions(
    context: dg.AssetExecutionContext, spec: TableSpec, schema: str, source: DatabentoSource, wh: Warehouse
) -> dg.MaterializeResult:
    """Load the DBN rows of ``schema`` for the run's partition keys into ``spec``'s table."""
    keys = parse_partition_keys(context.partition_keys)
    universe = get_universe()
    dates = sorted({d for d, _ in keys})
    roots = sorted({r for _, r in keys if r})
    paths = _source_files(context, source, schema, keys, wh)
    failed = ledger.failed_sha256s(wh) if paths else set()
    selection = select_files(paths, schema, dates, roots, universe)
    load_id = ledger.new_load_id()
    started = ledger.now_utc()
    run_id = context.run.run_id
    for path, symbols in selection.foreign:
        context.log.warning(
            f"skipping {path}: its series {symbols} belong to no root of the universe {universe.path} "
            f"(roots {universe.root_names}); add the root there to load it"
        )
    _quarantine_unreadable(context, selection.unreadable, failed, wh, universe.dataset, schema, run_id, started)
    # Each selected file is hashed once per run (the quarantine test, the skip test and the ledger).
    shas = {p: ledger.file_sha256(p) for p, _ in selection.files}
    files = []
    for p, i in selection.files:
        if shas[p] in failed:
            context.log.warning(f"skipping {p}: its last load failed (see ops.databento_load_state); "
                                "replace or remove the file")
        else:
            files.append((p, i))
    complete, partial, uncovered = covered_keys(schema, files, keys, universe)
    writable = complete + partial
    context.log.info(
        f"{spec.fqn}: {len(files)} {schema} file(s) for {len(dates)} date(s) x {len(roots)} root(s); "
        f"{len(complete)} partition(s) fully covered, {len(partial)} partly (files end inside them), "
        f"{len(uncovered)} not covered (left unchanged)"
    )
    if writable and ledger.already_loaded(wh, schema, [shas[p] for p, _ in files], _series_for(writable, universe, schema),
                                          min(d for d, _ in writable), max(d for d, _ in writable)):
        ledger.record(wh, [
            dict(source_kind="file", dataset=info.dataset, schema=schema, file_path=str(p), content_sha256=shas[p],
                 dbn_version=info.dbn_version, status="skipped_unchanged", run_id=run_id, started_at=started,
                 finished_at=ledger.now_utc())
            for p, info in files
        ])
        context.log.info(f"{spec.fqn}: every file was already loaded for these partitions; table unchanged")
        return dg.MaterializeResult(
            metadata={"rows_written": 0, "files": len(files), "files_skipped_unchanged": len(files),
                      "note": "all source files already loaded for these partitions (sha256 match)"}
        )
    if not writable:
        return dg.MaterializeResult(
            metadata={"rows_written": 0, "files": 0, "partitions_not_covered": len(uncovered),
                      "note": "no source file covers these partitions; table unchanged"}
        )
    # A long backfill is built in blocks of trade dates, so Python holds one block's rows at a time
    # (the next one is decoded while the current one is written); the warehouse publishes the blocks
    # as one change, so a bad file found in a late block still leaves the table as it was.
    defs = _latest_definitions(wh) if spec is not DEFINITIONS and spec is not STATISTICS else None
    stats = wh.read(STATISTICS, Slice.from_keys(writable)) if spec is OHLCV_1D else None
    per_root: dict[str, int] = {}
    loads_by_path: dict[Path, FileLoad] = {}
    block_loads_of: dict[Slice, list[FileLoad]] = {}  # to name a failing block's files

    def blocks():
        for block in _date_blocks(writable):
            bdates = sorted({d for d, _ in block})
            in_block = {p for p, _ in select_files([p for p, _ in files], schema, bdates, roots, universe).files}
            frame, block_loads = build_raw_frame(spec, [f for f in files if f[0] in in_block], block, universe,
                                                 load_id)
            if stats is not None:
                frame = _attach_settlements(frame, stats)
            if defs is not None:
                frame = _attach_definitions(frame, defs)
            for sym, n in frame.group_by(spec.symbol_column).len().rows():
                per_root[sym] = per_root.get(sym, 0) + n
            for fl in block_loads:
                loads_by_path[fl.path] = _merge_loads(loads_by_path.get(fl.path), fl)
            block_slice = Slice.from_keys(block)
            block_loads_of[block_slice] = block_loads
            yield frame, block_slice

    try:
        result = wh.merge_blocks(spec, blocks(), Slice.from_keys(writable), audit=audit_for(spec))
    except LandingFileError as exc:
        ledger.record(wh, [dict(
            source_kind="file", dataset=universe.dataset, schema=schema, status="failed", error=str(exc)[:2000],
            file_path=str(exc.path), content_sha256=shas[exc.path], run_id=run_id,
            started_at=started, finished_at=ledger.now_utc(),
        )])
        raise IngestError(f"cannot ingest {spec.fqn}: {exc}") from exc
    except AuditFailed as exc:
        # Hard data-quality rules rejected the staged rows: nothing was published; say which files.
        ledger.record(wh, [
            # No sha256 on these rows: the audit judged the load, not a file, so nothing is quarantined;
            # the run fails loudly again until the bad rows are corrected.
            dict(source_kind="api" if source.mode == "api" else "file", dataset=fl.info.dataset, schema=schema,
                 file_path=str(fl.path), dbn_version=fl.info.dbn_version, record_count=fl.records,
                 status="failed", error=f"audit failed: {exc}"[:2000], run_id=run_id, started_at=started,
                 finished_at=ledger.now_utc())
            for fl in block_loads_of.get(exc.slice) or list(loads_by_path.values())
        ])
        raise
    rows_written = result.rows_written
    loads = list(loads_by_path.values())
    finished = ledger.now_utc()
    written_series = sorted(_series_for(writable, universe, schema))
    span = ledger.partition_span(min(d for d, _ in writable), max(d for d, _ in writable))
    ledger.record(wh, [
        dict(
            load_id=load_id if i == 0 else None, source_kind="api" if source.mode == "api" else "file",
            dataset=fl.info.dataset, schema=schema, series=",".join(written_series),
            stype_in=fl.info.stype_in, period_start=span[0], period_end=span[1], file_path=str(fl.path),
            content_sha256=shas[fl.path], dbn_version=fl.info.dbn_version,
            record_count=fl.records, rows_written=fl.rows_for_keys, first_ts_event=fl.first_ts,
            last_ts_event=fl.last_ts, status="loaded", run_id=run_id, started_at=started, finished_at=finished,
        )
        for i, fl in enumerate(loads)
    ])
    return dg.MaterializeResult(
        metadata={
            **written_metadata(spec, wh),
            **row_count_metadata(rows_written, len(keys)),
            "partitions_written": len(writable),
            "files": len(loads),
            "partitions_not_covered": len(uncovered),
            "partitions_partly_covered": dg.MetadataValue.json([f"{d}|{r}" for d, r in partial[:20]]),
            "rows_per_root": dg.MetadataValue.json({str(k): int(v) for k, v in sorted(per_root.items())}),
            "unmapped_records_dropped": sum(fl.unmapped_dropped for fl in loads),
        }
    )


def _raw_asset(spec: TableSpec, schema: str, deps: list[dg.AssetKey] | None = None) -> dg.AssetsDefinition:
    @dg.asset(
        key=dg.AssetKey([spec.schema, spec.name]),
        partitions_def=date_symbol_partitions(),
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key="warehouse_io",
        group_name=RAW_GROUP,
        deps=deps or [],
        pool="warehouse_writer",
        kinds={"databento", "polars"},
        description=f"Databento {schema} rows ({spec.fqn}); key {list(spec.key)}.",
    )
    def _asset(
        context: dg.AssetExecutionContext, databento: DatabentoSource, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        return ingest_partitions(context, spec, schema, databento, warehouse.get())

    return _asset


def _key(spec: TableSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.schema, spec.name])


definitions_asset = _raw_asset(DEFINITIONS, "definition")
statistics_asset = _raw_asset(STATISTICS, "statistics")
ohlcv_1m_asset = _raw_asset(SCHEMA_TABLES["ohlcv-1m"], "ohlcv-1m", [_key(DEFINITIONS)])
ohlcv_1h_asset = _raw_asset(SCHEMA_TABLES["ohlcv-1h"], "ohlcv-1h", [_key(DEFINITIONS)])
ohlcv_1d_asset = _raw_asset(OHLCV_1D, "ohlcv-1d", [_key(DEFINITIONS), _key(STATISTICS)])



@dg.asset(
    key=dg.AssetKey(["ops", "databento_load_state"]),
    deps=[_key(DEFINITIONS), _key(STATISTICS), _key(SCHEMA_TABLES["ohlcv-1m"]), _key(SCHEMA_TABLES["ohlcv-1h"]),
          _key(OHLCV_1D)],
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
        led.filter(pl.col("status") == "failed").sort("finished_at", descending=True).head(20)
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


def raw_assets_with_nothing_to_load(source: DatabentoSource, dates: list, roots: list[str]) -> dict[dg.AssetKey, str]:
    """Raw assets the landing directory holds no file for in ``dates`` x ``roots``, with the reason.

    A run that includes such an asset would record an empty materialization for each of its
    partitions (Dagster bookkeeping of ~2-6 ms each, for nothing) and show them as materialized.
    Landing mode only (the API mode fetches what it is asked). An asset is kept whenever a file of
    its schema exists for these dates, and every asset is kept while any landing file is unreadable,
    so a bad file always fails its run loudly.
    """
    if source.mode != "landing" or not dates or not roots:
        return {}
    universe = get_universe()
    paths = list_dbn_files(source.landing_path())
    out: dict[dg.AssetKey, str] = {}
    for schema, spec in SCHEMA_TABLES.items():
        sel = select_files(paths, schema, dates, roots, universe)
        if sel.unreadable:
            return {}
        if not (sel.files or sel.foreign):
            out[_key(spec)] = f"no {schema} file in {source.landing_path()} for these dates and roots"
    return out


RAW_ASSETS = [
    definitions_asset, statistics_asset, ohlcv_1m_asset, ohlcv_1h_asset, ohlcv_1d_asset, databento_load_state,
]
