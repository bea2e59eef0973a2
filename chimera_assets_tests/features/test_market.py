"""Hand-checked tests of compute_market_features (SPEC 6.4 market)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chimera_assets.features.market import MARKET_SCHEMA, compute_market_features
from chimera_assets.features.session_bars import build_session_bars
from chimera_assets_tests.features.conftest import weekdays

D1, D2 = date(2024, 1, 2), date(2024, 1, 3)


def _market(bars: pl.DataFrame, vwap_bars: pl.DataFrame | None = None, **kw) -> pl.DataFrame:
    sb = build_session_bars(vwap_bars, bars)
    return compute_market_features(bars, sb, vwap_bars, **kw)


def _sessions_with_sum_r2(make_bars, sums: list[float | None], start=date(2023, 1, 2)) -> pl.DataFrame:
    """Two bars per session, closes 100 and 100*exp(sqrt(s)) -> sum_r2 = s; None -> one bar (NULL)."""
    records = []
    for i, (d, s) in enumerate(zip(weekdays(start, len(sums)), sums, strict=True)):
        records.append({"trade_date": d, "ts": 24 * i, "close": 100.0})
        if s is not None:
            records.append({"trade_date": d, "ts": 24 * i + 1, "close": 100.0 * math.exp(math.sqrt(s))})
    return make_bars(records)


def test_vwap_and_realized_vol_by_hand(make_bars):
    bars = make_bars(
        [
            # typical prices (H+L+C)/3: (11+9+10)/3 = 10, (12+10+11)/3 = 11, (13+11+12)/3 = 12
            {"trade_date": D1, "ts": 0, "high": 11, "low": 9, "close": 10, "volume": 100},
            {"trade_date": D1, "ts": 1, "high": 12, "low": 10, "close": 11, "volume": 200},
            {"trade_date": D1, "ts": 2, "high": 13, "low": 11, "close": 12, "volume": 0},
            # roll-day-like noise on another contract before the kept one: excluded everywhere
            {"trade_date": D2, "ts": 22, "instrument_id": 7, "close": 500, "volume": 10_000},
            {"trade_date": D2, "ts": 24, "close": 100, "volume": 0, "instrument_id": 2},
            {"trade_date": D2, "ts": 25, "close": 110, "volume": 0, "instrument_id": 2},
            {"trade_date": D2, "ts": 26, "close": 99, "volume": 0, "instrument_id": 2},
        ]
    )
    out = _market(bars)
    assert dict(out.schema) == MARKET_SCHEMA
    r1, r2 = out.row(0, named=True), out.row(1, named=True)
    # vwap = (10*100 + 11*200 + 12*0) / 300 = 3200/300 = 10.666667
    assert r1["vwap"] == pytest.approx(3200 / 300, rel=1e-12)
    # D1 returns: ln(11/10) = 0.0953102, ln(12/11) = 0.0870114; sum r^2 = 0.00908403 + 0.00757098
    # = 0.01665501; realized_vol_1h = sqrt(252 * 0.01665501) = sqrt(4.1970625) = 2.0486734
    assert r1["sum_r2"] == pytest.approx(0.01665501, rel=1e-6)
    assert r1["realized_vol_1h"] == pytest.approx(2.0486734, rel=1e-6)
    # D2 (contract 2 only): volume sums to 0 -> vwap NULL; ln(1.1) = 0.0953102, ln(0.9) = -0.1053605;
    # sum r^2 = 0.00908403 + 0.01110084 = 0.02018487; sqrt(252 * 0.02018487) = 2.2553464.
    # The 500 close of contract 7 would add a huge return if it leaked in.
    assert r2["vwap"] is None
    assert r2["realized_vol_1h"] == pytest.approx(2.2553464, rel=1e-6)


def test_realized_vol_null_under_two_bars_and_vwap_prefers_1m(make_bars):
    one_h = make_bars([{"trade_date": D1, "ts": 0, "high": 12, "low": 8, "close": 10, "volume": 5}])
    one_m = make_bars(
        [
            # typical 9 and 12 -> vwap = (9*1 + 12*2)/3 = 11
            {
                "trade_date": D1,
                "ts": datetime(2024, 1, 2, 0, 0, tzinfo=UTC),
                "high": 9,
                "low": 9,
                "close": 9,
                "volume": 1,
            },
            {
                "trade_date": D1,
                "ts": datetime(2024, 1, 2, 0, 1, tzinfo=UTC),
                "high": 12,
                "low": 12,
                "close": 12,
                "volume": 2,
            },
        ]
    )
    with_1m = _market(one_h, one_m).row(0, named=True)
    assert with_1m["vwap"] == pytest.approx(11.0)
    # 1 hourly bar -> no return -> NULL (the two 1m bars are not used for realized vol).
    assert with_1m["realized_vol_1h"] is None and with_1m["sum_r2"] is None
    # Without 1m bars the single 1h bar gives typical (12+8+10)/3 = 10.
    assert _market(one_h).row(0, named=True)["vwap"] == pytest.approx(10.0)


def test_rv20_needs_twenty_values_and_skips_null_sessions(make_bars):
    # sum_r2 of session k (1-based) = k * 1e-4; a one-bar session (NULL) sits after the 10th.
    sums = [k * 1e-4 for k in range(1, 11)] + [None] + [k * 1e-4 for k in range(11, 22)]
    out = _market(_sessions_with_sum_r2(make_bars, sums))
    rv = out["rv20"].to_list()
    # Rows 0..19 hold 19 non-NULL values at most (one NULL session) -> NULL.
    assert all(v is None for v in rv[:20])
    # Row 20 = 20th value: mean(1..20)*1e-4 = 10.5e-4 -> sqrt(252 * 10.5e-4) = sqrt(0.2646) = 0.5143929
    assert rv[20] == pytest.approx(0.5143929, rel=1e-6)
    # Row 21: values 2..21, mean 11.5e-4 -> sqrt(0.2898) = 0.5383307
    assert rv[21] == pytest.approx(0.5383307, rel=1e-6)
    assert out["sum_r2"][10] is None


def test_rv20_carried_on_a_null_session(make_bars):
    sums = [1e-4] * 20 + [None]
    rv = _market(_sessions_with_sum_r2(make_bars, sums))["rv20"].to_list()
    # sqrt(252 * 1e-4) = 0.1587451 on the 20th session and carried to the one-bar session after it.
    assert rv[19] == pytest.approx(0.1587451, rel=1e-6)
    assert rv[20] == rv[19]


def _history(rv20_values: list[float], sum_r2: float, last_day: date) -> pl.DataFrame:
    days = [d for d in weekdays(date(2023, 1, 2), 400) if d < last_day][-len(rv20_values) :]
    return pl.DataFrame(
        {
            "trade_date": days,
            "symbol": ["ZL"] * len(days),
            "sum_r2": [sum_r2] * len(days),
            "rv20": rv20_values,
        }
    )


@pytest.mark.parametrize("n_hist, expect_value", [(98, False), (99, True)])
def test_vol_percentile_and_k_vol_need_100_values(make_bars, n_hist, expect_value):
    # History rv20 = 0.10, 0.11, ... (n_hist values); every sum_r2 = 0.505^2/252 so today's rv20 = 0.505.
    s = 0.505**2 / 252
    today = date(2024, 6, 3)
    bars = make_bars(
        [
            {"trade_date": today, "ts": 0, "close": 100.0},
            {"trade_date": today, "ts": 1, "close": 100.0 * math.exp(math.sqrt(s))},
        ]
    )
    hist = _history([round(0.10 + 0.01 * k, 10) for k in range(n_hist)], s, today)
    out = compute_market_features(bars, build_session_bars(None, bars), history=hist)
    assert out.height == 1
    row = out.row(0, named=True)
    assert row["rv20"] == pytest.approx(0.505, rel=1e-9)
    if not expect_value:
        # 98 history + today = 99 values -> NULL
        assert row["vol_percentile"] is None and row["k_vol"] is None
        return
    # 100 values: 0.10..0.50 (41 values) and today's 0.505 are <= 0.505 -> 42/100 = 0.42.
    assert row["vol_percentile"] == pytest.approx(0.42)
    # Sorted: 0.10..0.50 (positions 1-41), 0.505 (42), 0.51 (43), ...: 50th = 0.58, 51st = 0.59,
    # median 0.585 -> k_vol = 0.505 / 0.585 = 0.8632479
    assert row["k_vol"] == pytest.approx(0.8632479, rel=1e-6)


@pytest.mark.parametrize("today_rv, pct, k", [(0.5, 1.0, 2.0), (0.02, 0.01, 0.5)])
def test_k_vol_is_clamped(make_bars, today_rv, pct, k):
    # 99 history values of 0.1 and today: median 0.1; 0.5/0.1 = 5 -> 2.0; 0.02/0.1 = 0.2 -> 0.5.
    # percentile: 100/100 when today is the largest, 1/100 when it is the smallest.
    s = today_rv**2 / 252
    today = date(2024, 6, 3)
    bars = make_bars(
        [
            {"trade_date": today, "ts": 0, "close": 100.0},
            {"trade_date": today, "ts": 1, "close": 100.0 * math.exp(math.sqrt(s))},
        ]
    )
    out = compute_market_features(
        bars, build_session_bars(None, bars), history=_history([0.1] * 99, s, today)
    )
    row = out.row(0, named=True)
    assert row["vol_percentile"] == pytest.approx(pct) and row["k_vol"] == pytest.approx(k)


def test_regime_minimum_without_history(make_bars):
    # rv20 exists from row 19 on, so row i holds i-18 values: row 117 -> 99 (NULL), row 118 -> 100.
    sums = [(1 + (k % 7)) * 1e-4 for k in range(130)]
    out = _market(_sessions_with_sum_r2(make_bars, sums))
    pct = out["vol_percentile"].to_list()
    assert pct[117] is None and out["k_vol"][117] is None
    assert pct[118] is not None and out["k_vol"][118] is not None


def test_history_and_output_dates_reproduce_the_full_run(make_bars):
    sums = [(1 + (k * 37 % 11)) * 1e-4 for k in range(300)]
    bars = _sessions_with_sum_r2(make_bars, sums)
    full = _market(bars)
    days = full["trade_date"].to_list()
    first, last = days[280], days[299]

    sliced = _market(bars, output_dates=(first, last))
    assert_frame_equal(sliced, full.filter(pl.col("trade_date") >= first))

    # Incremental: only the last 20 sessions' bars, earlier output rows as history.
    new_bars = bars.filter(pl.col("trade_date") >= first)
    inc = compute_market_features(
        new_bars,
        build_session_bars(None, new_bars),
        history=full.filter(pl.col("trade_date") < first),
    )
    assert_frame_equal(inc, full.filter(pl.col("trade_date") >= first), check_exact=False, rel_tol=1e-12)


def test_point_in_time_on_synthetic_sessions(make_bars):
    sums = [(1 + (k * 13 % 9)) * 1e-4 for k in range(200)]
    bars = _sessions_with_sum_r2(make_bars, sums)
    full = _market(bars)
    cut = full["trade_date"][150]
    part = _market(bars.filter(pl.col("trade_date") <= cut))
    assert_frame_equal(part, full.filter(pl.col("trade_date") <= cut))
