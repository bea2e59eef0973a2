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

import hashlib
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
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
    display_path,
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
    """Everything a load needs, gathered before anything is written.

    A file that cannot be loaded never stops the others: it gets a ``failed`` ledger row (``failed_rows``)
    and is skipped until its content changes. Its message goes to ``blocking`` when its header claims
    the requested dates (the run was asked for its data: the step fails after loading the other files),
    else to ``reported`` (a file of other dates, or one whose header is unreadable: a warning).
    ``quarantined``: files that failed before and are unchanged, as (path, reason, headerless)."""

    keys: list[PartitionKey]
    plan: Plan
    foreign: list[tuple[Path, list[str]]] = field(default_factory=list)
    quarantined: list[tuple[Path, str, bool]] = field(default_factory=list)
    failed_rows: list[dict] = field(default_factory=list)  # new failures to record
    blocking: list[str] = field(default_factory=list)
    reported: list[tuple[str, bool]] = field(default_factory=list)  # (message, headerless)
    disagreeing: list[tuple[Path, str, str]] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [*self.blocking, *(m for m, _ in self.reported)]


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
    prep.disagreeing = list(selection.disagreeing)
    now = ledger.now_utc()
    # (path, reason, headerless): headerless files (unreadable header, bad name, empty) claim no dates.
    # ``blocks``: the header claims the requested days (a failure there stops the run after the load).
    bad: list[tuple[Path, str, bool, bool]] = [(p, why, True, False) for p, why in selection.unreadable]
    covs: list[FileCoverage] = []
    for path, info in selection.files:
        try:
            cov = file_coverage(path, universe)
        except DbnDecodeError as exc:
            # A file of the neighbouring month is selected for its evening-session margin; only a file
            # whose header claims the requested days themselves stops the run.
            bad.append((path, str(exc), False, _claims(info, dates)))
            continue
        covs.append(cov)
        disagree = header_disagreement(cov)
        if disagree and path not in {p for p, _, _ in prep.disagreeing}:
            prep.disagreeing.append((path, *disagree))
    for path, reason, headerless, blocks in bad:
        key = failure_key(path)
        if key in failed:
            prep.quarantined.append((path, reason, headerless))
            continue
        if blocks:
            prep.blocking.append(reason)
        else:
            prep.reported.append((reason, headerless))
        prep.failed_rows.append(dict(
            source_kind="file", dataset=universe.dataset, schema=schema, status="failed", error=reason[:2000],
            file_path=display_path(path), content_sha256=key, run_id=run_id, started_at=now, finished_at=now,
        ))
    usable = []
    for c in covs:
        if c.sha256 in failed:
            prep.quarantined.append((c.path, "its last load failed (see ops.databento_load_state); replace or "
                                             "remove the file", False))
        else:
            usable.append(c)
    state = table_state(wh, spec, keys)
    prep.plan = plan_loads(keys, usable, loaded_rects(led, schema, root_of_series(universe)),
                           table_load_ids(state), known_load_ids(led))
    return prep


def _claims(info, dates: list[date]) -> bool:
    """Whether the header period overlaps the requested calendar days [first, last + 1 day) (UTC)."""
    lo = datetime.combine(dates[0], time(), tzinfo=UTC)
    hi = datetime.combine(dates[-1] + timedelta(days=1), time(), tzinfo=UTC)
    return not (info.start and info.start >= hi or info.end and info.end <= lo)


def failure_key(path: Path) -> str | None:
    """The key a failed file is quarantined by: its content's sha256 (a changed file is retried). A
    file refused for its NAME gets a key of its name and content, so a good file with the same bytes
    is never quarantined with it."""
    try:
        sha = ledger.file_sha256(path)
    except OSError:
        return None
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return "name-" + hashlib.sha256(os.fsencode(str(path)) + b"\0" + sha.encode()).hexdigest()
    return sha


def header_disagreement(cov: FileCoverage) -> tuple[str, str] | None:
    """(header span, records span) when the records lie outside the header's period, else None."""
    info = cov.info
    if cov.first_ts is None or cov.last_ts is None:
        return None
    early = info.start is not None and cov.first_ts < info.start
    late = info.end is not None and cov.last_ts >= info.end
    return (f"{info.start}..{info.end}", f"{cov.first_ts}..{cov.last_ts}") if early or late else None


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

