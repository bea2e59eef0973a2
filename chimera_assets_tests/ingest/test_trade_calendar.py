"""CME trade-date rule and root parsing (chimera_assets.trade_calendar)."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from chimera_assets.trade_calendar import (
    first_owned_day,
    is_spread_symbol_expr,
    next_weekday,
    on_or_after_weekday,
    on_or_before_weekday,
    previous_weekday,
    root_expr,
    root_from_series,
    trade_date_expr,
    trade_date_of,
    weekday_runs,
)

UTC = dt.UTC


def _td(*ts: dt.datetime) -> list[dt.date]:
    df = pl.DataFrame({"ts_event": list(ts)}, schema={"ts_event": pl.Datetime("us", "UTC")})
    return df.select(trade_date_expr()).get_column("trade_date").to_list()


def u(y, m, d, h, mi=0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=UTC)


def test_dst_spring_forward_moves_the_utc_session_boundary():
    # 22:00 UTC is 16:00 CST (break, same trade date) in winter but 17:00 CDT (next date) in summer.
    assert _td(u(2024, 3, 7, 22)) == [dt.date(2024, 3, 7)]  # Thursday, CST
    assert _td(u(2024, 3, 14, 22)) == [dt.date(2024, 3, 15)]  # Thursday, CDT -> Friday
    assert _td(u(2024, 3, 7, 23)) == [dt.date(2024, 3, 8)]  # 17:00 CST -> next date
    # The Sunday of the switch itself: 23:00 UTC = 18:00 CDT -> Monday.
    assert _td(u(2024, 3, 10, 23)) == [dt.date(2024, 3, 11)]


def test_dst_fall_back():
    assert _td(u(2024, 10, 31, 22)) == [dt.date(2024, 11, 1)]  # 17:00 CDT -> Friday
    assert _td(u(2024, 11, 7, 22)) == [dt.date(2024, 11, 7)]  # 16:00 CST -> same day
    assert _td(u(2024, 11, 7, 23)) == [dt.date(2024, 11, 8)]  # 17:00 CST -> Friday
    # Both 01:30 local times of the repeated hour are Sunday -> Monday.
    assert _td(u(2024, 11, 3, 6, 30), u(2024, 11, 3, 7, 30)) == [dt.date(2024, 11, 4)] * 2


def test_weekend_results_move_to_monday():
    # Sunday-afternoon bar (holiday-shifted real data): 14:00 CST +7 = Sunday 21:00 -> Monday.
    assert _td(u(2024, 1, 14, 20)) == [dt.date(2024, 1, 15)]
    # Friday evening 17:00 CST +7 = Saturday 00:00 -> Monday.
    assert _td(u(2024, 1, 12, 23)) == [dt.date(2024, 1, 15)]
    # Saturday bar -> Monday; ordinary Friday afternoon stays Friday.
    assert _td(u(2024, 1, 13, 15)) == [dt.date(2024, 1, 15)]
    assert _td(u(2024, 1, 12, 19)) == [dt.date(2024, 1, 12)]


def test_expression_matches_an_independent_zoneinfo_implementation():
    rng = random.Random(3)
    chicago = ZoneInfo("America/Chicago")
    stamps = [
        dt.datetime(2010, 1, 1, tzinfo=UTC) + dt.timedelta(minutes=rng.randrange(16 * 365 * 1440))
        for _ in range(3000)
    ]
    got = _td(*stamps)
    for ts, td in zip(stamps, got, strict=True):
        d = (ts.astimezone(chicago).replace(tzinfo=None) + dt.timedelta(hours=7)).date()
        d += dt.timedelta(days={5: 2, 6: 1}.get(d.weekday(), 0))
        assert td == d == trade_date_of(ts), ts
        assert td.weekday() < 5


def test_nulls_and_other_time_zones():
    df = pl.DataFrame({"t": [u(2024, 1, 12, 23), None]}, schema={"t": pl.Datetime("ns", "UTC")}).with_columns(
        pl.col("t").dt.convert_time_zone("Asia/Tokyo")
    )
    assert df.select(trade_date_expr("t")).get_column("trade_date").to_list() == [dt.date(2024, 1, 15), None]


def test_naive_input():
    # The scalar helper refuses naive datetimes; the expression reads a naive column as UTC.
    with pytest.raises(ValueError, match="naive"):
        trade_date_of(dt.datetime(2024, 1, 2, 12))
    df = pl.DataFrame({"t": [dt.datetime(2024, 1, 2, 23), dt.datetime(2024, 1, 2, 22)]})
    assert df.select(trade_date_expr("t")).to_series().to_list() == [dt.date(2024, 1, 3), dt.date(2024, 1, 2)]


@pytest.mark.parametrize(
    ("symbol", "root"),
    [
        ("ZL.v.0", "ZL"),
        ("ZL.c.0", "ZL"),
        ("ES.n.1", "ES"),
        ("ZL.FUT", "ZL"),
        ("ZLZ5", "ZL"),
        ("ESH1", "ES"),
        ("MESH25", "MES"),
        ("ZNZ5", "ZN"),
        ("6EH5", "6E"),
        ("SR3H26", "SR3"),
        ("10YZ5", "10Y"),
        ("ZLZ5-ZLF6", "ZL"),
        ("MESH5-MESM5", "MES"),
        ("ZL:BF Z5-F6-H6", "ZL"),
        (" ZL.v.0 ", "ZL"),
    ],
)
def test_root_from_series(symbol, root):
    assert root_from_series(symbol) == root
    assert pl.DataFrame({"s": [symbol]}).select(root_expr("s")).item() == root


@pytest.mark.parametrize("bad", ["5482", "ESH5 C5000", "", "ZL", "zlz5", "UD:1V: VT 0531", "ZL.x"])
def test_root_from_series_rejects_unparseable_symbols(bad):
    with pytest.raises(ValueError, match="cannot parse") as err:
        root_from_series(bad)
    assert repr(bad) in str(err.value)
    assert pl.DataFrame({"s": [bad]}).select(root_expr("s")).item() is None


def test_spread_flag():
    df = pl.DataFrame({"s": ["ZLZ5-ZLF6", "ZL:BF Z5-F6-H6", "ZL.v.0", None]})
    assert df.select(is_spread_symbol_expr("s")).to_series().to_list() == [True, True, False, False]


@pytest.mark.parametrize("symbol", ["ZLZ5:XYZ", "ZLZ5-ZLF6", "ZL:BF Z5-F6-H6", "MESH25", "ZL.v.0", " ZL.FUT "])
def test_scalar_and_vectorised_root_parsers_agree(symbol):
    # The two once disagreed on a contract followed by ':' ("ZLZ5:XYZ" gave ZLZ5 and ZL).
    assert root_from_series(symbol) == pl.DataFrame({"s": [symbol]}).select(root_expr("s")).item()
    assert root_from_series("ZLZ5:XYZ") == "ZL"


def test_weekend_rule_helpers():
    date = dt.date
    fri, sat, sun, mon = date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3), date(2024, 3, 4)
    assert [on_or_after_weekday(d) for d in (fri, sat, sun, mon)] == [fri, mon, mon, mon]
    assert [on_or_before_weekday(d) for d in (fri, sat, sun, mon)] == [fri, fri, fri, mon]
    assert next_weekday(fri) == mon and previous_weekday(mon) == fri and next_weekday(mon) == date(2024, 3, 5)
    # A Friday and the next Monday are one run; a skipped weekday starts a new one; duplicates ignored.
    days = [date(2024, 2, 29), fri, mon, mon, date(2024, 3, 6)]
    assert weekday_runs(days) == [(date(2024, 2, 29), mon), (date(2024, 3, 6), date(2024, 3, 6))]


def test_a_monday_partition_owns_the_weekend_before_it():
    mon, tue = dt.date(2024, 3, 4), dt.date(2024, 3, 5)
    assert first_owned_day(mon) == dt.date(2024, 3, 2) and first_owned_day(tue) == tue
    # Every day of a week belongs to exactly one partition, the one on_or_after_weekday gives.
    for k in range(14):
        d = dt.date(2024, 3, 1) + dt.timedelta(days=k)
        p = on_or_after_weekday(d)
        assert first_owned_day(p) <= d <= p
