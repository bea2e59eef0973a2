"""Hand-checked tests of the golden-zone features (SPEC 6.4 golden_zone, rules 1-6)."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chimera_assets.features.golden_zone import (
    GOLDEN_ZONE_SCHEMA,
    compute_golden_zone,
    golden_zone_bars,
    zigzag_swings,
)

DAY1 = date(2024, 1, 2)

# Every bar has high = close + 5 and low = close - 5 and closes move by at most 5, so every true range
# is 10, ATR14 = 10 from bar 13 on, and the reversal threshold is 3 x 10 = 30.
CLOSES = (
    [100] * 14  # bars 0-13: ATR warm-up
    + [95, 90, 85, 80, 75, 70]  # 14-19: 100 - 70 = 30 -> swing HIGH 100 confirmed at bar 19
    + [65, 60]  # 20-21: low 60
    + [65, 70, 75, 80, 85, 90]  # 22-27: 90 - 60 = 30 -> swing LOW 60 confirmed at 27 (down-leg 100 -> 60)
    + [95, 100, 105, 110, 115, 120]  # 28-33: high 120
    + [115, 110, 105, 100, 95, 90]  # 34-39: 120 - 90 = 30 -> swing HIGH 120 at 39 (up-leg 60 -> 120)
    + [85, 80, 85, 90, 95, 100]  # 40-45: in the zone, back out through fib_50 = 90 at bar 44
)
# Up-leg 60 -> 120: R = 60, fib_50 = 120 - 30 = 90, fib_618 = 120 - 37.08 = 82.92.
# Down-leg 100 -> 60: R = 40, fib_50 = 60 + 20 = 80, fib_618 = 60 + 24.72 = 84.72.
DECAYING = {35: 150, 36: 140, 37: 130, 38: 120, 39: 110}
RISING = {35: 110, 36: 120, 37: 130, 38: 140, 39: 150}


def _bars(make_bars, closes, volumes: dict[int, int], mirror: bool = False, instrument=None) -> pl.DataFrame:
    recs = []
    for i, c in enumerate(closes):
        c = 200 - c if mirror else c
        recs.append(
            {
                "trade_date": DAY1 + timedelta(days=i // 20),  # bars 0-19 day 1, 20-39 day 2, 40-45 day 3
                "ts": i,
                "symbol": "MES",
                "instrument_id": instrument(i) if instrument else 1,
                "close": c,
                "high": c + 5,
                "low": c - 5,
                "volume": volumes.get(i, 100),
            }
        )
    return make_bars(recs)


def test_zigzag_swings_small_series():
    close = np.array([0, 1, 2, 3, 1, 0, -1, 2, 3, 4], dtype=float)
    thr = np.full(10, 3.0)
    start = np.zeros(10, dtype=bool)
    start[0] = True
    hi, lo, leg_dir, leg_id = zigzag_swings(close, thr, start)
    # bar 3: 3 - 0 >= 3 confirms LOW 0 (one swing: no leg yet); bar 5: 3 - 0 >= 3 confirms HIGH 3
    # -> up-leg (0, 3); bar 7: 2 - (-1) >= 3 confirms LOW -1 -> down-leg (3, -1).
    assert leg_dir.tolist() == [0, 0, 0, 0, 0, 1, 1, -1, -1, -1]
    assert np.isnan(hi[:5]).all() and hi[5:].tolist() == [3.0] * 5
    assert lo[5:].tolist() == [0.0, 0.0, -1.0, -1.0, -1.0]
    assert leg_id.tolist() == [1, 1, 1, 2, 2, 3, 3, 4, 4, 4]
    # No threshold known (ATR warm-up) -> no swing at all.
    _, _, d, _ = zigzag_swings(close, np.full(10, np.nan), start)
    assert not d.any()


@pytest.mark.parametrize("mirror", [False, True])
def test_states_swings_and_trigger(make_bars, mirror):
    bars = golden_zone_bars(_bars(make_bars, CLOSES, DECAYING | {44: 300}, mirror), {"MES"})
    flip = (lambda x: None if x is None else 200 - x) if mirror else (lambda x: x)
    state = bars["state"].to_list()
    assert bars["atr"][12] is None and bars["atr"][13] == pytest.approx(10.0)
    # Before two swings are confirmed there is no leg: NULL state and fibs.
    assert all(s is None for s in state[:27]) and bars["fib_50"][26] is None
    # Down-leg (100 -> 60) from its confirmation at bar 27 (mirrored: up-leg 100 -> 140).
    leg = bars.row(27, named=True)
    assert (flip(leg["swing_high"]), flip(leg["swing_low"])) in [(100.0, 60.0), (60.0, 100.0)]
    assert flip(leg["fib_50"]) == pytest.approx(80.0) and flip(leg["fib_618"]) == pytest.approx(84.72)
    # closes 90, 95, 100 lie between fib_618 84.72 and the origin 100 -> 2; 105 is beyond -> 0.
    assert state[27:31] == [2, 2, 2, 0]
    # No lookahead: at bar 33 (close 120, the future swing high) the leg is still 100 -> 60.
    assert flip(bars["fib_50"][33]) == pytest.approx(80.0)
    # Up-leg 60 -> 120 from bar 39 on: fib_50 = 90, fib_618 = 82.92.
    up = bars.row(39, named=True)
    assert flip(up["fib_50"]) == pytest.approx(90.0) and flip(up["fib_618"]) == pytest.approx(82.92)
    # closes 90 (=fib_50) -> 1, 85 -> 1, 80 (< 82.92, >= 60) -> 2, 85 -> 1, 90 -> 1, 95 -> 0, 100 -> 0
    assert state[39:46] == [1, 1, 2, 1, 1, 0, 0]
    # Zone first entered at bar 39; volumes 150,140,130,120,110 over bars 35-39: OLS slope
    # = sum((x-2) v)/10 = (-300 - 140 + 0 + 120 + 220)/10 = -10, mean 130 -> -10/130 = -0.0769231.
    # The down-leg entered its zone at its confirmation bar 27 with flat volumes (slope 0) and keeps it.
    assert bars["vol_decay_slope"][26] is None and bars["vol_decay_slope"][38] == 0.0
    assert bars["vol_decay_slope"][39] == pytest.approx(-10 / 130)
    assert bars["vol_decay_slope"][45] == pytest.approx(-10 / 130)
    # Bar 44: previous state 1, close 95 > fib_50 90 (mirrored 105 < 110), volume 300 >= 1.5 x SMA20;
    # SMA20 over bars 25-44 = (10 x 100 + 650 + 4 x 100 + 300) / 20 = 117.5 -> 176.25.
    assert bars["vol_sma20"][44] == pytest.approx(117.5)
    trig = bars["qualified_trigger"].to_list()
    assert trig[44] is True and sum(trig) == 1

    daily = compute_golden_zone(_bars(make_bars, CLOSES, DECAYING | {44: 300}, mirror), {"MES", "ZL"})
    assert dict(daily.schema) == GOLDEN_ZONE_SCHEMA
    d1, d2, d3 = daily.rows(named=True)
    # Day 1 ends at bar 19 with one swing: NULL everything, no trigger.
    assert d1["golden_zone_state"] is None and d1["swing_high"] is None and d1["qualified_trigger"] is False
    # Day 2 ends at bar 39 (state 1, the new up-leg); day 3 at bar 45 (close 100 -> 0) and holds the trigger.
    assert d2["golden_zone_state"] == 1 and flip(d2["fib_618"]) == pytest.approx(82.92)
    assert d2["vol_decay_slope"] == pytest.approx(-10 / 130) and d2["qualified_trigger"] is False
    assert d3["golden_zone_state"] == 0 and d3["qualified_trigger"] is True


@pytest.mark.parametrize(
    "volumes, why",
    [
        # SMA20 = (2350 - 300 + 150)/20 = 110 -> needs 165 > 150
        (DECAYING | {44: 150}, "volume below 1.5 x SMA20"),
        # slope +10/130 > 0
        (RISING | {44: 300}, "volume rose into the zone"),
    ],
)
def test_non_triggers(make_bars, volumes, why):
    bars = golden_zone_bars(_bars(make_bars, CLOSES, volumes), {"MES"})
    assert not bars["qualified_trigger"].any(), why
    assert bars["state"][43] == 1 and bars["close"][44] > bars["fib_50"][44]


def test_contract_change_resets_everything(make_bars):
    closes = CLOSES + [100] * 20
    frame = _bars(make_bars, closes, DECAYING, instrument=lambda i: 1 if i < 46 else 2)
    bars = golden_zone_bars(frame, {"MES"})
    row = bars.row(46, named=True)
    assert row["instrument_id"] == 2
    assert row["atr"] is None and row["swing_high"] is None and row["state"] is None
    assert row["vol_decay_slope"] is None and row["vol_sma20"] is None
    assert bars["atr"][59] == pytest.approx(10.0)  # 14 bars of the new contract: TR = H - L = 10 each


def test_other_roots_and_empty_input(make_bars):
    frame = _bars(make_bars, CLOSES, DECAYING)
    assert compute_golden_zone(frame, {"ZL"}).height == 0
    assert compute_golden_zone(frame.clear(), {"MES"}).schema == pl.Schema(GOLDEN_ZONE_SCHEMA)


def test_point_in_time_random_walk(make_bars):
    rng = np.random.default_rng(7)
    n = 3000
    close = 5000 + np.cumsum(rng.normal(0, 4, n))
    spread = np.abs(rng.normal(0, 3, n)) + 0.25
    recs = [
        {
            "trade_date": DAY1 + timedelta(days=i // 23),
            "ts": i,
            "symbol": "MES",
            "instrument_id": 1 if i < 1700 else 2,
            "close": round(float(close[i]), 2),
            "high": round(float(close[i] + spread[i]), 2),
            "low": round(float(close[i] - spread[i]), 2),
            "volume": int(rng.integers(50, 500)),
        }
        for i in range(n)
    ]
    frame = make_bars(recs)
    full_bars = golden_zone_bars(frame, {"MES"})
    full = compute_golden_zone(frame, {"MES"})
    assert full["golden_zone_state"].drop_nulls().n_unique() == 3
    assert full["qualified_trigger"].any()
    for cut in (400, 1699, 1700, 2222):
        part = frame.head(cut)
        pb = golden_zone_bars(part, {"MES"})
        assert_frame_equal(pb, full_bars.head(cut))
        last_day = part["trade_date"].max()
        # The cut may split the last day; every earlier day must be identical.
        assert_frame_equal(
            compute_golden_zone(part, {"MES"}).filter(pl.col("trade_date") < last_day),
            full.filter(pl.col("trade_date") < last_day),
        )
    assert math.isfinite(full["fib_50"].drop_nulls().mean())


def test_vol_decay_null_until_the_leg_enters_the_zone(make_bars):
    # 100 x 14, down to 0 in steps of 5 (swing HIGH 100 confirmed at close 70), up to 30: 30 - 0 = 30
    # confirms swing LOW 0 -> down-leg 100 -> 0, fib_50 = 50, fib_618 = 61.8; close 30 is short of the
    # zone -> state 0 and no vol_decay_slope; closes 35..50 then enter (50 >= fib_50 -> state 1).
    closes = [100] * 14 + list(range(95, -1, -5)) + [5, 10, 15, 20, 25, 30] + [35, 40, 45, 50]
    bars = golden_zone_bars(_bars(make_bars, closes, {}), {"MES"})
    confirm = len(closes) - 5
    row = bars.row(confirm, named=True)
    assert (row["swing_high"], row["swing_low"], row["fib_50"]) == (100.0, 0.0, 50.0)
    assert row["fib_618"] == pytest.approx(61.8)
    assert bars["state"].to_list()[confirm:] == [0, 0, 0, 0, 1]
    assert bars["vol_decay_slope"].to_list()[confirm:] == [None, None, None, None, 0.0]
