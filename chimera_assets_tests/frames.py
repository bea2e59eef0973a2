"""Small frame builders for tests (hand-made rows conforming to a table spec)."""

from __future__ import annotations

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
