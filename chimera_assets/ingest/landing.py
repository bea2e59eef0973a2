"""DBN files from a landing directory (portal downloads, batch jobs, API chunks) into raw frames.

Selecting files is cheap (headers only, cached per path+size+mtime); decoding is the fast
``to_ndarray`` path of :mod:`chimera_assets.dbn.decode`. A raw frame for a set of partition keys
is the union of every selected file's rows for those keys; where files overlap, the newest file
(by modification time) wins per table key, so overlapping downloads never duplicate rows.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import polars as pl

from chimera_assets.dbn.decode import SUPPORTED_SCHEMAS, iter_decoded_chunks
from chimera_assets.dbn.diagnostics import DbnDecodeError, DecodeStats
from chimera_assets.dbn.header import DbnInfo, read_dbn_metadata
from chimera_assets.schemas import (
    DEFINITIONS,
    OHLCV_1D,
    OHLCV_1H,
    OHLCV_1M,
    STATISTICS,
    TableSpec,
)
from chimera_assets.trade_calendar import (
    first_owned_day,
    on_or_after_weekday_expr,
    previous_weekday,
    root_expr,
)
from chimera_assets.universe import Universe
from chimera_assets.warehouse.base import keys_distinct

logger = logging.getLogger(__name__)

DBN_SUFFIXES = (".dbn", ".dbn.zst")
SCHEMA_TABLES: dict[str, TableSpec] = {
    "ohlcv-1m": OHLCV_1M,
    "ohlcv-1h": OHLCV_1H,
    "ohlcv-1d": OHLCV_1D,
    "statistics": STATISTICS,
    "definition": DEFINITIONS,
}


def is_dbn_path(path: Path) -> bool:
    return path.is_file() and any(path.name.endswith(s) for s in DBN_SUFFIXES)


def list_dbn_files(landing_dir: Path) -> list[Path]:
    """Every ``*.dbn``/``*.dbn.zst`` below ``landing_dir`` (hidden and partial files excluded)."""
    if not landing_dir.exists():
        return []
    return sorted(
        p for p in landing_dir.rglob("*") if is_dbn_path(p) and not p.name.startswith((".", "~"))
    )


def display_path(path: Path | str) -> str:
    """``path`` as text that can always be logged and stored: ``os.fsdecode``'s text, with bytes that
    are not UTF-8 shown as ``\\xNN`` escapes (a name of Latin-1 bytes cannot go into a log line, a
    SQLite event log or a warehouse string column as it is)."""
    text = os.fsdecode(path)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def unusable_reason(path: Path) -> str | None:
    """Why ``path`` cannot be loaded before any byte of it is decoded, or None: a file name that is
    not valid UTF-8 (the ledger and the logs could not name it), an empty file."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return (f"{display_path(path)}: the file name is not valid UTF-8; rename it (e.g. with "
                "`convmv -f latin1 -t utf8`) to load it")
    try:
        if path.stat().st_size == 0:
            return f"{path}: empty file (0 bytes): an unfinished download or copy; the file is refused"
    except OSError as exc:
        return f"{path}: cannot be read: {exc.strerror or exc}"
    return None


def header(path: Path) -> DbnInfo:
    """The file's DBN header, cached while its size and mtime are unchanged (a rewritten file, whose
    size or mtime changes, is read again). Raises DbnDecodeError naming an unreadable file."""
    st = path.stat()
    return _cached_header(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16_384)
def _cached_header(path: str, size: int, mtime_ns: int) -> DbnInfo:
    """``read_dbn_metadata(path)``; ``size`` and ``mtime_ns`` only key the cache (bounded: a
    long-lived sensor process sees every landing file; a header is a few hundred bytes)."""
    return read_dbn_metadata(Path(path))


def series_roots(info: DbnInfo, universe: Universe) -> set[str]:
    """Roots of the universe the file has series for (unparseable symbols are ignored here)."""
    symbols = pl.Series("s", list(info.symbols), dtype=pl.Utf8)
    parsed = pl.select(root_expr(pl.lit(symbols))).to_series()  # one vectorised pass; NULL = unparseable
    return {r for r in parsed.drop_nulls().unique() if r in universe.roots}


@dataclass
class FileSelection:
    files: list[tuple[Path, DbnInfo]] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    #: files of the schema whose series belong to no root of the universe (skipped, but said)
    foreign: list[tuple[Path, list[str]]] = field(default_factory=list)
    #: files whose header period disagrees with their records: (path, header span, records span)
    disagreeing: list[tuple[Path, str, str]] = field(default_factory=list)


def select_files(
    paths: Iterable[Path], schema: str, dates: Iterable[date], roots: Iterable[str], universe: Universe,
) -> FileSelection:
    """Files of ``schema`` whose period overlaps ``dates`` (with a day's margin for the trade-date
    shift and weekends) and whose series include one of ``roots``; oldest first.

    The period is the header's AND the records' (whichever is wider): coverage comes from the records
    (SPEC 6.2), so a file whose header disagrees with them is still found, and listed in
    ``disagreeing``. The records' span is decoded once per file content (``record_spans``)."""
    from chimera_assets.ingest.record_spans import record_span
    dates = sorted(dates)
    roots = set(roots)
    lo = datetime.combine(dates[0] - timedelta(days=3), time(), tzinfo=UTC)
    hi = datetime.combine(dates[-1] + timedelta(days=1), time(), tzinfo=UTC)
    sel = FileSelection()
    for p in paths:
        problem = unusable_reason(p)
        if problem is not None:
            sel.unreadable.append((p, problem))
            continue
        try:
            info = header(p)
        except DbnDecodeError as exc:
            sel.unreadable.append((p, str(exc)))
            continue
        if info.schema not in SUPPORTED_SCHEMAS:
            sel.unreadable.append((p, f"{p}: unsupported DBN schema {info.schema!r} (supported: {sorted(SUPPORTED_SCHEMAS)})"))
            continue
        if info.schema != schema:
            continue
        file_roots = series_roots(info, universe) if info.stype_in != "instrument_id" else None
        if info.start and info.start >= hi or info.end and info.end <= lo:
            if file_roots is not None and not (file_roots & roots):
                continue  # not for these roots either: no need to decode it
            span = record_span(p)  # the header says no: do the records agree?
            if span is None or span[0] >= hi or span[1] < lo:
                continue
            sel.disagreeing.append((p, f"{info.start}..{info.end}", f"{span[0]}..{span[1]}"))
        if file_roots is not None:
            if not file_roots:
                sel.foreign.append((p, info.symbols[:5]))
            if not (file_roots & roots):
                continue
        sel.files.append((p, info))
    sel.files.sort(key=lambda fi: (fi[0].stat().st_mtime_ns, str(fi[0])))
    return sel


def keys_frame(keys: Iterable[tuple[date, str | None]]) -> pl.DataFrame:
    k = list(keys)
    return pl.DataFrame(
        {"_pdate": [d for d, _ in k], "symbol": [s for _, s in k]}, schema={"_pdate": pl.Date, "symbol": pl.Utf8}
    )


def _partition_date(spec: TableSpec) -> pl.Expr:
    """Which trade-date partition a row belongs to: weekend dates roll to the next Monday."""
    return on_or_after_weekday_expr(spec.date_column)


class LandingFileError(ValueError):
    """One DBN file could not be decoded; ``path`` names it."""

    def __init__(self, path: Path, reason: str):
        super().__init__(reason)
        self.path = path


@dataclass
class FileLoad:
    path: Path
    info: DbnInfo
    records: int
    rows_for_keys: int
    first_ts: datetime | None
    last_ts: datetime | None
    unmapped_dropped: int


def _shape_rows(spec: TableSpec, chunk: pl.DataFrame, universe: Universe) -> pl.DataFrame:
    """Map a decoded chunk onto the table's columns, keeping only the universe's configured series."""
    if spec is DEFINITIONS:
        chunk = chunk.with_columns(pl.col("root").alias("symbol"))
    allowed = []
    for root, cfg in universe.roots.items():
        allowed += [(root, s) for s in (*cfg.series, *cfg.statistics_series)]
    allowed_df = pl.DataFrame({"symbol": [a for a, _ in allowed], "series": [b for _, b in allowed]})
    if "series" in chunk.columns and chunk["series"].null_count() < chunk.height:
        chunk = chunk.join(allowed_df, on=["symbol", "series"], how="semi")
    else:
        chunk = chunk.filter(pl.col("symbol").is_in(list(universe.roots)))
    if spec is DEFINITIONS:
        chunk = chunk.rename({"symbol": "_sym"}).with_columns(pl.col("_sym").alias("root"))
    extra = {c.name: pl.lit(None, c.polars_dtype()) for c in spec.columns if c.name not in chunk.columns}
    return chunk.with_columns(**extra)


def build_raw_frame(
    spec: TableSpec,
    files: list[tuple[Path, DbnInfo]],
    keys: list[tuple[date, str | None]],
    universe: Universe,
    load_id: str,
) -> tuple[pl.DataFrame, list[FileLoad]]:
    """Rows of ``files`` for the partition ``keys`` shaped as ``spec``; newest file wins per key.

    Raises LandingFileError (naming the file) if any selected file is empty, truncated or corrupt:
    a partial file must never publish partial partitions.
    """
    kf = keys_frame(keys)
    sym_col = "root" if spec is DEFINITIONS else "symbol"
    parts: list[pl.DataFrame] = []
    file_parts: list[tuple[Path, int, int]] = []  # each file's slice of ``parts``
    loads: list[FileLoad] = []
    for order, (path, info) in enumerate(files):
        stats = DecodeStats()
        rows = 0
        first = last = None
        first_part = len(parts)
        try:
            # Chunk by chunk: only the rows kept for the keys stay in memory, not every decoded chunk.
            # A truncated file still raises before anything is written (the merge comes after).
            for chunk in iter_decoded_chunks(path, stats=stats):
                shaped = _shape_rows(spec, chunk, universe)
                shaped = (
                    shaped.with_columns(_partition_date(spec).alias("_pdate"), pl.col(sym_col).alias("symbol"))
                    .join(kf, on=["_pdate", "symbol"], how="semi")
                    .with_columns(pl.lit(order).alias("_file_order"))
                )
                if spec is DEFINITIONS:
                    shaped = shaped.drop("symbol")
                if "ts_event" in chunk.columns and chunk.height:
                    lo, hi = chunk["ts_event"].min(), chunk["ts_event"].max()
                    first = lo if first is None or lo < first else first
                    last = hi if last is None or hi > last else last
                rows += shaped.height
                parts.append(shaped)
        except DbnDecodeError as exc:
            raise LandingFileError(path, str(exc)) from exc
        if stats.unparseable_series:
            raise LandingFileError(
                path, f"{path}: series symbol(s) {stats.unparseable_series[:5]!r} name no product root; "
                "the file is refused rather than loaded without their records"
            )
        if stats.unmapped_dropped:
            # Records the file's own symbology cannot name would vanish, and their partitions would be
            # rewritten without them: refuse the file instead.
            ids = ", ".join(str(i) for i in stats.unmapped_instrument_ids[:5])
            raise LandingFileError(
                path, f"{path}: {stats.unmapped_dropped} record(s) have no symbology mapping on their date "
                f"(instrument_id {ids}); the file's mappings have a gap"
            )
        file_parts.append((path, first_part, len(parts)))
        loads.append(FileLoad(path, info, stats.records_read, rows, first, last, stats.unmapped_dropped))
    if not parts:
        return spec.empty_frame(), loads
    frame = pl.concat([p.select([*spec.column_names, "_file_order"]) for p in parts])
    # One pass over all rows settles the usual case: no key occurs twice anywhere, so no file can hold
    # conflicting duplicates and there is nothing to dedupe. Otherwise each file is checked on its own.
    distinct = spec is not STATISTICS and keys_distinct(frame, list(spec.key))
    if not distinct:
        for path, a, b in file_parts:
            _refuse_conflicting_duplicates(spec, path, parts[a:b])
    frame = frame.with_columns(pl.lit(load_id).alias("load_id"))
    if not distinct:
        frame = _dedupe(spec, frame)
    return frame.select(spec.column_names), loads


def _refuse_conflicting_duplicates(spec: TableSpec, path: Path, parts: list[pl.DataFrame]) -> None:
    """One file must not hold two DIFFERENT rows for one key (identical repeats are harmless)."""
    if spec is STATISTICS or not parts:
        return  # statistics legitimately repeat a key (preliminary, then final settlement)
    rows = pl.concat(parts).drop("_file_order", "_pdate", strict=False)
    if keys_distinct(rows, list(spec.key)):
        return  # no key occurs twice in the file (the usual case): nothing can conflict
    values = [c for c in rows.columns if c not in ("load_id",)]
    distinct = rows.select(values).unique()
    clash = distinct.filter(distinct.select(list(spec.key)).is_duplicated())
    if clash.height:
        sample = clash.select(list(spec.key)).unique().head(3).rows()
        raise LandingFileError(
            path, f"{path}: {clash.height} conflicting duplicate record(s): different values for one key "
            f"{list(spec.key)}, e.g. {sample}"
        )


def _dedupe(spec: TableSpec, frame: pl.DataFrame) -> pl.DataFrame:
    """One row per table key: statistics keep the final record (stat_flags & 1) then the latest
    ts_recv; everything else keeps the row from the newest file. (``build_raw_frame`` skips it when
    every key is already distinct.)"""
    if spec is STATISTICS:
        frame = frame.with_columns(((pl.col("stat_flags").fill_null(0) & 1) == 1).alias("_final"))
        frame = frame.sort(["_final", "ts_recv", "_file_order"], nulls_last=False)
    else:
        frame = frame.sort("_file_order")
    return frame.unique(subset=list(spec.key), keep="last", maintain_order=True)


def needed_window(schema: str, d: date) -> tuple[datetime, datetime]:
    """The UTC span a file must cover to hold ALL of partition ``d``'s records of ``schema``.

    Intraday bars of trade date D run from the previous weekday's evening session (17:00 CT, so at
    the latest 21:00 UTC) to D's close; daily bars and definitions are dated by UTC day, a Monday
    also owning the weekend before it; statistics for D (open interest) arrive up to a day later.
    """
    utc = UTC
    if schema in ("ohlcv-1d", "definition"):
        return datetime.combine(first_owned_day(d), time(), utc), datetime.combine(d + timedelta(days=1), time(), utc)
    lo = datetime.combine(previous_weekday(d), time(21), utc)
    days_after = 2 if schema == "statistics" else 1
    return lo, datetime.combine(d + timedelta(days=days_after), time(), utc)

