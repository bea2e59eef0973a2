"""Shared builders for small hand-made bar frames in the input contract of the feature functions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

BAR_SCHEMA = {
    "ts_event": pl.Datetime("us", "UTC"),
    "trade_date": pl.Date,
    "symbol": pl.Utf8,
    "series": pl.Utf8,
    "raw_symbol": pl.Utf8,
    "instrument_id": pl.Int64,
    "open": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "volume": pl.Int64,
    "is_spread": pl.Boolean,
    "publisher_id": pl.Int64,
    "load_id": pl.Utf8,
}

T0 = datetime(2024, 1, 2, tzinfo=UTC)


def bars_frame(records: list[dict]) -> pl.DataFrame:
    """Bars from dicts. Defaults: symbol ZL, instrument 1, open=high=low=close (give ``close``), volume
    100, not a spread; ``ts`` may be a datetime or an hour offset from 2024-01-02 00:00 UTC;
    ``trade_date`` must be given (the tests decide the session, not a calendar)."""
    rows = []
    for r in records:
        ts = r.get("ts", 0)
        if not isinstance(ts, datetime):
            ts = T0 + timedelta(hours=ts)
        c = float(r["close"])
        sym = r.get("symbol", "ZL")
        rows.append(
            {
                "ts_event": ts,
                "trade_date": r["trade_date"],
                "symbol": sym,
                "series": f"{sym}.v.0",
                "raw_symbol": None,
                "instrument_id": r.get("instrument_id", 1),
                "open": float(r.get("open", c)),
                "high": float(r.get("high", c)),
                "low": float(r.get("low", c)),
                "close": c,
                "volume": int(r.get("volume", 100)),
                "is_spread": r.get("is_spread", False),
                "publisher_id": 1,
                "load_id": "test",
            }
        )
    return pl.DataFrame(rows, schema=BAR_SCHEMA)


def weekdays(start: date, n: int) -> list[date]:
    """The first ``n`` Mon-Fri dates from ``start`` on."""
    out, d = [], start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


@pytest.fixture
def make_bars() -> Callable[[list[dict]], pl.DataFrame]:
    return bars_frame
