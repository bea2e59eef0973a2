"""Hand-checked tests of build_session_bars (SPEC 6.3)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chimera_assets.features.session_bars import SESSION_BAR_SCHEMA, build_session_bars
from chimera_assets_tests.features.conftest import weekdays

D1, D2, D3 = date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)


def _one(frame: pl.DataFrame, day: date, symbol: str = "ZL") -> dict:
    rows = frame.filter(pl.col("trade_date") == day, pl.col("symbol") == symbol).to_dicts()
    assert len(rows) == 1
    return rows[0]


def test_roll_day_keeps_the_contract_of_the_last_bar(make_bars):
    bars = make_bars(
        [
            # D1: old contract 1 only.
            {
                "trade_date": D1,
                "ts": 0,
                "instrument_id": 1,
                "close": 100,
                "high": 101,
                "low": 99,
                "volume": 10,
            },
            {
                "trade_date": D1,
                "ts": 1,
                "instrument_id": 1,
                "close": 102,
                "high": 103,
                "low": 100,
                "volume": 20,
            },
            # D2 = roll day: two evening bars still on contract 1, then contract 2 from 00:00 UTC.
            {
                "trade_date": D2,
                "ts": 22,
                "instrument_id": 1,
                "open": 101,
                "close": 101,
                "high": 150,
                "low": 50,
            },
            {"trade_date": D2, "ts": 23, "instrument_id": 1, "close": 101, "volume": 999},
            {
                "trade_date": D2,
                "ts": 24,
                "instrument_id": 2,
                "open": 110,
                "close": 111,
                "high": 112,
                "low": 109,
            },
            {
                "trade_date": D2,
                "ts": 25,
                "instrument_id": 2,
                "open": 111,
                "close": 113,
                "high": 114,
                "low": 108,
            },
        ]
    )
    out = build_session_bars(None, bars)
    assert out.columns == list(SESSION_BAR_SCHEMA)
    assert dict(out.schema) == SESSION_BAR_SCHEMA
    d1 = _one(out, D1)
    # D1: open 100 (first close, open defaults to close), high max(101,103)=103, low min(99,100)=99,
    # close 102, volume 10+20=30, 2 bars, first session -> roll False.
    assert (d1["open"], d1["high"], d1["low"], d1["close"], d1["volume"], d1["bar_count"]) == (
        100.0,
        103.0,
        99.0,
        102.0,
        30,
        2,
    )
    assert d1["roll_flag"] is False and d1["source_freq"] == "1h"
    d2 = _one(out, D2)
    # Only contract 2: open 110, high max(112,114)=114, low min(109,108)=108, close 113, volume
    # 100+100=200 (the 999-lot and 150/50 extremes of contract 1 are ignored), 2 bars.
    assert d2["instrument_id"] == 2
    assert (d2["open"], d2["high"], d2["low"], d2["close"], d2["volume"], d2["bar_count"]) == (
        110.0,
        114.0,
        108.0,
        113.0,
        200,
        2,
    )
    assert d2["roll_flag"] is True


def test_finest_frequency_wins_and_1d_is_last_resort(make_bars):
    one_h = make_bars(
        [
            {"trade_date": D1, "ts": 0, "close": 50, "volume": 500},
            {"trade_date": D2, "ts": 24, "close": 60, "volume": 600},
        ]
    )
    one_m = make_bars(
        [
            {"trade_date": D1, "ts": datetime(2024, 1, 2, 0, 0, tzinfo=UTC), "close": 51, "volume": 3},
            {"trade_date": D1, "ts": datetime(2024, 1, 2, 0, 1, tzinfo=UTC), "close": 52, "volume": 4},
        ]
    )
    daily = pl.DataFrame(
        {
            "date": [D1, D3, D3, date(2024, 1, 7)],  # 2024-01-07 is a Sunday: dropped
            "symbol": ["ZL"] * 4,
            "instrument_id": [1, 1, 9, 1],
            "open": [1.0, 70.0, 5.0, 1.0],
            "high": [1.0, 72.0, 5.0, 1.0],
            "low": [1.0, 69.0, 5.0, 1.0],
            "close": [1.0, 71.0, 5.0, 1.0],
            "settle": [None, 71.5, None, None],
            "volume": [1, 700, 2, 1],
            "open_interest": [None, 12345, None, None],
        }
    )
    out = build_session_bars(one_m, one_h, daily)
    assert out["trade_date"].to_list() == [D1, D2, D3]
    assert out["source_freq"].to_list() == ["1m", "1h", "1d"]
    d1 = _one(out, D1)
    # 1m bars only: open 51, close 52, volume 3+4=7, 2 bars (the 1h bar and the 1d row are ignored).
    assert (d1["open"], d1["close"], d1["volume"], d1["bar_count"]) == (51.0, 52.0, 7, 2)
    d3 = _one(out, D3)
    # 1d fallback: the higher-volume contract (700 lots, instrument 1), bar_count 1, settle/OI from
    # the 1d frame.
    assert (d3["instrument_id"], d3["close"], d3["bar_count"], d3["settle"], d3["open_interest"]) == (
        1,
        71.0,
        1,
        71.5,
        12345,
    )


def test_spread_rows_are_ignored(make_bars):
    bars = make_bars(
        [
            {"trade_date": D1, "ts": 0, "close": 10, "volume": 5},
            {
                "trade_date": D1,
                "ts": 1,
                "close": -0.5,
                "volume": 1000,
                "instrument_id": 77,
                "is_spread": True,
            },
            {"trade_date": D2, "ts": 24, "close": 0.25, "instrument_id": 77, "is_spread": True},
        ]
    )
    out = build_session_bars(None, bars)
    # The spread is the last bar of D1 but must neither pick the contract nor add volume; D2 has only a
    # spread, so no session.
    assert out.height == 1
    assert _one(out, D1)["instrument_id"] == 1 and _one(out, D1)["volume"] == 5


def _sessions(make_bars, volumes: list[int], instruments: list[int] | None = None, days=None) -> pl.DataFrame:
    days = days or weekdays(date(2024, 1, 1), len(volumes))
    instruments = instruments or [1] * len(volumes)
    return make_bars(
        [
            # ts: hours from 2024-01-01 00:00 UTC, one bar per day at the same hour of its own date.
            {"trade_date": d, "ts": 24 * (d - date(2024, 1, 1)).days, "close": 100, "volume": v, "instrument_id": inst}
            for d, v, inst in zip(days, volumes, instruments, strict=True)
        ]
    )


def test_thin_flag_needs_five_prior_sessions_and_uses_twenty_percent_of_median(make_bars):
    # Sessions 1-4 at 100 lots; session 5 has 1 lot but only 4 prior sessions -> not thin (NULL-safe).
    # Session 6: prior [100,100,100,100,1], median 100, 19 < 0.2*100=20 -> thin.
    # Session 7: prior [100,100,100,100,1,19], median (100+100)/2=100, 20 < 20 is False -> not thin.
    out = build_session_bars(None, _sessions(make_bars, [100, 100, 100, 100, 1, 19, 20]))
    assert out["thin_flag"].to_list() == [False, False, False, False, False, True, False]


def test_thin_flag_window_is_the_twenty_previous_sessions(make_bars):
    # 15 sessions of 10 lots, then 12 of 1000, then 150. The previous 20 sessions are 8 x 10 and
    # 12 x 1000: median = mean of the 10th and 11th sorted values = 1000 -> 150 < 200 -> thin. (All 27
    # prior sessions would give a median of 10 and no flag.)
    out = build_session_bars(None, _sessions(make_bars, [10] * 15 + [1000] * 12 + [150]))
    assert out["thin_flag"].to_list()[-1] is True
    assert not any(out["thin_flag"].to_list()[:-1])


def test_history_feeds_flags_but_is_not_returned(make_bars):
    days = weekdays(date(2024, 1, 1), 7)
    full = build_session_bars(None, _sessions(make_bars, [100] * 6 + [10], [1] * 6 + [2], days))
    history = full.filter(pl.col("trade_date") < days[6])
    new_bars = _sessions(make_bars, [10], [2], [days[6]])
    alone = build_session_bars(None, new_bars)
    assert alone["roll_flag"].to_list() == [False] and alone["thin_flag"].to_list() == [False]
    with_hist = build_session_bars(None, new_bars, history=history)
    # 10 < 0.2 * median(6 x 100) = 20 -> thin; contract 2 after contract 1 -> roll.
    assert with_hist.height == 1
    assert with_hist["roll_flag"].to_list() == [True] and with_hist["thin_flag"].to_list() == [True]
    assert_frame_equal(with_hist, full.filter(pl.col("trade_date") == days[6]))


def test_settlements_frame_left_joined_on_contract(make_bars):
    bars = _sessions(make_bars, [100, 100], [1, 2])
    days = bars["trade_date"].to_list()
    settlements = pl.DataFrame(
        {
            "trade_date": [days[0], days[1]],
            "symbol": ["ZL", "ZL"],
            "instrument_id": [1, 1],  # day 2's row is for the old contract: must not attach
            "settle": [49.5, 48.0],
            "open_interest": [1000, 900],
        }
    )
    out = build_session_bars(None, bars, settlements=settlements)
    assert out["settle"].to_list() == [49.5, None]
    assert out["open_interest"].to_list() == [1000, None]


@pytest.mark.parametrize("arg", [None, "empty"])
def test_no_input_gives_empty_frame_with_schema(make_bars, arg):
    frame = None if arg is None else make_bars([]).clear()
    out = build_session_bars(frame, frame)
    assert out.height == 0 and dict(out.schema) == SESSION_BAR_SCHEMA
