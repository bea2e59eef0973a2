"""Fast, vectorised decoding of Databento DBN files (v1, v2, v3; ``.dbn`` or ``.dbn.zst``) into polars.

Records are read with ``DBNStore.from_file(path).to_ndarray(count=...)`` (numpy structured arrays,
C speed) and turned into polars columns without any per-record Python. Symbology comes from the
file's own metadata ``mappings`` (series symbol -> UTC-date intervals, end exclusive -> instrument id)
and is joined in polars on ``(instrument_id, UTC date)``. The date used for the join is the UTC date
of ``ts_recv`` for schemas that have it (statistics, definition) and of ``ts_event`` otherwise: the
same rule ``databento``'s own ``to_df(map_symbols=True)`` applies.

Units and conventions of every output frame:

* prices: Databento fixed-point int64 (1e-9 units) divided by 1e9 into Float64 (the division of an
  exactly representable integer by 1e9 is correctly rounded, i.e. the closest double); the UNDEF
  sentinel (int64 max) becomes NULL;
* timestamps: ``Datetime("us", "UTC")``; nanoseconds are floored to microseconds (the warehouse
  TIMESTAMP resolution); the UNDEF sentinel (uint64 max) becomes NULL;
* ``trade_date``: CME trade date (:func:`chimera_assets.trade_calendar.trade_date_expr`);
* ``symbol``: the product root (``ZL``); ``series``: the requested symbol (``ZL.v.0``);
* integers are Int64 (the warehouse type), whatever the record layout's width.

Records whose instrument id has no mapping on their date are dropped, counted in
:class:`DecodeStats` and logged as a warning: an unmapped record would otherwise get a wrong or empty
root. Files requested with ``stype_in=instrument_id`` carry no symbology: their ``series`` is NULL and
their root must come from ``instrument_roots`` (e.g. from definitions); without it, decoding raises.

Errors are :class:`DbnDecodeError` (a ``ValueError``) naming the file: empty file, truncated file
(incomplete zstd frame or incomplete final record), non-DBN body, unsupported schema.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from chimera_assets.trade_calendar import is_spread_symbol_expr, root_expr, trade_date_expr

logger = logging.getLogger(__name__)

OHLCV_SCHEMAS = frozenset({"ohlcv-1s", "ohlcv-1m", "ohlcv-1h", "ohlcv-1d"})
SUPPORTED_SCHEMAS = OHLCV_SCHEMAS | {"statistics", "definition"}

FIXED_PRICE_SCALE = 1_000_000_000
UNDEF_PRICE = np.iinfo(np.int64).max
UNDEF_TIMESTAMP = np.iinfo(np.uint64).max
_NS_PER_DAY = 86_400 * 1_000_000_000
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_UTC = dt.UTC

# Definition instrument classes that are spreads: future spread, option spread, mixed spread.
SPREAD_INSTRUMENT_CLASSES = ("S", "T", "M")


class DbnDecodeError(ValueError):
    """A DBN file cannot be decoded; the message names the file and the reason."""


@dataclass(frozen=True)
class DbnInfo:
    """Header facts of one DBN file (cheap: only the metadata is read).

    ``start``/``end`` are the request window in UTC (``end`` is None when the file says UNDEF).
    ``record_count`` is filled only for uncompressed files of fixed-size records (file size
    arithmetic); for ``.zst`` it is None because counting needs a full decompression.
    """

    path: Path
    dataset: str | None
    schema: str | None
    dbn_version: int
    stype_in: str | None
    stype_out: str | None
    symbols: list[str]
    start: dt.datetime | None
    end: dt.datetime | None
    record_count: int | None = None
    limit: int | None = None
    compressed: bool = False
    mapping_intervals: int = 0


@dataclass
class DecodeStats:
    """Counters of one decode: filled progressively by :func:`iter_decoded_chunks`.

    ``unmapped_dropped`` is the number of records dropped because their instrument id had no
    symbology mapping on their date; ``unmapped_instrument_ids`` lists (up to 50) of those ids.
    ``ambiguous_records`` counts records whose (instrument_id, date) matched several requested
    series (e.g. ``ES.v.0`` and ``ES.c.0`` both on the same contract): they are kept once, with the
    alphabetically first series. ``unparseable_series`` lists requested symbols whose root cannot be
    parsed (e.g. options); their records are dropped and counted as unmapped.
    """

    path: Path | None = None
    schema: str | None = None
    records_read: int = 0
    rows_out: int = 0
    unmapped_dropped: int = 0
    unmapped_instrument_ids: list[int] = field(default_factory=list)
    ambiguous_records: int = 0
    unparseable_series: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Header / file checks
# --------------------------------------------------------------------------------------------------


def _ns_to_utc(ns: int | None) -> dt.datetime | None:
    if ns is None or ns >= int(UNDEF_TIMESTAMP):
        return None
    return dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=_UTC) + dt.timedelta(
        microseconds=(ns % 1_000_000_000) // 1000
    )


def _enum_str(v: object) -> str | None:
    if v is None:
        return None
    return str(getattr(v, "value", v))


def _check_zstd_complete(path: Path) -> None:
    """Walk the zstd frame/block headers (no decompression) and fail on a truncated stream.

    Why: ``databento``'s zstd reader stops silently at the end of a cut compressed stream, so a
    truncated ``.zst`` would decode as a shorter, apparently valid file. Walking block headers is
    O(number of 128 KiB blocks) and reads only a few bytes per block.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        pos = 0
        while pos < size:
            fh.seek(pos)
            magic = fh.read(4)
            if len(magic) < 4:
                raise DbnDecodeError(f"{path}: truncated zstd stream (partial frame magic)")
            magic_int = int.from_bytes(magic, "little")
            if 0x184D2A50 <= magic_int <= 0x184D2A5F:  # skippable frame
                skip = fh.read(4)
                if len(skip) < 4:
                    raise DbnDecodeError(f"{path}: truncated zstd stream (skippable frame)")
                pos += 8 + int.from_bytes(skip, "little")
                if pos > size:
                    raise DbnDecodeError(f"{path}: truncated zstd stream (skippable frame)")
                continue
            if magic != _ZSTD_MAGIC:
                raise DbnDecodeError(f"{path}: corrupt zstd stream (bad frame magic at byte {pos})")
            fhd_b = fh.read(1)
            if not fhd_b:
                raise DbnDecodeError(f"{path}: truncated zstd stream (frame header)")
            fhd = fhd_b[0]
            fcs_flag = fhd >> 6
            single_segment = (fhd >> 5) & 1
            checksum = (fhd >> 2) & 1
            dict_flag = fhd & 3
            header_len = 1 + (0 if single_segment else 1) + (0, 1, 2, 4)[dict_flag]
            header_len += (1 if single_segment else 0, 2, 4, 8)[fcs_flag]
            pos += 4 + header_len
            while True:
                fh.seek(pos)
                bh = fh.read(3)
                if len(bh) < 3:
                    raise DbnDecodeError(f"{path}: truncated zstd stream (file ends inside a frame)")
                b = int.from_bytes(bh, "little")
                last, btype, bsize = b & 1, (b >> 1) & 3, b >> 3
                if btype == 3:
                    raise DbnDecodeError(f"{path}: corrupt zstd stream (reserved block type)")
                pos += 3 + (1 if btype == 1 else bsize)
                if last:
                    break
            pos += 4 if checksum else 0
            if pos > size:
                raise DbnDecodeError(f"{path}: truncated zstd stream (file ends inside a frame)")


def _open_store(path: Path):
    """Open a DBNStore, translating every failure into DbnDecodeError naming the file."""
    import databento as db  # local import: databento pulls pandas etc.; keep module import light
    from databento.common.error import BentoError, BentoWarning
    from databento_dbn import DBNError

    if not path.exists():
        raise DbnDecodeError(f"{path}: file does not exist")
    if not path.is_file():
        raise DbnDecodeError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise DbnDecodeError(f"{path}: empty file (0 bytes), not a DBN file")
    with open(path, "rb") as fh:
        head = fh.read(4)
    compressed = head == _ZSTD_MAGIC
    if compressed:
        _check_zstd_complete(path)
    elif head[:3] != b"DBN":
        raise DbnDecodeError(f"{path}: not a DBN file (no 'DBN' magic and not zstd-compressed)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", BentoWarning)
            store = db.DBNStore.from_file(path)
            _ = store.metadata
    except (BentoError, BentoWarning, DBNError, ValueError, OSError) as exc:
        raise DbnDecodeError(f"{path}: not a readable DBN file ({type(exc).__name__}: {exc})") from exc
    return store, compressed


def _record_count_uncompressed(path: Path) -> int | None:
    """Record count of an uncompressed DBN file by size arithmetic (fixed-size records only)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return None
        meta_len = int.from_bytes(head[4:8], "little")
        fh.seek(8 + meta_len)
        first = fh.read(1)
    body = size - 8 - meta_len
    if body == 0:
        return 0
    if not first or first[0] == 0:
        return None
    rec_len = first[0] * 4  # DBN record header: length in 32-bit words
    return body // rec_len if body % rec_len == 0 else None


def read_dbn_metadata(path: str | Path) -> DbnInfo:
    """Read a DBN file's header into :class:`DbnInfo` (raises DbnDecodeError on unreadable files)."""
    path = Path(path)
    store, compressed = _open_store(path)
    m = store.metadata
    limit = int(m.limit) if m.limit else None
    intervals = sum(len(v) for v in (m.mappings or {}).values())
    return DbnInfo(
        path=path,
        dataset=m.dataset,
        schema=_enum_str(m.schema),
        dbn_version=int(m.version),
        stype_in=_enum_str(m.stype_in),
        stype_out=_enum_str(m.stype_out),
        symbols=[str(s) for s in (m.symbols or [])],
        start=_ns_to_utc(m.start),
        end=_ns_to_utc(m.end),
        record_count=None if compressed else _record_count_uncompressed(path),
        limit=limit,
        compressed=compressed,
        mapping_intervals=intervals,
    )


# Upper bounds of records per instrument, used by :func:`record_bound`. OHLCV: one bar per
# instrument per interval at most. Statistics and definitions have no fixed grid: these are generous
# per instrument-day ceilings (real GLBX files carry tens of statistics and a few definitions per
# instrument and day).
_BAR_SECONDS = {"ohlcv-1s": 1, "ohlcv-1m": 60, "ohlcv-1h": 3600, "ohlcv-1d": 86400}
_PER_INSTRUMENT_DAY = {"statistics": 5_000, "definition": 500}
#: Floor of every bound: a tiny header never refuses a small file.
MIN_RECORD_BOUND = 100_000


def record_bound(meta) -> int | None:
    """The most records a file with this DBN header can honestly hold (None: no bound derivable).

    Derived from the header alone, so it is known before any record is decompressed: the request
    window [start, end), the instruments the symbology maps (distinct instrument ids in
    ``mappings``, else the number of requested symbols) and the schema's grid (one bar per
    instrument per interval for OHLCV; per instrument-day ceilings for statistics/definitions),
    times 2 for slack, at least ``MIN_RECORD_BOUND``. A zstd bomb (a tiny file expanding to GBs of
    records) exceeds it after one chunk, so decoding stops with bounded memory.
    """
    start, end = getattr(meta, "start", None), getattr(meta, "end", None)
    if start is None or end is None or int(end) >= int(UNDEF_TIMESTAMP) or int(end) <= int(start):
        return None
    ids: set[str] = set()
    for intervals in (getattr(meta, "mappings", None) or {}).values():
        ids.update(str(iv["symbol"]) for iv in intervals)
    n_inst = max(len(ids), len(getattr(meta, "symbols", None) or []), 1)
    span_s = (int(end) - int(start)) / 1e9
    schema = _enum_str(meta.schema)
    if schema in _BAR_SECONDS:
        per_inst = span_s / _BAR_SECONDS[schema] + 2
    else:
        per_inst = (span_s / 86400 + 2) * _PER_INSTRUMENT_DAY.get(schema or "", 5_000)
    limit = int(meta.limit) if getattr(meta, "limit", None) else None
    bound = max(MIN_RECORD_BOUND, int(2 * n_inst * per_inst))
    return min(bound, max(limit, MIN_RECORD_BOUND)) if limit else bound


def count_dbn_records(path: str | Path, chunk_rows: int = 1_000_000) -> int:
    """Number of records in a DBN file, reading every record (validates the whole body).

    Raises DbnDecodeError for empty, truncated (incomplete zstd frame or final record) or non-DBN
    files. Used to validate a download before it replaces the destination file. Any schema.
    """
    from databento.common.error import BentoError, BentoWarning
    from databento_dbn import DBNError

    path = Path(path)
    store, _ = _open_store(path)
    bound = record_bound(store.metadata)
    n = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", BentoWarning)
            for arr in store.to_ndarray(count=chunk_rows if bound is None else min(chunk_rows, max(bound // 4, 10_000))):
                n += len(arr)
                if bound is not None and n > bound:
                    raise DbnDecodeError(f"{path}: more than {bound:,} records, the most its header allows; "
                                         "refused as a decompression bomb or a corrupt header")
    except BentoWarning as exc:
        raise DbnDecodeError(f"{path}: truncated DBN file ({exc})") from exc
    except (BentoError, DBNError, OSError, ValueError) as exc:
        raise DbnDecodeError(f"{path}: cannot decode records ({type(exc).__name__}: {exc})") from exc
    return n


# --------------------------------------------------------------------------------------------------
# Symbology
# --------------------------------------------------------------------------------------------------

_MAPPING_SCHEMA = {
    "instrument_id": pl.Int64,
    "map_date": pl.Date,
    "series": pl.Utf8,
    "symbol": pl.Utf8,
    "series_is_spread": pl.Boolean,
    "n_series": pl.UInt32,
}


def _mapping_frame(mappings: Mapping[str, list[dict]] | None) -> tuple[pl.DataFrame, list[str]]:
    """Expand metadata mappings into one row per (instrument_id, UTC date), end date exclusive.

    Returns the frame (columns of ``_MAPPING_SCHEMA``) and the series whose root cannot be parsed.
    The Python loop runs over mapping intervals (hundreds), never over records; the root and the
    spread flag are computed here, once per series, instead of once per record. Interval symbols
    that are not integers (a file whose stype_out is not instrument_id) cannot be joined to records
    and are ignored. Where several series map the same instrument on the same date, the
    alphabetically first is kept and ``n_series`` records the ambiguity. Series whose root cannot be
    parsed are left out, so their records count as unmapped (dropped with a warning).
    """
    series, iids, starts, ends = [], [], [], []
    for sym, intervals in (mappings or {}).items():
        for iv in intervals:
            target = str(iv["symbol"])
            if not target.isdigit():
                continue
            series.append(str(sym))
            iids.append(int(target))
            starts.append(iv["start_date"])
            ends.append(iv["end_date"])
    if not series:
        return pl.DataFrame(schema=_MAPPING_SCHEMA), []
    frame = (
        pl.DataFrame(
            {"series": series, "instrument_id": iids, "start": starts, "end": ends},
            schema={"series": pl.Utf8, "instrument_id": pl.Int64, "start": pl.Date, "end": pl.Date},
        )
        .filter(pl.col("end") > pl.col("start"))
        .with_columns(symbol=root_expr("series"), series_is_spread=is_spread_symbol_expr("series"))
    )
    bad = sorted(frame.filter(pl.col("symbol").is_null()).get_column("series").unique().to_list())
    frame = (
        frame.filter(pl.col("symbol").is_not_null())
        .with_columns(map_date=pl.date_ranges("start", pl.col("end") - pl.duration(days=1), interval="1d"))
        .explode("map_date")
        .sort("series")
        .group_by("instrument_id", "map_date")
        .agg(
            pl.col("series").first(),
            pl.col("symbol").first(),
            pl.col("series_is_spread").first(),
            pl.col("series").n_unique().alias("n_series"),
        )
        .select(list(_MAPPING_SCHEMA))
        .cast(_MAPPING_SCHEMA)
    )
    return frame, bad


# Above this many distinct UTC hours the lookup table is not worth it (garbage timestamps).
_MAX_LUT_HOURS = 5_000_000
_US_PER_HOUR = 3_600_000_000


def _trade_dates_from_ts(ts: pl.Series) -> pl.Series:
    """CME trade dates of a Datetime("us", "UTC") series, computed through an hourly lookup table.

    Why: the trade date is a function of the UTC hour only (Chicago's UTC offset is a whole number
    of hours and changes on UTC hour boundaries, and the +7 h rule moves whole hours), so evaluating
    :func:`trade_date_expr` once per distinct hour of the span and gathering with numpy is exact and
    10-50x cheaper than converting every timestamp's time zone. Nulls stay null.
    """
    if ts.len() == 0 or ts.null_count() == ts.len():
        return pl.Series("trade_date", [None] * ts.len(), dtype=pl.Date)
    us = ts.dt.epoch("us")
    hours = us.to_numpy() if us.null_count() == 0 else us.fill_null(us.min()).to_numpy()
    hours = np.floor_divide(hours, _US_PER_HOUR)
    h0, h1 = int(hours.min()), int(hours.max())
    if h1 - h0 + 1 > _MAX_LUT_HOURS:
        return ts.to_frame("ts").select(trade_date_expr("ts")).to_series()
    grid = pl.Series("ts", np.arange(h0, h1 + 1, dtype=np.int64) * _US_PER_HOUR)
    lut = (
        grid.cast(pl.Datetime("us"))
        .dt.replace_time_zone("UTC")
        .to_frame()
        .select(trade_date_expr("ts").cast(pl.Int32))
        .to_series()
        .to_numpy()
    )
    out = pl.Series("trade_date", lut[hours - h0]).cast(pl.Date)
    if ts.null_count():
        out = out.set(ts.is_null(), None)
    return out


# --------------------------------------------------------------------------------------------------
# numpy -> polars helpers (vectorised)
# --------------------------------------------------------------------------------------------------


def _ts_series(arr: np.ndarray, name: str) -> pl.Series:
    """uint64 ns since epoch -> Datetime("us", "UTC"); UNDEF (uint64 max) -> NULL."""
    raw = np.ascontiguousarray(arr[name])
    undef = raw == UNDEF_TIMESTAMP
    us = (raw // 1000).astype(np.int64)
    s = pl.Series(name, us).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if undef.any():
        s = s.scatter(np.flatnonzero(undef), None)
    return s


def _date_from_ns(arr: np.ndarray, name: str) -> pl.Series:
    """UTC calendar date of a uint64 ns timestamp column (UNDEF -> NULL)."""
    raw = np.ascontiguousarray(arr[name])
    days = (raw // _NS_PER_DAY).astype(np.int32)
    s = pl.Series(name, days).cast(pl.Date)
    undef = raw == UNDEF_TIMESTAMP
    if undef.any():
        s = s.scatter(np.flatnonzero(undef), None)
    return s


def _price_series(arr: np.ndarray, name: str) -> pl.Series:
    """int64 fixed-point 1e-9 -> Float64 by exact division; UNDEF_PRICE -> NULL."""
    raw = np.ascontiguousarray(arr[name]).astype(np.int64, copy=False)
    vals = raw.astype(np.float64) / FIXED_PRICE_SCALE
    undef = raw == UNDEF_PRICE
    s = pl.Series(name, vals)
    if undef.any():
        s = s.scatter(np.flatnonzero(undef), None)
    return s


def _int_series(arr: np.ndarray, name: str, undef_is_null: bool = False) -> pl.Series:
    """Any integer field -> Int64; with ``undef_is_null`` the dtype's max (the UNDEF sentinel of
    that layout: int32 max for v1/v2 stat quantity, int64 max in v3, uintN max) becomes NULL."""
    raw = np.ascontiguousarray(arr[name])
    undef = raw == np.iinfo(raw.dtype).max if undef_is_null else None
    if raw.dtype == np.uint64:
        # Values above int64 max would wrap; they only occur as sentinels.
        big = raw > np.iinfo(np.int64).max
        raw = np.where(big, 0, raw).astype(np.int64)
        undef = big if undef is None else (undef | big)
    s = pl.Series(name, raw.astype(np.int64, copy=False))
    if undef is not None and undef.any():
        s = s.scatter(np.flatnonzero(undef), None)
    return s


def _str_series(arr: np.ndarray, name: str) -> pl.Series:
    """Fixed-width C string field (bytes, NUL-padded) -> Utf8; empty -> NULL; missing field -> NULL."""
    if name not in (arr.dtype.names or ()):
        return pl.Series(name, [None] * len(arr), dtype=pl.Utf8)
    s = pl.Series(name, np.char.decode(np.ascontiguousarray(arr[name]), "utf-8", errors="replace"))
    return s.set(s == "", None)


# --------------------------------------------------------------------------------------------------
# Per-schema chunk builders
# --------------------------------------------------------------------------------------------------


def _join_symbology(
    frame: pl.DataFrame,
    mapping: pl.DataFrame,
    instrument_roots: pl.DataFrame | None,
    stats: DecodeStats,
) -> pl.DataFrame:
    """Add ``series``, ``symbol`` (root) and ``series_is_spread``; drop and count unmapped records.

    ``instrument_roots`` (columns instrument_id, _root_override) names the root of records the file
    symbology does not cover (stype_in=instrument_id files); their series stays NULL.
    """
    out = frame.join(mapping, on=["instrument_id", "map_date"], how="left", maintain_order="left")
    if instrument_roots is not None:
        out = out.join(instrument_roots, on="instrument_id", how="left", maintain_order="left")
        out = out.with_columns(
            symbol=pl.coalesce("symbol", "_root_override"),
            series_is_spread=pl.col("series_is_spread").fill_null(False),
        ).drop("_root_override")
    n_amb = out.get_column("n_series").gt(1).sum()
    stats.ambiguous_records += int(n_amb or 0)
    missing_mask = out.get_column("symbol").is_null()
    n_missing = int(missing_mask.sum())
    if n_missing:
        stats.unmapped_dropped += n_missing
        room = 50 - len(stats.unmapped_instrument_ids)
        if room > 0:
            ids = out.get_column("instrument_id").filter(missing_mask).unique().sort().to_list()
            seen = set(stats.unmapped_instrument_ids)
            stats.unmapped_instrument_ids.extend([i for i in ids if i not in seen][:room])
        out = out.filter(~missing_mask)
    return out


# OHLCV record types by schema: a file whose records are not of its header's schema is refused.
OHLCV_RTYPES = {"ohlcv-1s": 32, "ohlcv-1m": 33, "ohlcv-1h": 34, "ohlcv-1d": 35}


def _ohlcv_chunk(arr, schema, mapping, roots, stats) -> pl.DataFrame:
    expected = OHLCV_RTYPES.get(schema)
    if expected is not None and len(arr) and "rtype" in arr.dtype.names:
        wrong = np.asarray(arr["rtype"]) != expected
        if wrong.any():
            found = sorted({int(x) for x in np.unique(np.asarray(arr["rtype"])[wrong])})
            raise DbnDecodeError(
                f"{stats.path}: {int(wrong.sum())} record(s) have rtype {found}, not {expected} ({schema} as the "
                f"header says); records of another schema (e.g. ohlcv-1d = 35) in a {schema} file"
            )
    # DBN volume is unsigned; a count above int64 max is a wrapped-around negative number, not a
    # sentinel: keep it negative so the volume >= 0 rule rejects it instead of publishing NULL.
    volume = pl.Series("volume", np.ascontiguousarray(arr["volume"]).view(np.int64))
    frame = pl.DataFrame(
        [
            _ts_series(arr, "ts_event"),
            _date_from_ns(arr, "ts_event").alias("map_date"),
            _int_series(arr, "instrument_id"),
            _price_series(arr, "open"),
            _price_series(arr, "high"),
            _price_series(arr, "low"),
            _price_series(arr, "close"),
            volume,
            _int_series(arr, "publisher_id"),
        ]
    )
    out = _join_symbology(frame, mapping, roots, stats)
    out = out.with_columns(_trade_dates_from_ts(out.get_column("ts_event")))
    cols: list[pl.Expr | str] = ["ts_event", "trade_date"]
    if schema == "ohlcv-1d":
        # Databento's daily bar is a UTC day; keep its own date (the table key) beside trade_date.
        cols.append(pl.col("map_date").alias("date"))
    cols += [
        "symbol",
        "series",
        pl.lit(None, dtype=pl.Utf8).alias("raw_symbol"),
        "instrument_id",
        "open",
        "high",
        "low",
        "close",
        "volume",
        pl.col("series_is_spread").alias("is_spread"),
        "publisher_id",
    ]
    return out.select(cols)


def _statistics_chunk(arr, schema, mapping, roots, stats) -> pl.DataFrame:
    frame = pl.DataFrame(
        [
            _ts_series(arr, "ts_event"),
            _ts_series(arr, "ts_recv"),
            _ts_series(arr, "ts_ref"),
            _date_from_ns(arr, "ts_recv").alias("map_date"),
            _int_series(arr, "instrument_id"),
            _int_series(arr, "stat_type"),
            _price_series(arr, "price"),
            _int_series(arr, "quantity", undef_is_null=True),
            _int_series(arr, "stat_flags"),
            _int_series(arr, "update_action"),
            _int_series(arr, "sequence"),
            _int_series(arr, "publisher_id"),
        ]
    )
    out = _join_symbology(frame, mapping, roots, stats)
    # ts_ref is the reference (session) time the statistic applies to; when UNDEF (e.g. intraday
    # high/low stats) fall back to the trade date of ts_event.
    ref_td = _trade_dates_from_ts(out.get_column("ts_ref"))
    ev_td = _trade_dates_from_ts(out.get_column("ts_event"))
    return out.select(
        pl.coalesce(ref_td, ev_td).alias("trade_date"),
        "symbol",
        "series",
        "instrument_id",
        "stat_type",
        "price",
        "quantity",
        "stat_flags",
        "ts_event",
        "ts_recv",
        "ts_ref",
        "update_action",
        "sequence",
        "publisher_id",
    )


def _definition_chunk(arr, schema, mapping, roots, stats) -> pl.DataFrame:
    names = arr.dtype.names or ()

    def opt_int(name: str) -> pl.Series:
        if name in names:
            return _int_series(arr, name, undef_is_null=True)
        return pl.Series(name, [None] * len(arr), dtype=pl.Int64)

    def opt_price(name: str) -> pl.Series:
        if name in names:
            return _price_series(arr, name)
        return pl.Series(name, [None] * len(arr), dtype=pl.Float64)

    frame = pl.DataFrame(
        [
            _int_series(arr, "instrument_id"),
            _date_from_ns(arr, "ts_recv").alias("map_date"),
            _str_series(arr, "raw_symbol"),
            _str_series(arr, "asset"),
            _str_series(arr, "group"),
            _str_series(arr, "exchange"),
            _str_series(arr, "security_type"),
            _str_series(arr, "cfi"),
            _str_series(arr, "currency"),
            _str_series(arr, "unit_of_measure"),
            _str_series(arr, "instrument_class"),
            _str_series(arr, "security_update_action"),
            _ts_series(arr, "expiration"),
            _ts_series(arr, "activation"),
            _ts_series(arr, "ts_event"),
            _ts_series(arr, "ts_recv"),
            _price_series(arr, "min_price_increment"),
            opt_price("display_factor"),
            opt_price("unit_of_measure_qty"),
            opt_int("leg_count"),
            _int_series(arr, "publisher_id"),
        ]
    )
    # Definitions are symbology themselves: keep every record, series only where mapped.
    out = frame.join(mapping, on=["instrument_id", "map_date"], how="left", maintain_order="left")
    return out.select(
        "instrument_id",
        pl.col("map_date").alias("valid_date"),
        "raw_symbol",
        # CME's asset (product code, e.g. "ES") is the root; fall back to parsing the raw symbol.
        pl.coalesce(pl.col("asset"), root_expr("raw_symbol")).alias("root"),
        "instrument_class",
        "expiration",
        "min_price_increment",
        "series",
        (
            pl.col("instrument_class").is_in(SPREAD_INSTRUMENT_CLASSES).fill_null(False)
            | pl.col("raw_symbol").str.contains(r"[-:]").fill_null(False)
        ).alias("is_spread"),
        "asset",
        "group",
        "exchange",
        "security_type",
        "cfi",
        "currency",
        "unit_of_measure",
        "unit_of_measure_qty",
        "display_factor",
        "activation",
        "leg_count",
        "security_update_action",
        "ts_event",
        "ts_recv",
        "publisher_id",
    )


def _builder(schema: str):
    if schema in OHLCV_SCHEMAS:
        return _ohlcv_chunk
    if schema == "statistics":
        return _statistics_chunk
    return _definition_chunk


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def _roots_frame(instrument_roots) -> pl.DataFrame | None:
    if instrument_roots is None:
        return None
    if isinstance(instrument_roots, pl.DataFrame):
        return instrument_roots.select(
            pl.col("instrument_id").cast(pl.Int64), pl.col("root").cast(pl.Utf8).alias("_root_override")
        ).unique("instrument_id", keep="last")
    items = list(instrument_roots.items())
    return pl.DataFrame(
        {"instrument_id": [int(k) for k, _ in items], "_root_override": [str(v) for _, v in items]},
        schema={"instrument_id": pl.Int64, "_root_override": pl.Utf8},
    )


def iter_decoded_chunks(
    path: str | Path,
    chunk_rows: int = 1_000_000,
    *,
    instrument_roots: Mapping[int, str] | pl.DataFrame | None = None,
    stats: DecodeStats | None = None,
) -> Iterator[pl.DataFrame]:
    """Decode a DBN file chunk by chunk (at most ``chunk_rows`` records each) into polars frames.

    Output columns by schema (see the module docstring for units):

    * ohlcv-1s/1m/1h/1d: ts_event, trade_date, [date (ohlcv-1d only: UTC bar date)], symbol, series,
      raw_symbol (always NULL here: definitions fill it), instrument_id, open, high, low, close,
      volume, is_spread ('-' or ':' in the series), publisher_id.
    * statistics: trade_date (from ts_ref, falling back to ts_event when ts_ref is UNDEF), symbol,
      series, instrument_id, stat_type, price, quantity (NULL when UNDEF), stat_flags, ts_event,
      ts_recv, ts_ref, update_action (1 add, 2 delete), sequence, publisher_id.
    * definition: instrument_id, valid_date (UTC date of ts_recv), raw_symbol, root (asset, else
      from raw_symbol), instrument_class (one char: F future, S future spread, ...), expiration,
      min_price_increment, series (NULL when unmapped), is_spread, asset, group, exchange,
      security_type, cfi, currency, unit_of_measure, unit_of_measure_qty, display_factor,
      activation, leg_count, security_update_action, ts_event, ts_recv, publisher_id.

    ``instrument_roots`` (instrument_id -> root, or a frame with instrument_id, root) supplies roots
    for records the file's symbology cannot name (needed for ``stype_in=instrument_id`` files).
    ``stats`` is filled as chunks are produced. A truncated final record is detected only after
    the complete records before it were yielded: the iterator then raises DbnDecodeError, and the
    caller must treat the whole file as failed. Unmapped records are dropped and logged once at the
    end. A file with zero records yields one empty frame with the schema's columns.
    """
    from databento.common.error import BentoError, BentoWarning
    from databento_dbn import DBNError

    path = Path(path)
    if chunk_rows <= 0:
        raise ValueError(f"chunk_rows must be positive, got {chunk_rows}")
    store, _compressed = _open_store(path)
    meta = store.metadata
    schema = _enum_str(meta.schema)
    if schema not in SUPPORTED_SCHEMAS:
        raise DbnDecodeError(
            f"{path}: unsupported schema {schema!r} (supported: {', '.join(sorted(SUPPORTED_SCHEMAS))})"
        )
    stats = stats if stats is not None else DecodeStats()
    stats.path, stats.schema = path, schema
    mapping, bad_series = _mapping_frame(meta.mappings)
    if bad_series:
        logger.warning("%s: cannot parse a root from series %s; their records are dropped", path, bad_series)
        stats.unparseable_series = bad_series
    roots = _roots_frame(instrument_roots)
    stype_in = _enum_str(meta.stype_in)
    if schema != "definition" and mapping.height == 0 and roots is None:
        raise DbnDecodeError(
            f"{path}: no symbology in the file (stype_in={stype_in}, no mappings), so records cannot "
            "be given a root; pass instrument_roots (e.g. from definitions)"
        )
    build = _builder(schema)
    bound = record_bound(meta)
    # A chunk is decompressed before it can be counted: keep chunks small enough that one chunk
    # beyond the bound stays cheap (1M OHLCV records are ~56 MB).
    if bound is not None:
        chunk_rows = min(chunk_rows, max(bound // 4, 10_000))
    produced = False
    try:
        records = iter(store.to_ndarray(count=chunk_rows))
        while True:
            # databento signals an incomplete final record with a BentoWarning: that is a truncated
            # file, so fail instead of silently loading a short one. The filter is scoped to the
            # read itself, not held across yields (it is process-global state).
            with warnings.catch_warnings():
                warnings.simplefilter("error", BentoWarning)
                arr = next(records, None)
            if arr is None:
                break
            if len(arr) == 0:
                continue
            stats.records_read += len(arr)
            if bound is not None and stats.records_read > bound:
                raise DbnDecodeError(
                    f"{path}: more than {bound:,} records, the most its header allows ({schema}, "
                    f"{meta.start}..{meta.end} ns, {len(meta.symbols or [])} symbol(s)); refused as a "
                    "decompression bomb or a corrupt header"
                )
            df = build(arr, schema, mapping, roots, stats)
            stats.rows_out += df.height
            produced = True
            yield df
        if not produced:
            empty = np.zeros(0, dtype=store.to_ndarray().dtype)
            yield build(empty, schema, mapping, roots, stats)
    except BentoWarning as exc:
        raise DbnDecodeError(f"{path}: truncated DBN file ({exc})") from exc
    except DbnDecodeError:
        raise
    except (BentoError, DBNError, OSError) as exc:
        raise DbnDecodeError(f"{path}: cannot decode records ({type(exc).__name__}: {exc})") from exc
    if stats.unmapped_dropped:
        logger.warning(
            "%s: dropped %d of %d records with no symbology mapping on their date (instrument ids %s)",
            path,
            stats.unmapped_dropped,
            stats.records_read,
            stats.unmapped_instrument_ids,
        )


def decode_dbn_file(
    path: str | Path,
    *,
    chunk_rows: int = 1_000_000,
    instrument_roots: Mapping[int, str] | pl.DataFrame | None = None,
    stats: DecodeStats | None = None,
) -> pl.DataFrame:
    """Decode a whole DBN file into one polars frame (columns as in :func:`iter_decoded_chunks`).

    Records keep file order. Raises DbnDecodeError naming the file on empty, truncated, non-DBN or
    unsupported-schema files. Pass a :class:`DecodeStats` to learn how many records were dropped as
    unmapped.
    """
    chunks = list(iter_decoded_chunks(path, chunk_rows, instrument_roots=instrument_roots, stats=stats))
    return chunks[0] if len(chunks) == 1 else pl.concat(chunks, how="vertical", rechunk=False)
