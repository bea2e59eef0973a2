"""Session completeness and partition status (SPEC 6.3), on crafted frames: the rules of
``chimera_assets.features.session_state`` one by one (the real-data cases are in test_session_state_real)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

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


def _complete(reach: pl.DataFrame, freq: str = "1h") -> bool:
    keys = _keys((DAY, "ES"))
    sessions = keys.with_columns(source_freq=pl.lit(freq))
    out = mark_session_complete(sessions, session_schedule(keys, CAL), reach)
    return out["session_complete"].item()


def test_the_schedule_has_the_calendar_close_and_a_fallback_on_closed_days():
    s = calendar_schedule("CME_Equity", DAY, DAY)
    assert s.row(0) == (DAY, datetime(2025, 7, 31, 22, tzinfo=UTC), CLOSE)
    sched = session_schedule(_keys((DAY, "ES"), (date(2025, 7, 4), "ZL"), (date(2010, 6, 7), "ES")), CAL,
                             {"ES": date(2019, 1, 1)})
    closed = sched.filter(pl.col("symbol") == "ZL").row(0, named=True)
    assert not closed["scheduled"] and closed["session_close"] == datetime(2025, 7, 4, 21, tzinfo=UTC)
    assert not sched.filter(pl.col("trade_date") == date(2010, 6, 7))["scheduled"].item()  # before the start
    assert sched.filter(pl.col("trade_date") == DAY)["scheduled"].item()


def test_a_session_is_complete_once_a_bar_reaches_its_close():
    # The July file ends with the 22:00 and 23:00 UTC bars of 07-31: the 08-01 session has barely started.
    assert not _complete(bar_reach([(_bars(datetime(2025, 7, 31, 23, tzinfo=UTC)), "1h")]))
    # The 15:00 CT bar (20:00 UTC) ends at the 16:00 CT close: complete, although nothing later exists.
    assert _complete(bar_reach([(_bars(datetime(2025, 8, 1, 20, tzinfo=UTC)), "1h")]))
    # ... but a 1m bar at 20:00 UTC does not reach the close.
    assert not _complete(bar_reach([(_bars(datetime(2025, 8, 1, 20, tzinfo=UTC)), "1m")]))
    # Any later bar of the root does (Sunday evening of the next session).
    assert _complete(bar_reach([(_bars(datetime(2025, 8, 3, 22, tzinfo=UTC)), "1m")]))
    # Another root's bars say nothing about ES.
    assert not _complete(bar_reach([(_bars(datetime(2025, 8, 4, 22, tzinfo=UTC), symbol="ZL"), "1h")]))
    # A session built from a UTC-day bar is complete.
    assert _complete(bar_reach([]), freq="1d")


def test_todays_session_is_complete_only_when_an_api_request_reached_the_close():
    midday = datetime(2025, 8, 1, 17, tzinfo=UTC)
    ingest_row = dict(source_kind="api", status="loaded", schema="ohlcv-1h", series="ES.v.0", rows_written=40,
                      period_start=datetime(2025, 8, 1, tzinfo=UTC), period_end=datetime(2025, 8, 2, tzinfo=UTC))
    request = dict(source_kind="api", status="loaded", schema="ohlcv-1h", series="ES.v.0",
                   period_start=datetime(2025, 8, 1, tzinfo=UTC), period_end=midday)
    # The ingest row's period is the span of trade dates written (to 08-02 00:00): it must not count.
    assert not _complete(api_reach(_ledger(a=request, b=ingest_row), SERIES))
    assert not _complete(api_reach(_ledger(a=dict(request, period_end=CLOSE, status="failed")), SERIES))
    assert not _complete(api_reach(_ledger(a=dict(request, period_end=CLOSE, schema="statistics")), SERIES))
    assert not _complete(api_reach(_ledger(a=dict(request, period_end=CLOSE, series="ZL.v.0")), SERIES))
    assert _complete(api_reach(_ledger(a=dict(request, period_end=CLOSE, series="ZL.v.0,ES.v.0")), SERIES))
    # A landing file's header period is never used, however late it claims to end.
    file_row = dict(request, source_kind="file", rows_written=10, period_end=CLOSE + timedelta(days=30))
    assert not _complete(api_reach(_ledger(a=file_row), SERIES))


def test_partition_status_for_each_case():
    gf, mon, tue, hol, wed = date(2025, 4, 18), date(2025, 4, 21), date(2025, 4, 22), date(2025, 7, 4), date(2025, 4, 23)
    keys = _keys((gf, "ES"), (mon, "ES"), (tue, "ES"), (hol, "ZL"), (wed, "ES"))
    sessions = pl.DataFrame({"trade_date": [mon, tue], "symbol": ["ES", "ES"], "session_complete": [True, False]})
    sched = session_schedule(keys, CAL)
    status = dict(((d, s), st) for d, s, st in classify_partitions(keys, sessions, sched).rows())
    assert status == {(gf, "ES"): "missing", (mon, "ES"): "published", (tue, "ES"): "incomplete",
                      (hol, "ZL"): "no_session", (wed, "ES"): "missing"}
    # The April file's records span Good Friday and its load wrote 04-01..04-30: no trades, not missing.
    april = dict(source_kind="file", status="loaded", schema="ohlcv-1h", series="ES.v.0,ZL.v.0", rows_written=1,
                 first_ts_event=datetime(2025, 4, 1, tzinfo=UTC), last_ts_event=datetime(2025, 4, 30, 23, tzinfo=UTC),
                 period_start=datetime(2025, 4, 1, tzinfo=UTC), period_end=datetime(2025, 4, 23, tzinfo=UTC))
    spans = source_spans(_ledger(a=april), SERIES)
    raw_days = _keys((date(2025, 4, 17), "ES"), (mon, "ES"), (tue, "ES"))
    status = dict(((d, s), st) for d, s, st in classify_partitions(keys, sessions, sched, spans, raw_days).rows())
    assert status[(gf, "ES")] == "no_trades"
    assert status[(wed, "ES")] == "missing"  # inside the records, but the load did not write 04-23
    assert classify_partitions(keys, sessions, sched, spans)["status"].to_list().count("no_trades") == 0
    # The same day with raw bars present lacks its session bar, not its data.
    with_gf = pl.concat([raw_days, _keys((gf, "ES"))])
    status = dict(((d, s), st) for d, s, st in classify_partitions(keys, sessions, sched, spans, with_gf).rows())
    assert status[(gf, "ES")] == "missing"
    # Without the root's own bars on both sides (a ledger row lists every series its load wrote, e.g. a ZL
    # file loaded with this one), the span proves nothing about ES.
    only_before = _keys((date(2025, 4, 17), "ES"))
    assert classify_partitions(_keys((gf, "ES")), sessions, sched, spans, only_before)["status"].item() != "no_trades"
    # A file cut short (records end 04-10) does not span Good Friday.
    short = source_spans(_ledger(a=dict(april, last_ts_event=datetime(2025, 4, 10, tzinfo=UTC))), SERIES)
    assert classify_partitions(_keys((gf, "ES")), sessions, sched, short, raw_days)["status"].item() == "missing"


def test_a_session_the_loaded_file_ends_before_is_not_started_not_missing():
    """A synthetic weekly file of UTC days Mar 16..22 2024 (its load wrote 03-18..03-25, the landing sensor
    requests the partitions its period touches): Monday 03-25 has no bar yet and waits; once a later source
    reaches into that session without a bar for it, the day is missing."""
    mon = date(2024, 3, 25)
    keys = _keys((mon, "ES"))
    sessions = pl.DataFrame(schema={"trade_date": pl.Date, "symbol": pl.Utf8, "session_complete": pl.Boolean})
    sched = session_schedule(keys, CAL)
    week = dict(source_kind="file", status="loaded", schema="ohlcv-1h", series="ES.v.0", rows_written=100,
                first_ts_event=datetime(2024, 3, 17, 22, tzinfo=UTC), last_ts_event=datetime(2024, 3, 22, 20, tzinfo=UTC),
                period_start=datetime(2024, 3, 18, tzinfo=UTC), period_end=datetime(2024, 3, 26, tzinfo=UTC))

    week_days = _keys(*[(date(2024, 3, d), "ES") for d in (18, 19, 20, 21, 22)])

    def status(raw=week_days, **rows) -> str:
        spans = source_spans(_ledger(**rows), SERIES)
        return classify_partitions(keys, sessions, sched, spans, raw)["status"].item()

    assert status(a=week) == "not_started"
    assert status(a=dict(week, period_end=datetime(2024, 3, 23, tzinfo=UTC))) == "missing"  # the load did not write it
    # A later bar of the root exists (03-26): 03-25 is a gap, not a session still to come.
    assert status(raw=pl.concat([week_days, _keys((date(2024, 3, 26), "ES"))]), a=week) == "missing"
    # No bar of the root before it either: nothing of ES was loaded near that date.
    assert status(raw=week_days.clear(), a=week) == "missing"
