"""Small frame helpers for tests: hand-made rows conforming to a table spec, an order-independent frame hash."""

from __future__ import annotations

import hashlib
from datetime import date

import polars as pl

from chimera_assets.schemas import TableSpec


def rows_for(spec: TableSpec, rows: list[dict]) -> pl.DataFrame:
    """A frame with every column of ``spec``; columns a row does not give are NULL."""
    data = {c.name: [r.get(c.name) for r in rows] for c in spec.columns}
    return pl.DataFrame(data, schema=spec.polars_schema())


def session_rows(keys: list[tuple[date, str]], close: float = 1.0) -> list[dict]:
    return [
        {"trade_date": d, "symbol": s, "instrument_id": 1, "open": close, "high": close + 1, "low": close - 1,
         "close": close, "volume": 10, "bar_count": 1, "source_freq": "1h", "roll_flag": False,
         "thin_flag": False}
        for d, s in keys
    ]


def frame_hash(frame: pl.DataFrame, exclude: tuple[str, ...] = ()) -> str:
    """Order-independent content hash of a frame (used to prove re-runs change nothing).

    Rows are hashed one by one (polars ``hash_rows``, stable within one process) and the sorted row
    hashes digested, so neither row order nor memory layout (chunks) changes the result.
    """
    cols = [c for c in frame.columns if c not in exclude]
    if not cols or frame.height == 0:
        return hashlib.sha256(repr(cols).encode()).hexdigest()
    rows = frame.select(cols).rechunk().hash_rows(seed=0).sort()
    return hashlib.sha256(repr(cols).encode() + rows.to_numpy().tobytes()).hexdigest()
