"""numpy record fields -> polars columns (vectorised), and CME trade dates of timestamps.

Units: prices are fixed-point int64 (1e-9) divided by 1e9 into Float64; timestamps are uint64 ns
floored to ``Datetime("us", "UTC")``; integers become Int64. Each layout's UNDEF sentinel becomes NULL.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import polars as pl

from chimera_assets.trade_calendar import trade_date_expr

FIXED_PRICE_SCALE = 1_000_000_000
UNDEF_PRICE = np.iinfo(np.int64).max
UNDEF_TIMESTAMP = np.iinfo(np.uint64).max
_NS_PER_DAY = 86_400 * 1_000_000_000


def _null_where(s: pl.Series, undef: np.ndarray | None) -> pl.Series:
    """``s`` with NULL where ``undef`` is True (``s`` itself when nothing is undefined)."""
    if undef is not None and undef.any():
        return s.scatter(np.flatnonzero(undef), None)
    return s


def _ts_series(arr: np.ndarray, name: str) -> pl.Series:
    """uint64 ns since epoch -> Datetime("us", "UTC"); UNDEF (uint64 max) -> NULL."""
    raw = np.ascontiguousarray(arr[name])
    us = (raw // 1000).astype(np.int64)
    s = pl.Series(name, us).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    return _null_where(s, raw == UNDEF_TIMESTAMP)


def _date_from_ns(arr: np.ndarray, name: str) -> pl.Series:
    """UTC calendar date of a uint64 ns timestamp column (UNDEF -> NULL)."""
    raw = np.ascontiguousarray(arr[name])
    days = (raw // _NS_PER_DAY).astype(np.int32)
    return _null_where(pl.Series(name, days).cast(pl.Date), raw == UNDEF_TIMESTAMP)


def _price_series(arr: np.ndarray, name: str) -> pl.Series:
    """int64 fixed-point 1e-9 -> Float64 by exact division; UNDEF_PRICE -> NULL."""
    raw = np.ascontiguousarray(arr[name]).astype(np.int64, copy=False)
    vals = raw.astype(np.float64) / FIXED_PRICE_SCALE
    return _null_where(pl.Series(name, vals), raw == UNDEF_PRICE)


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
    return _null_where(pl.Series(name, raw.astype(np.int64, copy=False)), undef)


def _str_series(arr: np.ndarray, name: str) -> pl.Series:
    """Fixed-width C string field (bytes, NUL-padded) -> Utf8; empty -> NULL; missing field -> NULL."""
    if name not in (arr.dtype.names or ()):
        return pl.Series(name, [None] * len(arr), dtype=pl.Utf8)
    s = pl.Series(name, np.char.decode(np.ascontiguousarray(arr[name]), "utf-8", errors="replace"))
    return s.set(s == "", None)


def record_frame(
    arr: np.ndarray,
    *,
    map_date_from: str,
    timestamps: Iterable[str] = (),
    prices: Iterable[str] = (),
    ints: Iterable[str] = (),
    undef_ints: Iterable[str] = (),
    strings: Iterable[str] = (),
    optional: Iterable[str] = (),
    extra: Iterable[pl.Series] = (),
) -> pl.DataFrame:
    """A frame of the named record fields, each converted by its kind, plus ``map_date``.

    ``timestamps``: Datetime("us", "UTC"); ``prices``: Float64; ``ints``: Int64; ``undef_ints``: Int64
    whose layout maximum (UNDEF) is NULL; ``strings``: Utf8, empty -> NULL. ``map_date`` is the UTC
    date of the timestamp field ``map_date_from`` (the symbology join key). A field named in
    ``optional`` that this record layout lacks (an older DBN version) is a NULL column of its kind;
    a missing string field is always NULL; any other missing field raises. ``extra``: columns already
    converted. Column order is not part of the contract (callers select by name).
    """
    present = set(arr.dtype.names or ())
    optional = set(optional)

    def read(names: Iterable[str], convert, dtype: pl.DataType) -> list[pl.Series]:
        return [
            convert(arr, n) if n in present or n not in optional else pl.Series(n, [None] * len(arr), dtype=dtype)
            for n in names
        ]

    columns = [
        *read(timestamps, _ts_series, pl.Datetime("us", "UTC")),
        _date_from_ns(arr, map_date_from).alias("map_date"),
        *read(prices, _price_series, pl.Float64),
        *read(ints, _int_series, pl.Int64),
        *read(undef_ints, lambda a, n: _int_series(a, n, undef_is_null=True), pl.Int64),
        *read(strings, _str_series, pl.Utf8),
        *extra,
    ]
    return pl.DataFrame(columns)


# Above this many distinct UTC hours the lookup table is not worth it (garbage timestamps).
_MAX_LUT_HOURS = 5_000_000
_US_PER_HOUR = 3_600_000_000


def trade_dates_from_ts(ts: pl.Series) -> pl.Series:
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
