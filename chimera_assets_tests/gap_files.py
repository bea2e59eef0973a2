"""Craft real-data gaps: copies of a real monthly DBN file of the batch with some records dropped.

The header is kept byte for byte (its period, symbols and mappings still claim the whole month, as a
vendor file with an outage does); only records are removed, so the copy is what Databento would have
sent had those bars not existed. Records are chosen by root and by trade date / UTC time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import zstandard
from databento import DBNStore

from chimera_assets.trade_calendar import trade_date_expr


def _raw(path: Path) -> bytes:
    return zstandard.ZstdDecompressor().stream_reader(path.open("rb")).read()


def records_frame(path: Path) -> pl.DataFrame:
    """One row per record of ``path`` in file order: ts_event (UTC), trade_date, root."""
    store = DBNStore.from_file(path)
    arr = store.to_ndarray()
    roots = {int(iv["symbol"]): sym.split(".")[0] for sym, ivs in store.metadata.mappings.items() for iv in ivs}
    ids = arr["instrument_id"].astype(np.int64)
    frame = pl.DataFrame({"ts": arr["ts_event"].astype(np.int64), "instrument_id": ids})
    return frame.with_columns(
        pl.col("ts").cast(pl.Datetime("ns", "UTC")).alias("ts_event"),
        pl.col("instrument_id").replace_strict(roots, default=None, return_dtype=pl.Utf8).alias("root"),
    ).with_columns(trade_date_expr("ts_event"))


def drop_records(src: Path, dst: Path, drop: Callable[[pl.DataFrame], pl.Expr]) -> int:
    """Write ``dst`` (an uncompressed ``.dbn``) = ``src`` without the records where ``drop`` (an
    expression over ``records_frame`` columns) is true. Returns how many records were dropped."""
    raw = _raw(src)
    head = 8 + int.from_bytes(raw[4:8], "little")
    rec = raw[head] * 4
    frame = records_frame(src)
    mask = frame.select(drop(frame).fill_null(False)).to_series().to_numpy()
    body = np.frombuffer(raw, dtype=np.uint8, offset=head).reshape(-1, rec)
    assert body.shape[0] == frame.height, "record count differs from the decoded frame"
    dst.write_bytes(raw[:head] + body[~mask].tobytes())
    return int(mask.sum())


def on_day(roots: list[str], day: date) -> Callable[[pl.DataFrame], pl.Expr]:
    """Drop every bar of ``roots`` whose trade date is ``day``."""
    return lambda f: pl.col("root").is_in(roots) & (pl.col("trade_date") == day)


def between(roots: list[str], start: datetime, end: datetime) -> Callable[[pl.DataFrame], pl.Expr]:
    """Drop every bar of ``roots`` that opens in [start, end) (UTC)."""
    s, e = start.astimezone(UTC), end.astimezone(UTC)
    return lambda f: pl.col("root").is_in(roots) & pl.col("ts_event").is_between(s, e, closed="left")


def any_of(*rules: Callable[[pl.DataFrame], pl.Expr]) -> Callable[[pl.DataFrame], pl.Expr]:
    def combined(f: pl.DataFrame) -> pl.Expr:
        out = pl.lit(False)
        for r in rules:
            out = out | r(f)
        return out
    return combined
