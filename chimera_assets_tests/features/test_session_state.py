"""Session completeness and partition status (SPEC 6.3), on crafted frames: the rules of
``chimera_assets.features.session_state`` one by one (the real-data cases are in test_session_state_real)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import polars as pl

from chimera_assets.features.session_state import (
    api_reach,
    bar_reach,
    classify_partitions,
    mark_session_complete,
    session_schedule,
    source_spans,
)
from chimera_assets.schemas import LOAD_STATE
from chimera_assets.trade_calendar import calendar_schedule

CAL = {"ES": "CME_Equity", "ZL": "CME_Agriculture"}
SERIES = {"ES": ("ES.v.0",), "ZL": ("ZL.v.0",)}
# 2025-08-01 (Friday) ES: CME_Equity closes at 16:00 CT = 21:00 UTC (CDT).
DAY = date(2025, 8, 1)
CLOSE = datetime(2025, 8, 1, 21, tzinfo=UTC)


def _keys(*pairs: tuple[date, str]) -> pl.DataFrame:
    return pl.DataFrame(list(pairs), schema={"trade_date": pl.Date, "symbol": pl.Utf8}, orient="row")


def _bars(*ts: datetime, symbol: str = "ES") -> pl.DataFrame:
    return pl.DataFrame({"ts_event": list(ts), "symbol": [symbol] * len(ts)},
                        schema={"ts_event": pl.Datetime("us", "UTC"), "symbol": pl.Utf8})


def _ledger(**rows) -> pl.DataFrame:
    base = {c: None for c in LOAD_STATE.column_names}
    return pl.DataFrame([{**base, **r} for r in rows.values()], schema=LOAD_STATE.polars_schema())


def _status(last_bar_end: datetime | None, reach: pl.DataFrame, freq: str = "1h", thin: bool = False,
            closes=None, day: date = DAY, tolerance=None) -> str:
    keys = _keys((day, "ES"))
    sessions = keys.with_columns(source_freq=pl.lit(freq), thin_flag=pl.lit(thin),
                                 last_bar_end=pl.lit(last_bar_end, pl.Datetime("us", "UTC")))
    out = mark_session_complete(sessions, session_schedule(keys, CAL, closes=closes), reach, tolerance)
    assert out["session_complete"].item() == (out["session_status"].item() == "complete")
    return out["session_status"].item()


def _complete(reach: pl.DataFrame, freq: str = "1h", last_bar_end: datetime | None = CLOSE) -> bool:
    return _status(last_bar_end, reach, freq) == "complete"


def test_the_schedule_has_the_calendar_close_and_a_fallback_on_closed_days():
    s = calendar_schedule("CME_Equity", DAY, DAY)
    assert s.row(0) == (DAY, datetime(2025, 7, 31, 22, tzinfo=UTC), CLOSE, False)
    sched = session_schedule(_keys((DAY, "ES"), (date(2025, 7, 4), "ZL"), (date(2010, 6, 7), "ES")), CAL,
                             {"ES": date(2019, 1, 1)})
    closed = sched.filter(pl.col("symbol") == "ZL").row(0, named=True)
    assert not closed["scheduled"] and closed["session_close"] == datetime(2025, 7, 4, 21, tzinfo=UTC)
    assert not sched.filter(pl.col("trade_date") == date(2010, 6, 7))["scheduled"].item()  # before the start
    assert sched.filter(pl.col("trade_date") == DAY)["scheduled"].item()


def test_a_root_regular_close_replaces_the_calendar_close_but_not_an_early_close():
    xmas, thanks_fri = date(2024, 12, 24), date(2024, 11, 29)
    keys = _keys((DAY, "ES"), (xmas, "ES"), (date(2025, 12, 25), "ES"))
    sched = session_schedule(keys, CAL, closes={"ES": time(15, 15)})
    close = dict(((d, s), c) for d, s, c in sched.select("trade_date", "symbol", "session_close").rows())
    assert close[(DAY, "ES")] == datetime(2025, 8, 1, 20, 15, tzinfo=UTC)  # 15:15 CDT
    assert close[(xmas, "ES")] == datetime(2024, 12, 24, 18, tzinfo=UTC)  # the calendar's 12:00 CT early close
    # Christmas Day has no session: the fallback close is the root's own (15:15 CST).
    assert close[(date(2025, 12, 25), "ES")] == datetime(2025, 12, 25, 21, 15, tzinfo=UTC)
    # Christmas Eve is an early close the energy calendar of pandas_market_calendars lacks (fixed: 12:45 CT).
    cl = calendar_schedule("CMEGlobex_Crude", xmas, xmas).row(0, named=True)
    assert cl["session_close"] == datetime(2024, 12, 24, 18, 45, tzinfo=UTC) and cl["early_close"]
    assert calendar_schedule("CME_Equity", thanks_fri, thanks_fri)["early_close"].item()


def test_a_session_is_complete_when_its_own_last_bar_reaches_the_close_within_the_tolerance():
    nothing = bar_reach([])
    later = bar_reach([(_bars(datetime(2025, 8, 3, 22, tzinfo=UTC)), "1h")])  # Sunday evening: later data
    assert _status(CLOSE, nothing) == "complete"
    assert _status(CLOSE - timedelta(hours=2), nothing) == "complete"  # inside the 1h tolerance (2 h)
    assert _status(CLOSE - timedelta(hours=1), nothing, freq="1m") == "complete"
    assert _status(CLOSE - timedelta(hours=2), nothing, freq="1m") == "incomplete"  # 1m tolerance is 1 h
    # Stops 3 h before the close: waits when nothing later is loaded, is cut short when later data exists.
    early = CLOSE - timedelta(hours=3)
    assert _status(early, nothing) == "incomplete"
    assert _status(early, later) == "partial"
    # Thin or not: the two evening bars of a session whose day was never sent are not a session.
    assert _status(datetime(2025, 8, 1, 0, tzinfo=UTC), later, thin=True) == "partial"
    # The tolerance is configurable per frequency.
    assert _status(early, later, tolerance={"1h": timedelta(hours=4)}) == "complete"
    # Another root's bars say nothing about ES.
    assert _status(early, bar_reach([(_bars(datetime(2025, 8, 4, 22, tzinfo=UTC), symbol="ZL"), "1h")])) \
        == "incomplete"
    # The evening fragment at the end of a July file: the 08-01 session has barely started.
    assert _status(datetime(2025, 8, 1, 0, tzinfo=UTC), bar_reach([(_bars(datetime(2025, 7, 31, 23, tzinfo=UTC)),
                                                                    "1h")])) == "incomplete"
    # A session built from a UTC-day bar is complete.
    assert _status(None, nothing, freq="1d") == "complete"
    # The close that counts is the root's own: with a 15:15 CT regular close, a bar ending 15:00 CT is complete
    # at a 0 tolerance, where the calendar's 16:00 CT would call it partial.
    zero = {"1h": timedelta(0)}
    at_1515 = datetime(2025, 8, 1, 20, 15, tzinfo=UTC)
    assert _status(at_1515, later, tolerance=zero) == "partial"
    assert _status(at_1515, later, tolerance=zero, closes={"ES": time(15, 15)}) == "complete"


def test_an_api_request_past_the_close_makes_a_short_session_partial_not_waiting():
    midday = datetime(2025, 8, 1, 17, tzinfo=UTC)
    ingest_row = dict(source_kind="api", status="loaded", schema="ohlcv-1h", series="ES.v.0", rows_written=40,
                      period_start=datetime(2025, 8, 1, tzinfo=UTC), period_end=datetime(2025, 8, 2, tzinfo=UTC))
    request = dict(source_kind="api", status="loaded", schema="ohlcv-1h", series="ES.v.0",
                   period_start=datetime(2025, 8, 1, tzinfo=UTC), period_end=midday)

    def status(**rows) -> str:
        return _status(midday, api_reach(_ledger(**rows), SERIES))

    # Today's session before its close: the request ended at midday.
    assert status(a=request) == "incomplete"
    # The ingest row's period is the span of trade dates written (to 08-02 00:00): it must not count.
    assert status(a=request, b=ingest_row) == "incomplete"
    assert status(a=dict(request, period_end=CLOSE, status="failed")) == "incomplete"
    assert status(a=dict(request, period_end=CLOSE, schema="statistics")) == "incomplete"
    assert status(a=dict(request, period_end=CLOSE, series="ZL.v.0")) == "incomplete"
    assert status(a=dict(request, period_end=CLOSE, series="ZL.v.0,ES.v.0")) == "partial"
    # A landing file's header period is never used, however late it claims to end.
    file_row = dict(request, source_kind="file", rows_written=10, period_end=CLOSE + timedelta(days=30))
    assert status(a=file_row) == "incomplete"


def test_partition_status_for_each_case():
    gf, mon, tue, hol, wed = date(2025, 4, 18), date(2025, 4, 21), date(2025, 4, 22), date(2025, 7, 4), date(2025, 4, 23)
    thu = date(2025, 4, 24)
    keys = _keys((gf, "ES"), (mon, "ES"), (tue, "ES"), (hol, "ZL"), (wed, "ES"), (thu, "ES"))
    sessions = pl.DataFrame({"trade_date": [mon, tue, thu], "symbol": ["ES"] * 3,
                             "session_complete": [True, False, False],
                             "session_status": ["complete", "incomplete", "partial"]})
    sched = session_schedule(keys, CAL)
    status = dict(((d, s), st) for d, s, st in classify_partitions(keys, sessions, sched).rows())
    assert status == {(gf, "ES"): "missing", (mon, "ES"): "published", (tue, "ES"): "incomplete",
                      (hol, "ZL"): "no_session", (wed, "ES"): "missing", (thu, "ES"): "partial"}
    # The April file's records span Good Friday and its load wrote 04-01..04-22: no trades, not missing.
    april = dict(source_kind="file", status="loaded", schema="ohlcv-1h", series="ES.v.0,ZL.v.0", rows_written=1,
                 first_ts_event=datetime(2025, 4, 1, tzinfo=UTC), last_ts_event=datetime(2025, 4, 30, 23, tzinfo=UTC),
                 period_start=datetime(2025, 4, 1, tzinfo=UTC), period_end=datetime(2025, 4, 23, tzinfo=UTC))
    spans = source_spans(_ledger(a=april), SERIES)
    status = dict(((d, s), st) for d, s, st in classify_partitions(keys, sessions, sched, spans).rows())
    assert status[(gf, "ES")] == "no_trades"
    assert status[(wed, "ES")] == "missing"  # inside the records, but the load did not write 04-23
    # A source of other roots only (its series are not ES's) covers nothing of ES.
    zl_only = source_spans(_ledger(a=dict(april, series="ZL.v.0")), SERIES)
    assert classify_partitions(_keys((gf, "ES")), sessions, sched, zl_only)["status"].item() == "missing"
    # A file cut short (records end 04-10) does not span Good Friday.
    short = source_spans(_ledger(a=dict(april, last_ts_event=datetime(2025, 4, 10, tzinfo=UTC))), SERIES)
    assert classify_partitions(_keys((gf, "ES")), sessions, sched, short)["status"].item() == "missing"
    # An API request over the session covers it whatever dates it wrote.
    api = dict(source_kind="api", status="loaded", schema="ohlcv-1h", series="ES.v.0",
               period_start=datetime(2025, 4, 17, tzinfo=UTC), period_end=datetime(2025, 4, 19, tzinfo=UTC))
    assert classify_partitions(_keys((gf, "ES")), sessions, sched,
                               source_spans(_ledger(a=api), SERIES))["status"].item() == "no_trades"


def test_two_monthly_files_together_cover_a_session_split_between_them():
    """Labor Day 2025-09-01 (CME_Equity early close 12:00 CT) opens on Sunday 08-31 17:00 CT, in the August
    file, and closes in the September file: neither file spans it alone, their union does."""
    labor = date(2025, 9, 1)
    keys = _keys((labor, "ES"))
    empty = pl.DataFrame(schema={"trade_date": pl.Date, "symbol": pl.Utf8, "session_complete": pl.Boolean})
    sched = session_schedule(keys, CAL)
    aug = dict(source_kind="file", status="loaded", schema="ohlcv-1h", series="ES.v.0", rows_written=1,
               first_ts_event=datetime(2025, 8, 1, tzinfo=UTC), last_ts_event=datetime(2025, 8, 31, 23, tzinfo=UTC),
               period_start=datetime(2025, 8, 1, tzinfo=UTC), period_end=datetime(2025, 9, 2, tzinfo=UTC))
    sep = dict(aug, first_ts_event=datetime(2025, 9, 1, tzinfo=UTC), last_ts_event=datetime(2025, 9, 30, 23, tzinfo=UTC),
               period_start=datetime(2025, 9, 1, tzinfo=UTC), period_end=datetime(2025, 10, 1, tzinfo=UTC))

    def status(**rows) -> str:
        return classify_partitions(keys, empty, sched, source_spans(_ledger(**rows), SERIES))["status"].item()

    assert status(a=aug) == "missing" and status(b=sep) == "missing"
    assert status(a=aug, b=sep) == "no_trades"
    # A load that wrote only up to 08-29 (period_end 08-30) covers nothing of the Labor Day session.
    assert status(a=dict(aug, period_end=datetime(2025, 8, 30, tzinfo=UTC)), b=sep) == "missing"


def test_bars_on_a_day_the_calendar_calls_closed_are_complete_once_later_data_exists():
    """2025-01-09 (national day of mourning): CME equity futures traded until 09:00 CT, the calendar has no
    session; the real close is unknown, so the bars count once the next session's data is there."""
    mourning = date(2025, 1, 9)
    end = datetime(2025, 1, 9, 15, tzinfo=UTC)
    later = bar_reach([(_bars(datetime(2025, 1, 9, 23, tzinfo=UTC)), "1h")])
    assert _status(end, later, day=mourning) == "complete"
    assert _status(end, bar_reach([(_bars(datetime(2025, 1, 9, 14, tzinfo=UTC)), "1h")]), day=mourning) == "incomplete"
