"""Session state (SPEC 6.3): is a session complete, and may a date x root partition be empty?

Pure functions over polars frames and the CME calendars of ``pandas_market_calendars``; the Dagster
shells are in ``chimera_assets.defs.features.session_gate``.

**Complete session.** A session is complete when the loaded data of its root reaches its scheduled
close (the root's calendar, early closes included): the end of some intraday bar of the root
(``ts_event`` is the bar's open, so a 1h bar reaches ``ts_event + 1 h``) is at or after the close, or
a Databento API request of an intraday schema for the root's series ended (``period_end``) at or after
it. A landing file's header period is never used (a file cut short still claims its whole month).
The evening fragment of tomorrow's session at the end of a monthly file, and today's session before
its close, are therefore incomplete; they become complete when later data is loaded. A session built
from the ohlcv-1d fallback (``source_freq`` "1d") is complete: Databento publishes a UTC-day bar only
after that day, whose end is after the session's close.

**Partition status** of each requested (trade_date, root):

- ``published``: a session bar exists and is complete (features are computed and published);
- ``incomplete``: a session bar exists but is not complete (kept in session_bars, not published);
- ``no_session``: no bar, and the root's calendar has no session that day (holiday) or the day is
  before the root's universe ``start``: the only case recorded as materialized with 0 rows;
- ``no_trades``: no bar on a calendar session day, the root has bars on both sides of it, and one
  loaded source spans the whole session (a landing file whose records start before the session's
  open and end after its close and whose load wrote that trade date, or an API request over the
  session): the exchange did not trade the root although the calendar library lists a session (CME
  equity futures on Good Friday 2024 and 2025; ``pandas_market_calendars`` 5.5 lists both);
- ``not_started``: no bar on a calendar session day that a landing-file load wrote (its trade-date
  range holds the day) although its records end before the session opens; the root has bars in the
  days before and none on or after it: the file ends at a weekend or at the edge of its period (the
  landing sensor requests the partitions a file's period touches). Like an incomplete session it
  waits for the next data: 0 rows, listed, not a failure;
- ``missing``: any other session day without a bar: the data was not loaded, so the run fails
  naming the partition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta

import polars as pl

from chimera_assets.trade_calendar import CME_TZ, SCHEDULE_SCHEMA, calendar_schedule

# How far each frequency's bar reaches past its ts_event (the bar's open).
BAR_SPAN = {"1m": timedelta(minutes=1), "1h": timedelta(hours=1)}
INTRADAY_SCHEMAS = ("ohlcv-1m", "ohlcv-1h")
STATUSES = ("published", "incomplete", "no_session", "no_trades", "not_started", "missing")
# Close assumed on a date the calendar has no session for (bars on a day the library lists as closed):
# 16:00 CT, the Globex daily halt, as the matrix's session-close timestamp.
FALLBACK_CLOSE_HOUR = 16
_KEY = ["trade_date", "symbol"]
_TS = pl.Datetime("us", "UTC")


def _at_chicago(date_col: str, hours: int) -> pl.Expr:
    local = pl.col(date_col).cast(pl.Datetime("us")) + pl.duration(hours=hours)
    return local.dt.replace_time_zone(CME_TZ, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")


def session_schedule(
    keys: pl.DataFrame, calendars: Mapping[str, str], starts: Mapping[str, date] | None = None
) -> pl.DataFrame:
    """``keys`` (trade_date, symbol; other columns kept) plus ``scheduled`` (the root's calendar has a
    session that day, on or after the root's start), ``session_open`` and ``session_close`` (UTC).

    Days without a calendar session get 17:00 CT of the previous day and 16:00 CT of the day as
    open/close, so bars printed on a day the library calls closed still have a close to reach.
    A root without a calendar is never scheduled.
    """
    parts = []
    for (root,), sub in keys.group_by("symbol"):
        cal = calendars.get(root)
        if cal is None or sub.is_empty():
            continue
        sched = calendar_schedule(cal, sub["trade_date"].min(), sub["trade_date"].max())
        start = (starts or {}).get(root)
        if start is not None:
            sched = sched.filter(pl.col("trade_date") >= start)
        parts.append(sched.with_columns(symbol=pl.lit(root, pl.Utf8), scheduled=pl.lit(True)))
    sched = (
        pl.concat(parts) if parts
        else pl.DataFrame(schema={**SCHEDULE_SCHEMA, "symbol": pl.Utf8, "scheduled": pl.Boolean})
    )
    out = keys.join(sched, on=_KEY, how="left")
    return out.with_columns(
        pl.col("scheduled").fill_null(False),
        pl.coalesce("session_open", _at_chicago("trade_date", FALLBACK_CLOSE_HOUR + 1 - 24)).alias("session_open"),
        pl.coalesce("session_close", _at_chicago("trade_date", FALLBACK_CLOSE_HOUR)).alias("session_close"),
    )


def bar_reach(frames: Sequence[tuple[pl.DataFrame | None, str]]) -> pl.DataFrame:
    """Per root, how far its loaded intraday bars reach: max(ts_event + bar span) over ``frames``
    ((bars with ts_event and symbol, "1m" | "1h") pairs). Columns symbol, reach (UTC)."""
    parts = [
        f.select(pl.col("symbol").cast(pl.Utf8), (pl.col("ts_event").cast(_TS) + BAR_SPAN[freq]).alias("reach"))
        for f, freq in frames
        if f is not None and f.height
    ]
    if not parts:
        return pl.DataFrame(schema={"symbol": pl.Utf8, "reach": _TS})
    return pl.concat(parts).group_by("symbol").agg(pl.col("reach").max())


def _ledger_by_root(ledger: pl.DataFrame, series_by_root: Mapping[str, Sequence[str]]) -> pl.DataFrame:
    """Loaded intraday ledger rows, one per (row, root of one of its series)."""
    pairs = pl.DataFrame(
        [(s, r) for r, ss in series_by_root.items() for s in ss], schema={"_series": pl.Utf8, "symbol": pl.Utf8},
        orient="row",
    )
    return (
        ledger.filter((pl.col("status") == "loaded") & pl.col("schema").is_in(INTRADAY_SCHEMAS))
        .with_columns(pl.col("series").fill_null("").str.split(",").alias("_series"))
        .explode("_series")
        .with_columns(pl.col("_series").str.strip_chars())
        .join(pairs, on="_series", how="inner")
    )


def api_reach(ledger: pl.DataFrame, series_by_root: Mapping[str, Sequence[str]]) -> pl.DataFrame:
    """Per root, the latest end of a loaded Databento API request of an intraday schema for its series.

    Only the request records count (``source_kind`` 'api', ``rows_written`` NULL: the period asked
    for, clamped to what the dataset had): the ingest rows' period is the span of the trade dates
    written, which would call today's running session complete. Columns symbol, reach (UTC).
    """
    if ledger.is_empty():
        return pl.DataFrame(schema={"symbol": pl.Utf8, "reach": _TS})
    api = ledger.filter((pl.col("source_kind") == "api") & pl.col("rows_written").is_null())
    return (
        _ledger_by_root(api, series_by_root)
        .group_by("symbol")
        .agg(pl.col("period_end").cast(_TS).max().alias("reach"))
    )


def source_spans(ledger: pl.DataFrame, series_by_root: Mapping[str, Sequence[str]]) -> pl.DataFrame:
    """What each loaded source actually covered, per root.

    A landing-file load: [first_ts_event, last_ts_event] of the file's records (never its header
    period), limited to the trade dates the load wrote ([date_from, date_to) from the ledger's
    period_start/period_end, so a file loaded for a few of its dates covers only those). An API
    request: [period_start, period_end], any date. Columns symbol, span_start, span_end (UTC),
    date_from, date_to (NULL = no date limit).
    """
    schema = {"symbol": pl.Utf8, "span_start": _TS, "span_end": _TS, "date_from": pl.Date, "date_to": pl.Date}
    if ledger.is_empty():
        return pl.DataFrame(schema=schema)
    rows = _ledger_by_root(ledger, series_by_root)
    request = (pl.col("source_kind") == "api") & pl.col("rows_written").is_null()
    return rows.select(
        "symbol",
        pl.when(request).then(pl.col("period_start")).otherwise(pl.col("first_ts_event")).cast(_TS).alias("span_start"),
        pl.when(request).then(pl.col("period_end")).otherwise(pl.col("last_ts_event")).cast(_TS).alias("span_end"),
        pl.when(request).then(None).otherwise(pl.col("period_start").dt.date()).alias("date_from"),
        pl.when(request).then(None).otherwise(pl.col("period_end").dt.date()).alias("date_to"),
    ).drop_nulls(["span_start", "span_end"]).cast(schema)


def mark_session_complete(sessions: pl.DataFrame, schedule: pl.DataFrame, reach: pl.DataFrame) -> pl.DataFrame:
    """``sessions`` (trade_date, symbol, source_freq, ...) with ``session_complete`` set: the root's
    ``reach`` (see ``bar_reach``/``api_reach``; several rows per root allowed) is at or after the
    session's close from ``schedule`` (``session_schedule``), or the session comes from a 1d bar."""
    best = reach.group_by("symbol").agg(pl.col("reach").max()) if reach.height else reach
    closes = schedule.select(*_KEY, "session_close")
    out = sessions.drop("session_complete", strict=False).join(closes, on=_KEY, how="left").join(
        best, on="symbol", how="left"
    )
    complete = (pl.col("source_freq") == "1d") | (pl.col("reach") >= pl.col("session_close"))
    return out.with_columns(session_complete=complete.fill_null(False)).drop("session_close", "reach")


NEIGHBOUR_DAYS_BEFORE = 7  # calendar days searched for the root's previous bar (a long holiday weekend fits)
NEIGHBOUR_DAYS_AFTER = 10  # ... and for a later bar


def _neighbours(cand: pl.DataFrame, raw_days: pl.DataFrame) -> pl.DataFrame:
    """Per candidate (trade_date, symbol): has_on / has_before / has_after = the root has raw bars on the
    day / within NEIGHBOUR_DAYS_BEFORE days before it / within NEIGHBOUR_DAYS_AFTER days after it."""
    days = raw_days.select(pl.col("trade_date").alias("_d"), "symbol").unique()
    pairs = cand.select(_KEY).unique().join(days, on="symbol", how="inner")
    delta = (pl.col("_d") - pl.col("trade_date")).dt.total_days()
    return pairs.group_by(_KEY).agg(
        (delta == 0).any().alias("has_on"),
        delta.is_between(-NEIGHBOUR_DAYS_BEFORE, -1).any().alias("has_before"),
        delta.is_between(1, NEIGHBOUR_DAYS_AFTER).any().alias("has_after"),
    )


def classify_partitions(
    keys: pl.DataFrame,
    sessions: pl.DataFrame,
    schedule: pl.DataFrame,
    spans: pl.DataFrame | None = None,
    raw_days: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The status (see the module docstring) of every (trade_date, symbol) of ``keys``.

    ``sessions``: the session bars of those keys (trade_date, symbol, session_complete);
    ``schedule``: ``session_schedule`` of the keys; ``spans``: ``source_spans`` (None = nothing loaded);
    ``raw_days``: the (trade_date, symbol) pairs with raw bars from NEIGHBOUR_DAYS_BEFORE days before to
    NEIGHBOUR_DAYS_AFTER days after the keys. Without both, a session day without a bar is ``missing``.

    ``no_trades`` needs the root's own bars on both sides of the day (within the neighbour windows) and
    one loaded source spanning it; ``not_started`` needs the root's bars before the day, none on or
    after it, and a load that wrote the date with records ending before the session opens. The root's
    own bars are required because a ledger row lists every series its load wrote, not only its file's.
    A day with raw bars is never either (for an asset after session_bars it lacks its session bar).
    Returns trade_date, symbol, status, sorted.
    """
    have = sessions.select(*_KEY, pl.col("session_complete").fill_null(False).alias("_complete"))
    frame = (
        keys.select(*_KEY).unique()
        .join(have, on=_KEY, how="left")
        .join(schedule.select(*_KEY, "scheduled", "session_open", "session_close"), on=_KEY, how="left")
    )
    covered, waiting = pl.lit(False), pl.lit(False)
    if spans is not None and spans.height and raw_days is not None:
        no_bar = frame.filter(pl.col("_complete").is_null() & pl.col("scheduled").fill_null(False))
        near = _neighbours(no_bar, raw_days)
        cand = (
            no_bar.join(near, on=_KEY, how="inner")
            .filter(~pl.col("has_on") & pl.col("has_before"))
            .join(spans, on="symbol", how="inner")
        )
        claims_date = (pl.col("date_from") <= pl.col("trade_date")) & (pl.col("trade_date") < pl.col("date_to"))
        hit = cand.filter(
            pl.col("has_after")
            & (pl.col("span_start") <= pl.col("session_open"))
            & (pl.col("span_end") >= pl.col("session_close"))
            & (pl.col("date_from").is_null() | claims_date)
        ).select(*_KEY).unique().with_columns(_covered=pl.lit(True))
        # A load wrote the date, but its records end before the session opens and the root has no bar
        # after it: the session has not started in the loaded data yet.
        wait = cand.filter(
            ~pl.col("has_after") & claims_date & (pl.col("span_end") <= pl.col("session_open"))
        ).select(*_KEY).unique().with_columns(_waiting=pl.lit(True))
        frame = frame.join(hit, on=_KEY, how="left").join(wait, on=_KEY, how="left")
        covered, waiting = pl.col("_covered").fill_null(False), pl.col("_waiting").fill_null(False)
    status = (
        pl.when(pl.col("_complete")).then(pl.lit("published"))
        .when(pl.col("_complete").is_not_null()).then(pl.lit("incomplete"))
        .when(~pl.col("scheduled").fill_null(False)).then(pl.lit("no_session"))
        .when(covered).then(pl.lit("no_trades"))
        .when(waiting).then(pl.lit("not_started"))
        .otherwise(pl.lit("missing"))
    )
    return frame.select(*_KEY, status.alias("status")).sort("symbol", "trade_date")
