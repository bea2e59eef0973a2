"""Plan, then execute, one raw load (no Dagster): the body of the raw assets.

:func:`prepare` selects the landing (or API cache) files of a schema for the requested partitions,
decodes their record coverage and reads the load state (ledger rows, the table's load_ids), then
calls the pure planner. :func:`execute` writes the planned partitions and returns the ledger rows
that describe the load; the caller records them in one ledger write.

Writes are upserts on the table key with no slice delete: a load never removes a row, so a source
that is shorter than an earlier copy (a download in progress) or gone never shrinks a partition.
Rows whose source files are gone are removed only by ``chimera prune``
(:mod:`chimera_assets.ingest.prune`). If the ledger write after a successful MERGE is lost, the
table's rows carry a load_id the ledger does not know, and the next plan reloads those partitions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from chimera_assets.dbn.diagnostics import DbnDecodeError
from chimera_assets.ingest import ledger
from chimera_assets.ingest.coverage import FileCoverage, PartitionKey, file_coverage
from chimera_assets.ingest.landing import (
    FileLoad,
    LandingFileError,
    _partition_date,
    build_raw_frame,
    select_files,
)
from chimera_assets.ingest.plan import (
    Plan,
    known_load_ids,
    loaded_rects,
    plan_loads,
    rectangles,
    table_load_ids,
)
from chimera_assets.schemas import TableSpec
from chimera_assets.universe import Universe
from chimera_assets.warehouse.base import Audit, AuditFailed, MergeResult, Slice, Warehouse

# Trade dates per write of a long backfill (about a quarter): bounds the rows held in memory at once.
BLOCK_TRADE_DATES = 65


class IngestError(RuntimeError):
    """Raw ingestion failed; the message names the input (file or API request)."""


@dataclass
class Prepared:
    """Everything a load needs, gathered before anything is written."""

    keys: list[PartitionKey]
    plan: Plan
    foreign: list[tuple[Path, list[str]]] = field(default_factory=list)
    quarantined: list[tuple[Path, str]] = field(default_factory=list)  # failed before: skipped, said
    failed_rows: list[dict] = field(default_factory=list)  # new failures to record (then raise)
    errors: list[str] = field(default_factory=list)


def root_of_series(universe: Universe):
    def f(series: str) -> str | None:
        return universe.root_of_series(series)

    return f


def table_state(wh: Warehouse, spec: TableSpec, keys: list[PartitionKey]) -> pl.DataFrame:
    """(d, r, load_id) of the table's rows in ``keys``' partitions (distinct triples)."""
    if not keys:
        return pl.DataFrame(schema={"d": pl.Date, "r": pl.Utf8, "load_id": pl.Utf8})
    cols = [spec.date_column, spec.symbol_column, "load_id"]
    rows = wh.read(spec, Slice.from_keys(keys), columns=cols)
    return rows.select(
        _partition_date(spec).alias("d"), pl.col(spec.symbol_column).alias("r"),
        pl.col("load_id").fill_null("<no load_id>"),
    ).unique()


def prepare(
    wh: Warehouse, spec: TableSpec, schema: str, keys: list[PartitionKey], paths: list[Path], universe: Universe,
    run_id: str | None,
) -> Prepared:
    """Select, decode coverage, read the state and plan. Files that cannot be read become ``failed``
    rows in ``failed_rows`` (and ``errors``) unless their sha256 already failed (then skipped)."""
    dates = sorted({d for d, _ in keys})
    roots = sorted({r for _, r in keys if r})
    prep = Prepared(keys=keys, plan=Plan(keys=sorted(keys)))
    if not paths:
        prep.plan = plan_loads(keys, [], {}, {}, set())
        return prep
    led = ledger.read_ledger(wh)
    failed = _failed_sha256s(led)
    selection = select_files(paths, schema, dates, roots, universe)
    prep.foreign = selection.foreign
    now = ledger.now_utc()
    bad: list[tuple[Path, str]] = list(selection.unreadable)
    covs: list[FileCoverage] = []
    for path, _info in selection.files:
        try:
            covs.append(file_coverage(path, universe))
        except DbnDecodeError as exc:
            bad.append((path, str(exc)))
    for path, reason in bad:
        sha = ledger.file_sha256(path)
        if sha in failed:
            prep.quarantined.append((path, reason))
            continue
        prep.errors.append(reason)
        prep.failed_rows.append(dict(
            source_kind="file", dataset=universe.dataset, schema=schema, status="failed", error=reason[:2000],
            file_path=str(path), content_sha256=sha, run_id=run_id, started_at=now, finished_at=now,
        ))
    usable = []
    for c in covs:
        if c.sha256 in failed:
            prep.quarantined.append((c.path, "its last load failed (see ops.databento_load_state); replace or "
                                             "remove the file"))
        else:
            usable.append(c)
    state = table_state(wh, spec, keys)
    prep.plan = plan_loads(keys, usable, loaded_rects(led, schema, root_of_series(universe)),
                           table_load_ids(state), known_load_ids(led))
    return prep


def _failed_sha256s(led: pl.DataFrame) -> set[str]:
    """Files whose last attempt failed (a later success clears them)."""
    led = led.filter(pl.col("content_sha256").is_not_null())
    if led.is_empty():
        return set()
    last = led.sort("finished_at", nulls_last=False).group_by("content_sha256").last()
    return set(last.filter(pl.col("status") == "failed")["content_sha256"].to_list())


def date_blocks(keys: list, n: int | None = None) -> list[list]:
    """``keys`` split into blocks of at most ``n`` (default ``BLOCK_TRADE_DATES``) consecutive trade dates,
    every root of a date in the same block."""
    n = n or BLOCK_TRADE_DATES
    dates = sorted({d for d, _ in keys})
    blocks = []
    for i in range(0, len(dates), n):
        chunk = set(dates[i: i + n])
        blocks.append([k for k in keys if k[0] in chunk])
    return blocks


def _merge_loads(a: FileLoad | None, b: FileLoad) -> FileLoad:
    """One ledger entry per file: a file read for two blocks adds the rows it gave each block."""
    if a is None:
        return b
    return FileLoad(a.path, a.info, max(a.records, b.records), a.rows_for_keys + b.rows_for_keys,
                    a.first_ts, a.last_ts, max(a.unmapped_dropped, b.unmapped_dropped))


@dataclass
class Executed:
    rows_written: int
    per_root: dict[str, int]
    ledger_rows: list[dict]
    load_id: str
    #: the warehouse's result of the write (BigQuery: its jobs' ids, bytes billed and slot ms)
    merge_result: MergeResult | None = None


def execute(
    wh: Warehouse, spec: TableSpec, schema: str, prep: Prepared, universe: Universe, *, source_kind: str,
    run_id: str | None, audit: Audit | None, frame_hook=None, block_dates: int | None = None,
) -> Executed:
    """Write ``prep.plan.load`` from ``prep.plan.files`` (upsert, in blocks of trade dates published as
    one change) and return the ledger rows of the load (not yet recorded). ``frame_hook(frame, block)``
    may enrich a block's frame (settlements, definitions).

    Raises IngestError naming the file (a ``failed`` ledger row is recorded first) when a file cannot
    be decoded or holds a bar with NULL/non-finite OHLC, and re-raises AuditFailed after recording
    ``failed`` rows for the files of the block the audit rejected. Nothing is published then.
    """
    plan = prep.plan
    load_id = ledger.new_load_id()
    started = ledger.now_utc()
    files = [(f.path, f.info) for f in plan.files]
    cov_by_path = {f.path: f for f in plan.files}
    per_root: dict[str, int] = {}
    loads_by_path: dict[Path, FileLoad] = {}
    blocks_files: list[tuple[set[date], list[FileLoad]]] = []
    roots = sorted({r for _, r in plan.load})

    def blocks():
        for block in date_blocks(plan.load, block_dates):
            bdates = sorted({d for d, _ in block})
            in_block = {p for p, _ in select_files([p for p, _ in files], schema, bdates, roots, universe).files}
            frame, block_loads = build_raw_frame(spec, [f for f in files if f[0] in in_block], block, universe,
                                                 load_id)
            if frame_hook is not None:
                frame = frame_hook(frame, block)
            for sym, n in frame.group_by(spec.symbol_column).len().rows():
                per_root[sym] = per_root.get(sym, 0) + n
            for fl in block_loads:
                loads_by_path[fl.path] = _merge_loads(loads_by_path.get(fl.path), fl)
            blocks_files.append((set(bdates), [fl for fl in block_loads if fl.rows_for_keys]))
            # Slice None: an upsert. A load never deletes (sources never delete by absence).
            yield frame, None

    def audited(frame: pl.DataFrame) -> None:
        if audit is None:
            return
        try:
            audit(frame)
        except AuditFailed as exc:
            pdates = set(frame.select(_partition_date(spec)).to_series().unique().to_list()) if frame.height else set()
            exc.files = next((fls for ds, fls in blocks_files if ds & pdates), None)  # type: ignore[attr-defined]
            raise

    try:
        result = wh.merge_blocks(spec, blocks(), None, audit=audited if audit is not None else None)
    except LandingFileError as exc:
        now = ledger.now_utc()
        ledger.record(wh, [dict(
            source_kind="file", dataset=universe.dataset, schema=schema, status="failed", error=str(exc)[:2000],
            file_path=str(exc.path), content_sha256=cov_by_path[exc.path].sha256 if exc.path in cov_by_path else None,
            run_id=run_id, started_at=started, finished_at=now,
        )])
        raise IngestError(f"cannot ingest {spec.fqn}: {exc}") from exc
    except AuditFailed as exc:
        # Hard data-quality rules rejected staged rows: nothing was published; name the block's files.
        # No sha256 on these rows: the audit judged the load, not a file, so nothing is quarantined.
        named = getattr(exc, "files", None) or list(loads_by_path.values())
        now = ledger.now_utc()
        ledger.record(wh, [
            dict(source_kind=source_kind, dataset=fl.info.dataset, schema=schema, file_path=str(fl.path),
                 dbn_version=fl.info.dbn_version, record_count=fl.records, status="failed",
                 error=f"audit failed: {exc}"[:2000], run_id=run_id, started_at=started, finished_at=now)
            for fl in named
        ])
        raise
    finished = ledger.now_utc()
    rows = []
    keys = prep.keys
    for f in plan.files:
        fl = loads_by_path.get(f.path)
        dmin = min(d for d, _ in f.partitions)
        dmax = max(d for d, _ in f.partitions)
        froots = {r for _, r in f.partitions}
        claim = [k for k in keys if k[1] in froots and dmin <= k[0] <= dmax]
        for j, (rroots, d0, d1) in enumerate(rectangles(claim)):
            span = ledger.partition_span(d0, d1)
            series = sorted({s for r in rroots for s in _series_of(universe, r, schema)})
            rows.append(dict(
                source_kind=source_kind, dataset=f.info.dataset, schema=schema, series=",".join(series),
                stype_in=f.info.stype_in, period_start=span[0], period_end=span[1], file_path=str(f.path),
                content_sha256=f.sha256, dbn_version=f.info.dbn_version, record_count=f.records,
                rows_written=(fl.rows_for_keys if fl else 0) if j == 0 else 0,
                first_ts_event=f.first_ts, last_ts_event=f.last_ts, status="loaded", run_id=run_id,
                started_at=started, finished_at=finished,
            ))
    for i, r in enumerate(rows):
        # The table rows carry ``load_id``; the first ledger row of the load has exactly it, the others
        # derive theirs from it (the ledger key is unique per row).
        r["load_id"] = load_id if i == 0 else f"{load_id}.{i}"
    return Executed(result.rows_written, per_root, rows, load_id, result)


def unchanged_rows(prep: Prepared, schema: str, source_kind: str, run_id: str | None) -> list[dict]:
    """``skipped_unchanged`` rows for the files of the request with nothing left to load."""
    now = ledger.now_utc()
    return [
        dict(source_kind=source_kind, dataset=f.info.dataset, schema=schema, file_path=str(f.path),
             content_sha256=f.sha256, dbn_version=f.info.dbn_version, status="skipped_unchanged",
             error=None, run_id=run_id, started_at=now, finished_at=now)
        for f in prep.plan.unchanged
    ]


def _series_of(universe: Universe, root: str, schema: str) -> tuple[str, ...]:
    cfg = universe.roots.get(root)
    if cfg is None:
        return ()
    return tuple(cfg.statistics_series if schema in ("statistics", "definition") else cfg.series)

