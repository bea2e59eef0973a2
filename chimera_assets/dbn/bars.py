"""One chunk of OHLCV records (ohlcv-1s/1m/1h/1d) -> a bar frame with root, series and trade date."""

from __future__ import annotations

import numpy as np
import polars as pl

from chimera_assets.dbn.columns import record_frame, trade_dates_from_ts
from chimera_assets.dbn.diagnostics import DbnDecodeError, DecodeStats
from chimera_assets.dbn.symbology import join_symbology

OHLCV_SCHEMAS = frozenset({"ohlcv-1s", "ohlcv-1m", "ohlcv-1h", "ohlcv-1d"})
# OHLCV record types by schema: a file whose records are not of its header's schema is refused.
OHLCV_RTYPES = {"ohlcv-1s": 32, "ohlcv-1m": 33, "ohlcv-1h": 34, "ohlcv-1d": 35}


def _refuse_foreign_rtypes(arr: np.ndarray, schema: str, stats: DecodeStats) -> None:
    expected = OHLCV_RTYPES.get(schema)
    if expected is not None and len(arr) and "rtype" in arr.dtype.names:
        wrong = np.asarray(arr["rtype"]) != expected
        if wrong.any():
            found = sorted({int(x) for x in np.unique(np.asarray(arr["rtype"])[wrong])})
            raise DbnDecodeError(
                f"{stats.path}: {int(wrong.sum())} record(s) have rtype {found}, not {expected} ({schema} as the "
                f"header says); records of another schema (e.g. ohlcv-1d = 35) in a {schema} file"
            )


def ohlcv_chunk(
    arr: np.ndarray, schema: str, mapping: pl.DataFrame, roots: pl.DataFrame | None, stats: DecodeStats
) -> pl.DataFrame:
    """Bars of one record chunk: ts_event, trade_date, [date (ohlcv-1d: the UTC bar date)], symbol,
    series, raw_symbol (NULL), instrument_id, open, high, low, close, volume, is_spread, publisher_id.

    Raises DbnDecodeError when a record's rtype is not the header schema's. Unmapped records are
    dropped and counted in ``stats`` (see :func:`join_symbology`).
    """
    _refuse_foreign_rtypes(arr, schema, stats)
    # DBN volume is unsigned; a count above int64 max is a wrapped-around negative number, not a
    # sentinel: keep it negative so the volume >= 0 rule rejects it instead of publishing NULL.
    volume = pl.Series("volume", np.ascontiguousarray(arr["volume"]).view(np.int64))
    frame = record_frame(
        arr,
        map_date_from="ts_event",
        timestamps=("ts_event",),
        prices=("open", "high", "low", "close"),
        ints=("instrument_id", "publisher_id"),
        extra=(volume,),
    )
    out = join_symbology(frame, mapping, roots, stats)
    out = out.with_columns(trade_dates_from_ts(out.get_column("ts_event")))
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
