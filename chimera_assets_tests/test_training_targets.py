"""Roll-adjusted training targets (SPEC 6.7 as changed on 2026-12-08, issue 25 item 3): the price
difference between two contracts at a roll never enters ``target_<h>``; ``target_<h>_raw`` keeps it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from chimera_assets.training.targets import build_training_table, switch_prices_from_bars, switches_of
from chimera_assets_tests.test_matrix import _matrix, _sessions

# 8 sessions: contract 1 on #0-#3, contract 2 (10% dearer: contango) from #4.
DAYS = _sessions(date(2024, 3, 4), date(2024, 3, 13))
CLOSES = [100.0, 101.0, 100.0, 102.0, 113.0, 112.0, 114.0, 115.0]
INSTRUMENTS = [1, 1, 1, 1, 2, 2, 2, 2]
# At the switch (#4) the old contract last traded 102.5 and the new one 112.75 (ratio 1.1, gap 10.25).
PRICES = pl.DataFrame({"data_date": [DAYS[4]], "old_price": [102.5], "new_price": [112.75],
                       "price_source": ["1h adjacent"]})


def _table(adjustment="ratio", prices=PRICES, instruments=INSTRUMENTS, closes=CLOSES, days=DAYS):
    matrix, bars = _matrix([(d, "ZL") for d in days], closes, instruments)
    return build_training_table(matrix, "ZL", bars, switch_prices=prices, adjustment=adjustment)


def test_ratio_adjustment_moves_the_earlier_close_onto_the_new_contract():
    t = _table()
    adj, raw = t["target_1d"].to_list(), t["target_1d_raw"].to_list()
    # Row #3's window (#3, #4] holds the switch: raw = 113/102 - 1 = +10.8% (mostly the contract gap);
    # adjusted = 113 / (102 * 1.1) - 1 = +0.71%.
    assert raw[3] == pytest.approx(113 / 102 - 1)
    assert adj[3] == pytest.approx(113 / (102 * 1.1) - 1)
    # Windows without a switch are unchanged.
    assert adj[:3] == pytest.approx(raw[:3]) and adj[4:7] == pytest.approx(raw[4:7])
    # 1w from #0: (#0, #5] holds the switch: 112 / (100 * 1.1) - 1.
    assert t["target_1w"][0] == pytest.approx(112 / 110 - 1)
    assert t["target_1w_raw"][0] == pytest.approx(112 / 100 - 1)
    assert t["target_crosses_roll_1d"].to_list() == [False, False, False, True, False, False, False, None]


def test_difference_and_none_adjustments():
    diff = _table("difference")
    assert diff["target_1d"][3] == pytest.approx(113 / (102 + 10.25) - 1)
    assert diff["target_1w"][0] == pytest.approx(112 / (100 + 10.25) - 1)
    none = _table("none")
    assert none["target_1d"].to_list() == none["target_1d_raw"].to_list()
    with pytest.raises(ValueError, match="unknown roll adjustment 'log'"):
        _table("log")


def test_without_bar_prices_the_sessions_price_the_switch_and_a_one_day_flip_chains_two_ratios():
    # Session fallback: old = close of #3 (102), new = open of #4 (= its close, 113, in these bars), so the
    # whole #3 -> #4 move counts as gap: adjusted 1d of #3 is 0 (the approximation documented).
    t = _table(prices=None)
    assert t["target_1d"][3] == pytest.approx(0.0)
    # A one-day flip to contract 3 on #5 (priced 200) and back on #6: both switches are bridged.
    closes = [100.0, 101.0, 100.0, 102.0, 103.0, 200.0, 104.0, 105.0]
    flip = _table(prices=None, instruments=[1, 1, 1, 1, 1, 3, 1, 1], closes=closes)
    assert flip["target_1d_raw"][4] == pytest.approx(200 / 103 - 1)
    assert flip["target_1d"][4] == pytest.approx(0.0) and flip["target_1d"][5] == pytest.approx(0.0)
    # (#2, #7] holds both switches: r = 200/103 then 104/200, product 104/103: the flip's prices cancel and
    # only the fallback's attribution of #4 -> #5 and #5 -> #6 to the gap remains.
    assert flip["target_1w_raw"][2] == pytest.approx(105 / 100 - 1)
    assert flip["target_1w"][2] == pytest.approx(105 / (100 * 104 / 103) - 1)


def test_a_switch_without_usable_prices_gives_a_null_target_never_the_raw_gap():
    bad = PRICES.with_columns(pl.lit(None, dtype=pl.Float64).alias("old_price"))
    t = _table(prices=bad)
    # The explicit pair wins over the session fallback, and an unusable pair blanks the windows over it.
    assert t["target_1d"][3] is None and t["target_1d_raw"][3] is not None
    assert t["target_1w"][:4].to_list() == [None] * 4
    assert t["target_1d"][0] is not None
    # "none" is the raw value whatever the prices.
    assert _table("none", prices=bad)["target_1d"].to_list() == t["target_1d_raw"].to_list()


def test_switch_prices_from_bars_prefer_same_time_closes_else_adjacent_bars():
    days = DAYS[3:5]
    matrix, bars = _matrix([(d, "ZL") for d in days], [100.0, 110.0], [1, 2])
    switches = switches_of(matrix, bars, "zl")
    assert switches.rows() == [(days[1], days[0], 1, 2)]

    def bar(ts_hour, trade_date, inst, o, c, day=days[1]):
        return {"ts_event": datetime(day.year, day.month, day.day, ts_hour, tzinfo=UTC), "trade_date": trade_date,
                "instrument_id": inst, "open": o, "close": c, "is_spread": False}

    # .v.0 style: the old contract's bars end at 00:00 UTC inside session days[1], the new one's start then.
    v0 = pl.DataFrame([bar(22, days[0], 1, 99.0, 100.0, days[0]), bar(0, days[1], 1, 100.0, 100.5),
                       bar(1, days[1], 2, 110.6, 111.0), bar(2, days[1], 2, 111.0, 110.0)])
    got = switch_prices_from_bars(switches, v0, "1h").row(0, named=True)
    assert (got["old_price"], got["new_price"], got["price_source"]) == (100.5, 110.6, "1h adjacent")
    # Parent-series style: both contracts trade the same hours -> the last common hour's closes.
    both = pl.concat([v0, pl.DataFrame([bar(1, days[1], 1, 100.5, 100.4), bar(2, days[1], 1, 100.4, 99.9)])])
    got = switch_prices_from_bars(switches, both, "1h").row(0, named=True)
    assert (got["old_price"], got["new_price"], got["price_source"]) == (99.9, 110.0, "1h same-time")
