"""The vectorised weekend rule agrees with the scalar one (trade_calendar), day by day over 3 weeks."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from chimera_assets.trade_calendar import (
    is_weekday_expr,
    on_or_after_weekday,
    on_or_after_weekday_expr,
)

DAYS = [date(2024, 2, 26) + timedelta(days=i) for i in range(21)]  # spans a leap day and 3 weekends


def test_on_or_after_weekday_expr_matches_the_scalar_rule_and_keeps_nulls():
    frame = pl.DataFrame({"d": [*DAYS, None]}, schema={"d": pl.Date})
    got = frame.select(on_or_after_weekday_expr("d"))["d"].to_list()
    assert got == [*(on_or_after_weekday(d) for d in DAYS), None]
    # Saturday 2024-03-02 and Sunday 2024-03-03 belong to Monday 2024-03-04.
    assert got[5:8] == [date(2024, 3, 4)] * 3
    assert frame.select(on_or_after_weekday_expr(pl.col("d"))).dtypes == [pl.Date]


def test_is_weekday_expr_is_monday_to_friday():
    frame = pl.DataFrame({"d": DAYS})
    got = frame.filter(is_weekday_expr("d"))["d"].to_list()
    assert got == [d for d in DAYS if d.weekday() < 5]
    assert len(got) == 15
