"""The warehouse interface every backend implements, and the frame checks they share.

A write is ``merge(spec, frame, slice)``: one atomic statement that upserts ``frame`` on the
table's key and deletes the rows of ``slice`` that ``frame`` no longer has. ``slice`` is the set
of (date, symbol) partitions the write owns; rows outside it are refused before anything is sent.
"""

from __future__ import annotations

import abc
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from chimera_assets.schemas import TableSpec
from chimera_assets.trade_calendar import first_owned_day


class WarehouseError(RuntimeError):
    """A warehouse operation failed; the message names the table."""


class FrameRejected(WarehouseError, ValueError):
    """The frame cannot be written (duplicate keys, rows outside the slice, NULL keys, bad columns)."""


class AuditFailed(WarehouseError):
    """A blocking audit rejected the staged rows; nothing was published."""

    def __init__(self, message: str, metadata: dict | None = None):
        super().__init__(message)
        self.metadata = metadata or {}
        #: The slice of the block whose rows failed (set by ``merge_blocks``; None if unknown).
        self.slice: Slice | None = None


@dataclass(frozen=True)
class Slice:
    """The partitions one write owns, as inclusive (symbol, first_day, last_day) ranges.

    ``symbol`` is None for date-only tables. A trade-date partition D owns the calendar days from
    the day after the previous weekday up to D (so Monday owns Sat-Mon): weekend-dated rows such as
    a Sunday UTC daily bar belong to the following Monday's partition, like the trade-date rule.
    ``everything=True`` means the whole table (unpartitioned tables).
    """

    ranges: tuple[tuple[str | None, date, date], ...] = ()
    everything: bool = False

    @classmethod
    def whole_table(cls) -> Slice:
        return cls(everything=True)

    @classmethod
    def from_keys(cls, keys: Iterable[tuple[date, str | None]]) -> Slice:
        """Compress (trade_date, symbol) keys into ranges of consecutive weekdays per symbol."""
        by_symbol: dict[str | None, list[date]] = {}
        for d, s in keys:
            by_symbol.setdefault(s, []).append(d)
        ranges: list[tuple[str | None, date, date]] = []
        for sym in sorted(by_symbol, key=lambda x: x or ""):
            days = sorted(set(by_symbol[sym]))
            start = prev = days[0]
            for d in days[1:]:
                if first_owned_day(d) - timedelta(days=1) <= prev:
                    prev = d
                    continue
                ranges.append((sym, first_owned_day(start), prev))
                start = prev = d
            ranges.append((sym, first_owned_day(start), prev))
        if not ranges:
            raise ValueError("a slice needs at least one partition key")
        return cls(tuple(ranges))

    @property
    def symbols(self) -> list[str]:
        return sorted({s for s, _, _ in self.ranges if s is not None})

    def mask(self, frame: pl.DataFrame, date_col: str, symbol_col: str | None) -> pl.Series:
        """Boolean Series: which rows of ``frame`` fall inside the slice."""
        if self.everything:
            return pl.Series([True] * frame.height, dtype=pl.Boolean)
        expr = pl.lit(False)
        for sym, lo, hi in self.ranges:
            cond = pl.col(date_col).is_between(lo, hi)
            if sym is not None and symbol_col is not None:
                cond = cond & (pl.col(symbol_col) == sym)
            expr = expr | cond
        return frame.select(expr.fill_null(False).alias("m")).to_series()


def keys_distinct(frame: pl.DataFrame, key: list[str]) -> bool:
    """True only if no ``key`` value occurs twice in ``frame``: equal keys hash equally, so as many
    distinct key hashes as rows proves every key distinct, ~3x cheaper than grouping. False may also
    mean a mere hash collision: callers then take the exact (grouping) path."""
    return frame.select(pl.struct(key).hash().n_unique()).item() == frame.height


def prepare_frame(spec: TableSpec, frame: pl.DataFrame, slice_: Slice | None) -> pl.DataFrame:
    """Validate and normalise ``frame`` for ``spec``: exact columns in spec order and types,
    non-null keys, no duplicate keys, every row inside ``slice_``. Raises ``FrameRejected``."""
    missing = [c for c in spec.column_names if c not in frame.columns]
    extra = [c for c in frame.columns if c not in spec.column_names]
    if missing or extra:
        raise FrameRejected(f"{spec.fqn}: frame columns do not match the table (missing {missing}, extra {extra})")
    try:
        out = frame.select([pl.col(c.name).cast(c.polars_dtype(), strict=True) for c in spec.columns])
    except Exception as exc:  # polars raises several types for bad casts
        raise FrameRejected(f"{spec.fqn}: a column has the wrong type ({exc})") from exc
    null_keys = out.filter(pl.any_horizontal([pl.col(k).is_null() for k in spec.key]))
    if null_keys.height:
        raise FrameRejected(f"{spec.fqn}: {null_keys.height} row(s) have a NULL key column {list(spec.key)}")
    # Grouping (to name the duplicates) only when the cheap hash test cannot prove the keys distinct.
    dups = out.head(0) if keys_distinct(out, list(spec.key)) else (
        out.group_by(list(spec.key)).len().filter(pl.col("len") > 1)
    )
    if dups.height:
        sample = dups.head(10).drop("len").rows()
        raise FrameRejected(f"{spec.fqn}: {dups.height} duplicate key(s) {list(spec.key)}, e.g. {sample}")
    if slice_ is not None and not slice_.everything:
        if spec.date_column is None:
            raise FrameRejected(f"{spec.fqn} is not partitioned; write it with Slice.whole_table()")
        inside = slice_.mask(out, spec.date_column, spec.symbol_column)
        outside = out.filter(~inside)
        if outside.height:
            cols = [c for c in (spec.date_column, spec.symbol_column) if c]
            sample = outside.select(cols).unique().sort(cols).head(10).rows()
            raise FrameRejected(
                f"{spec.fqn}: {outside.height} row(s) fall outside the partitions being written, e.g. {sample}"
            )
    return out


def conform(spec: TableSpec, frame: pl.DataFrame) -> pl.DataFrame:
    """Cast a frame read back from a backend to the spec's polars types (backends differ slightly),
    sorted by the key when it is present: parallel scans return rows in varying order, and float sums
    over differently ordered rows differ in the last bit, which would make re-runs not reproducible."""
    cols = [c for c in spec.columns if c.name in frame.columns]
    out = frame.select([pl.col(c.name).cast(c.polars_dtype()) for c in cols])
    if all(k in out.columns for k in spec.key):
        out = out.sort(list(spec.key))
    return out


@dataclass
class MergeResult:
    table: str
    rows_written: int
    rows_in_slice_after: int | None = None


Audit = Callable[[pl.DataFrame], None]


class Warehouse(abc.ABC):
    """What the IO manager, the ingestion code and the checks need from a warehouse."""

    kind: str = "abstract"
    #: Test hook: called after staging and before commit; raising aborts the write.
    before_commit: Callable[[TableSpec], None] | None = None

    @abc.abstractmethod
    def ensure_table(self, spec: TableSpec) -> None:
        """Create the table (and its schema/dataset) if missing, from ``spec``."""

    @abc.abstractmethod
    def merge(
        self, spec: TableSpec, frame: pl.DataFrame, slice_: Slice | None, audit: Audit | None = None
    ) -> MergeResult:
        """Upsert ``frame`` on the key and delete rows of ``slice_`` that ``frame`` lacks, atomically.

        ``slice_=None`` upserts without deleting. ``audit`` runs on the staged rows before
        publishing; raising (``AuditFailed``) leaves the table unchanged.
        """

    def merge_blocks(
        self,
        spec: TableSpec,
        blocks: Iterable[tuple[pl.DataFrame, Slice | None]],
        whole: Slice | None,
        audit: Audit | None = None,
    ) -> MergeResult:
        """Write ``blocks`` (frames, each with the slice it replaces; the slices are disjoint and
        together make ``whole``) as one atomic change, as ``merge`` does for one frame.

        DuckDB stages block by block, so memory is bounded by a block; this default gathers the
        blocks and merges once (memory grows with the whole write).
        """
        frames = [f for f, _ in blocks]
        frame = pl.concat(frames, how="vertical_relaxed") if frames else spec.empty_frame()
        try:
            return self.merge(spec, frame, whole, audit)
        except AuditFailed as exc:
            exc.slice = whole
            raise

    @abc.abstractmethod
    def read(
        self, spec: TableSpec, slice_: Slice | None = None, columns: list[str] | None = None
    ) -> pl.DataFrame:
        """Rows of ``slice_`` (all rows if None) as polars with the spec's types; empty if no table."""

    @abc.abstractmethod
    def table_exists(self, spec: TableSpec) -> bool: ...

    @abc.abstractmethod
    def drop_table(self, spec: TableSpec) -> None: ...

    def row_count(self, spec: TableSpec) -> int:
        return self.read(spec, columns=list(spec.key)).height

    def stored_column_types(self, spec: TableSpec) -> dict[str, str]:
        """The stored table's column types in the spec's dialect (BigQuery names): a column whose stored
        type is the spec's reads as the spec type, one changed by hand (``ALTER TABLE``) as what the
        backend reports (e.g. ``VARCHAR``); {} when the table does not exist. STRUCT columns are
        compared by kind only. The base implementation knows nothing: the spec's own types."""
        return {c.name: c.type for c in spec.columns}

    def close(self) -> None:  # noqa: B027 - optional for backends
        """Release connections (DuckDB opens one per operation, so usually nothing to do)."""


def spec_dialect_types(spec: TableSpec, stored: dict[str, str], aliases: dict[str, str],
                       bigquery: bool = False) -> dict[str, str]:
    """``stored`` (column -> the backend's type name) in the spec's dialect: the spec type where the
    stored type is the one the spec would create, else the stored name as reported (a retyped column)."""
    out = {}
    for c in spec.columns:
        got = stored.get(c.name)
        if got is None:
            continue
        got = aliases.get(got.upper(), got.upper())
        want = c.type if bigquery else (c.duckdb_type().upper() if c.type != "STRUCT" else "STRUCT")
        same = got.startswith("STRUCT") if c.type == "STRUCT" else got == want.upper()
        out[c.name] = c.type if same else got
    return out


_DONE = object()


def prefetch(items: Iterable, depth: int = 1) -> Iterator:
    """``items``, produced by a background thread up to ``depth`` ahead of the consumer.

    Lets the next block be decoded while the warehouse writes the current one (decompression,
    polars and DuckDB release the GIL, so on 2 cores the two overlap). One worker thread advances
    the iterator (so ``items`` is only ever touched by that thread, one ``next`` at a time). An
    exception in the producer is re-raised in the consumer at the item where it happened; if the
    consumer stops early, the read-aheads not started are cancelled and the executor is shut down
    once the one in progress (at most one item) finishes.
    """
    source = iter(items)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chimera-prefetch")
    try:
        ahead = deque(pool.submit(next, source, _DONE) for _ in range(depth))
        while True:
            item = ahead.popleft().result()  # re-raises the producer's exception
            if item is _DONE:
                return
            ahead.append(pool.submit(next, source, _DONE))  # read ahead while the consumer works
            yield item
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
