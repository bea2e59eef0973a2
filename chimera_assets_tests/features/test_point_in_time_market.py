"""Real-data tests on the Databento portal batch (ZL, MES, ES hourly bars, 2024-01 .. 2025-12-15).

Point in time: every feature family computed with all inputs after a cut-off D removed must give
identical values for every date <= D. Session bars are also checked against an independent
aggregation written here in plain Python.
"""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chimera_assets.features.golden_zone import compute_golden_zone
from chimera_assets.features.market import compute_market_features
from chimera_assets.features.pivots import compute_pivots
from chimera_assets.features.session_bars import build_session_bars

BATCH = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "databento-batch"
ROOTS = ("ZL", "MES", "ES")
CUTOFFS = [
    date(2024, 6, 19),  # ES/MES roll day (.v.0 switches at 00:00 UTC inside the session)
    date(2024, 11, 5),
    date(2025, 3, 19),  # ES/MES roll day
    date(2025, 9, 3),  # ZL one-day flip to a thin contract
    date(2025, 12, 12),
]
ZL_FLIP = date(2025, 9, 3)


@pytest.fixture(scope="session")
def real_bars() -> pl.DataFrame:
    files = sorted(BATCH.glob("*/*.dbn.zst"))
    if not files:
        pytest.skip(f"real Databento batch not present under {BATCH}")
    from chimera_assets.dbn.decode import decode_dbn_file

    frames = [decode_dbn_file(f).filter(pl.col("symbol").is_in(ROOTS)) for f in files]
    return pl.concat(frames, how="vertical_relaxed")


def _families(bars: pl.DataFrame) -> dict[str, pl.DataFrame]:
    sb = build_session_bars(None, bars)
    return {
        "session_bars": sb,
        "market": compute_market_features(bars, sb),
        "pivots": compute_pivots(sb),
        "golden_zone": compute_golden_zone(bars, set(ROOTS)),
    }


@pytest.fixture(scope="session")
def full(real_bars) -> dict[str, pl.DataFrame]:
    return _families(real_bars)


@pytest.mark.parametrize("cutoff", CUTOFFS, ids=str)
def test_point_in_time(real_bars, full, cutoff):
    part = _families(real_bars.filter(pl.col("trade_date") <= cutoff))
    for name, frame in part.items():
        expected = full[name].filter(pl.col("trade_date") <= cutoff)
        assert expected.height > 0
        assert frame["trade_date"].max() == cutoff, name
        try:
            assert_frame_equal(frame, expected, check_exact=True)
        except AssertionError as exc:
            raise AssertionError(f"{name} differs up to {cutoff}: {exc}") from None


@pytest.mark.parametrize("cutoff", [date(2024, 12, 31), ZL_FLIP], ids=str)
def test_incremental_runs_with_history_match_the_full_run(real_bars, full, cutoff):
    later = real_bars.filter(pl.col("trade_date") > cutoff)
    sb_hist = full["session_bars"].filter(pl.col("trade_date") <= cutoff)
    sb = build_session_bars(None, later, history=sb_hist)
    assert_frame_equal(sb, full["session_bars"].filter(pl.col("trade_date") > cutoff))
    mk = compute_market_features(later, sb, history=full["market"].filter(pl.col("trade_date") <= cutoff))
    assert_frame_equal(
        mk, full["market"].filter(pl.col("trade_date") > cutoff), check_exact=False, rel_tol=1e-9
    )


def _independent_session(bars: pl.DataFrame, day: date, root: str) -> dict:
    """Plain-Python session bar: last bar's contract only, rows in time order."""
    rows = [
        r
        for r in bars.filter(pl.col("trade_date") == day, pl.col("symbol") == root).iter_rows(named=True)
        if not r["is_spread"]
    ]
    rows.sort(key=lambda r: r["ts_event"])
    inst = rows[-1]["instrument_id"]
    mine = [r for r in rows if r["instrument_id"] == inst]
    return {
        "instrument_id": inst,
        "open": mine[0]["open"],
        "high": max(r["high"] for r in mine),
        "low": min(r["low"] for r in mine),
        "close": mine[-1]["close"],
        "volume": sum(r["volume"] for r in mine),
        "bar_count": len(mine),
        "n_contracts": len({r["instrument_id"] for r in rows}),
    }


def test_session_bars_match_independent_aggregation(real_bars, full):
    sb = full["session_bars"]
    mixed = (
        real_bars.filter(~pl.col("is_spread"))
        .group_by("trade_date", "symbol")
        .agg(pl.col("instrument_id").n_unique().alias("n"))
        .filter(pl.col("n") > 1)
        .sort("trade_date", "symbol")
    )
    forced = [("ZL", ZL_FLIP)]
    for root in ("ES", "MES"):
        days = mixed.filter(pl.col("symbol") == root)["trade_date"].to_list()
        assert days, f"no {root} roll day with two contracts in one session"
        forced.append((root, days[0]))
    keys = sorted(zip(sb["symbol"].to_list(), sb["trade_date"].to_list(), strict=True))
    rng = random.Random(20251216)
    picks = list(dict.fromkeys(forced + rng.sample(keys, 40)))[:20]
    assert len(picks) == 20

    saw_mixed = 0
    for root, day in picks:
        want = _independent_session(real_bars, day, root)
        got = sb.filter(pl.col("trade_date") == day, pl.col("symbol") == root).row(0, named=True)
        for col in ("instrument_id", "open", "high", "low", "close", "volume", "bar_count"):
            assert got[col] == want[col], (root, day, col)
        saw_mixed += want["n_contracts"] > 1
    assert saw_mixed >= 2


def test_zl_one_day_flip_is_thin_and_rolls_twice(full):
    zl = full["session_bars"].filter(
        pl.col("symbol") == "ZL", pl.col("trade_date").is_between(date(2025, 9, 2), date(2025, 9, 4))
    )
    before, flip, after = zl.rows(named=True)
    assert flip["instrument_id"] != before["instrument_id"] == after["instrument_id"]
    # 33 lots against a ~40k-lot median -> thin; the switch away and back both count as rolls.
    assert flip["volume"] == 33 and flip["thin_flag"] is True
    assert (before["roll_flag"], flip["roll_flag"], after["roll_flag"]) == (False, True, True)
    assert after["thin_flag"] is False
    # Pivots of the day after carry the roll flag (they come from the thin contract's session).
    pv = full["pivots"].filter(pl.col("symbol") == "ZL", pl.col("trade_date") == date(2025, 9, 4))
    assert pv["pivot_roll_flag"].to_list() == [True]


def test_real_values_are_sane(full):
    mk = full["market"]
    late = mk.filter(pl.col("trade_date") >= date(2025, 1, 1))
    # ~10 months of history is enough for all rolling values from 2025 on, except the last partial
    # session (ES/MES 2025-12-16: one evening bar before the batch ends), which has no 1h return.
    assert late["vol_percentile"].null_count() == 0 and late["k_vol"].null_count() == 0
    assert set(late.filter(pl.col("realized_vol_1h").is_null())["trade_date"].to_list()) == {
        date(2025, 12, 16)
    }
    es = late.filter(pl.col("symbol") == "ES")
    assert 0.05 < es["rv20"].median() < 0.5
    assert es["k_vol"].min() >= 0.5 and es["k_vol"].max() <= 2.0
    gz = full["golden_zone"]
    assert set(gz["golden_zone_state"].drop_nulls().unique().to_list()) == {0, 1, 2}
