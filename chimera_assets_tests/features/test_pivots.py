"""Hand-checked tests of compute_pivots (SPEC 6.4 pivots)."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from chimera_assets.features.pivots import PIVOT_SCHEMA, compute_pivots


def _sb(rows: list[tuple]) -> pl.DataFrame:
    """(trade_date, instrument_id, high, low, close) -> minimal session bars of root ZL."""
    return pl.DataFrame(
        rows,
        schema={
            "trade_date": pl.Date,
            "instrument_id": pl.Int64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
        },
        orient="row",
    ).with_columns(symbol=pl.lit("ZL"))


def test_daily_levels_by_hand():
    out = compute_pivots(
        _sb(
            [
                (date(2024, 1, 2), 1, 110.0, 90.0, 100.0),
                (date(2024, 1, 3), 1, 115.0, 101.0, 108.0),
                (date(2024, 1, 4), 2, 20.0, 1.0, 10.5),
            ]
        )
    )
    assert dict(out.schema) == PIVOT_SCHEMA
    first, second, third = out.rows(named=True)
    # First session: no previous session -> NULL levels, roll flag False.
    assert first["P"] is None and first["distance_to_nearest_pivot"] is None
    assert first["price_above_P"] is None and first["pivot_roll_flag"] is False
    # Day 2 from H=110, L=90, C=100: P=100, R1=2P-L=110, S1=2P-H=90, R2=P+(H-L)=120, S2=80,
    # R3=H+2(P-L)=130, S3=L-2(H-P)=70. price=108: distance_to_P=+8, nearest = |108-110| = 2 (R1).
    expect = {"P": 100, "R1": 110, "S1": 90, "R2": 120, "S2": 80, "R3": 130, "S3": 70}
    for k, v in expect.items():
        assert second[k] == pytest.approx(v), k
    assert (second["prev_high"], second["prev_low"], second["prev_close"], second["price"]) == (
        110.0,
        90.0,
        100.0,
        108.0,
    )
    assert second["distance_to_P"] == pytest.approx(8.0)
    assert second["distance_to_nearest_pivot"] == pytest.approx(2.0)
    assert second["price_above_P"] is True and second["pivot_roll_flag"] is False
    # Day 3 from H=115, L=101, C=108: P=324/3=108, R1=115, S1=101, R2=122, S2=94, R3=115+14=129,
    # S3=101-14=87. price 10.5 (new contract): distance_to_P=-97.5, nearest=|10.5-87|=76.5 (S3).
    expect = {"P": 108, "R1": 115, "S1": 101, "R2": 122, "S2": 94, "R3": 129, "S3": 87}
    for k, v in expect.items():
        assert third[k] == pytest.approx(v), k
    assert third["distance_to_P"] == pytest.approx(-97.5)
    assert third["distance_to_nearest_pivot"] == pytest.approx(76.5)
    assert third["price_above_P"] is False and third["pivot_roll_flag"] is True


def test_asymmetric_levels():
    out = compute_pivots(
        _sb([(date(2024, 1, 2), 1, 12.0, 8.0, 11.0), (date(2024, 1, 3), 1, 12.0, 8.0, 10.0)])
    )
    row = out.row(1, named=True)
    # H=12, L=8, C=11: P=31/3=10.333333, R1=12.666667, S1=8.666667, R2=14.333333, S2=6.333333,
    # R3=12+2*2.333333=16.666667, S3=8-2*1.666667=4.666667; price 10 -> distance_to_P=-0.333333 (nearest).
    expect = {
        "P": 31 / 3,
        "R1": 38 / 3,
        "S1": 26 / 3,
        "R2": 43 / 3,
        "S2": 19 / 3,
        "R3": 50 / 3,
        "S3": 14 / 3,
    }
    for k, v in expect.items():
        assert row[k] == pytest.approx(v, rel=1e-12), k
    assert row["distance_to_P"] == pytest.approx(-1 / 3)
    assert row["distance_to_nearest_pivot"] == pytest.approx(1 / 3)


def test_weekly_pivot_from_prior_iso_week():
    rows = [
        # ISO week of Mon 2024-01-08
        (date(2024, 1, 8), 1, 105.0, 95.0, 100.0),
        (date(2024, 1, 9), 1, 110.0, 96.0, 104.0),
        (date(2024, 1, 10), 9, 500.0, 1.0, 250.0),  # one-day flip to a thin contract: not in the week
        (date(2024, 1, 12), 1, 108.0, 92.0, 101.0),
        # next week: WP = (max H 110 + min L 92 + last C 101)/3 = 303/3 = 101
        (date(2024, 1, 16), 1, 103.0, 99.0, 104.0),
        (date(2024, 1, 19), 1, 120.0, 99.0, 97.0),
        # a week with no sessions (2024-01-22..26), then 2024-01-29 -> NULL
        (date(2024, 1, 29), 1, 99.0, 95.0, 96.0),
    ]
    out = compute_pivots(_sb(rows))
    wp = dict(zip(out["trade_date"].to_list(), out["weekly_pivot"].to_list(), strict=True))
    dist = dict(zip(out["trade_date"].to_list(), out["weekly_pivot_distance"].to_list(), strict=True))
    assert all(wp[d] is None for d in (date(2024, 1, 8), date(2024, 1, 9), date(2024, 1, 12)))
    assert wp[date(2024, 1, 16)] == pytest.approx(101.0)
    assert dist[date(2024, 1, 16)] == pytest.approx(3.0)  # |104 - 101|
    assert dist[date(2024, 1, 19)] == pytest.approx(4.0)  # |97 - 101|
    assert wp[date(2024, 1, 29)] is None and dist[date(2024, 1, 29)] is None


def test_symbols_are_independent():
    a = _sb([(date(2024, 1, 2), 1, 10.0, 8.0, 9.0), (date(2024, 1, 3), 1, 10.0, 8.0, 9.0)])
    b = a.with_columns(symbol=pl.lit("MES"), high=pl.col("high") * 100)
    out = compute_pivots(pl.concat([b, a]))
    zl = out.filter(pl.col("symbol") == "ZL")
    # P of ZL day 2 = (10+8+9)/3 = 9, untouched by MES rows.
    assert zl["P"].to_list() == [None, pytest.approx(9.0)]
