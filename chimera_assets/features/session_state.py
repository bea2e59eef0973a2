"""Session state (SPEC 6.3): is a session complete, and why is a date x root partition empty?

Pure functions over polars frames and the CME calendars of ``pandas_market_calendars``; the Dagster
shells are in ``chimera_assets.defs.features.session_gate``.

**Complete session.** A session is complete when the root's own bars reach the session's scheduled
close (the root's calendar, early closes included; ``RootConfig.session_close`` overrides the regular
close) within a tolerance per frequency (``DEFAULT_TOLERANCE``, universe.yaml ``session_tolerance``):
``last_bar_end`` (the end of the session's last kept bar; ``ts_event`` is the bar's open) >= close -
tolerance. A session built from the ohlcv-1d fallback (``source_freq`` "1d") is complete: Databento
publishes a UTC-day bar only after that day. A session that is not complete is

- ``incomplete`` when the root's loaded data ends before the close (the evening part of tomorrow's
  session at the end of a monthly file; today's session before its close): it completes later;
- ``partial`` when the root's loaded data goes on past the close (later bars, or a Databento API
  request that ended after it) although the session's own bars stop well before it: the vendor cut
  the session short (or, for a root that rarely trades near its close, nobody traded: give such a
  root a wider ``session_tolerance`` in universe.yaml). A corrected file completes it.

A landing file's header period is never used (a file cut short still claims its whole month).

**Partition status** of each requested (trade_date, root):

- ``published``: a session bar exists and is complete (features are computed and published);
- ``incomplete`` / ``partial``: a session bar exists but is not complete (kept in session_bars,
  not published downstream, treated like a holiday by rolling windows and targets);
- ``no_session``: no bar, and the root's calendar has no session that day (holiday) or the day is
  before the root's universe ``start``;
- ``no_trades``: no bar on a calendar session day that a loaded source covers: a landing-file load
  whose records (of any root: the union of the loaded sources) start before the session opens and end
  after it closes and whose load wrote that trade date, or an API request over the session. The
  exchange or the vendor has no bar for the root although the calendar lists a session (CME equity
  futures on Good Friday; a Labor Day early-close session; a vendor outage inside a monthly file);
- ``missing``: no bar on a calendar session day that no loaded source covers (the data was not
  loaded yet, or the root's file ends before it).

No status fails a run (SPEC 6.3, 2026-12-08: "days without a publishable session never fail a
range"): every partition that is not ``published`` has 0 published rows and metadata with its
reason, and the WARN check ``no_missing_sessions`` lists the ``no_trades``, ``missing`` and
``partial`` ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, time, timedelta

import polars as pl

from chimera_assets.trade_calendar import CME_TZ, SCHEDULE_SCHEMA, calendar_schedule

# How far each frequency's bar reaches past its ts_event (the bar's open).
BAR_SPAN = {"1m": timedelta(minutes=1), "1h": timedelta(hours=1)}
INTRADAY_SCHEMAS = ("ohlcv-1m", "ohlcv-1h")
STATUSES = ("published", "incomplete", "partial", "no_session", "no_trades", "missing")
#: The statuses of a day without a publishable session that the WARN check lists (gap days).
GAP_STATUSES = ("no_trades", "missing", "partial")
# How far before the scheduled close a session's last bar may end and the session still count as
# complete. Measured on the real batch (docs/features.md, "Session state"): a liquid root's last 1h
# bar ends at or after the close; 2 h leaves the thin-contract and holiday-hour days of 2024-25 complete.
DEFAULT_TOLERANCE = {"1m": timedelta(hours=1), "1h": timedelta(hours=2)}
# Close assumed on a date the calendar has no session for (bars on a day the library lists as closed):
# 16:00 CT, the Globex daily halt, as the matrix's session-close timestamp.
FALLBACK_CLOSE_HOUR = 16
_KEY = ["trade_date", "symbol"]
_TS = pl.Datetime("us", "UTC")


def _at_chicago(date_col: str, hours: int | pl.Expr, minutes: int | pl.Expr = 0) -> pl.Expr:
    local = pl.col(date_col).cast(pl.Datetime("us")) + pl.duration(hours=hours, minutes=minutes)
    return local.dt.replace_time_zone(CME_TZ, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")


def session_schedule(
    keys: pl.DataFrame,
    calendars: Mapping[str, str],
    starts: Mapping[str, date] | None = None,
    closes: Mapping[str, time | None] | None = None,
) -> pl.DataFrame:
    """``keys`` (trade_date, symbol; other columns kept) plus ``scheduled`` (the root's calendar has a
    session that day, on or after the root's start), ``session_open`` and ``session_close`` (UTC).

    ``closes``: per root, its regular close (America/Chicago wall clock) replacing the calendar's on
    days that are not early closes (an early close of the calendar always wins). Days without a
    calendar session get 17:00 CT of the previous day and the root's regular close (else 16:00 CT) as
    open/close, so bars printed on a day the library calls closed still have a close to reach.
    A root without a calendar is never scheduled.
    """
    parts = []
    closes = closes or {}
    for (root,), sub in keys.group_by("symbol"):
        cal = calendars.get(root)
        if cal is None or sub.is_empty():
            continue
        sched = calendar_schedule(cal, sub["trade_date"].min(), sub["trade_date"].max())
        start = (starts or {}).get(root)
        if start is not None:
            sched = sched.filter(pl.col("trade_date") >= start)
        regular = closes.get(root)
        if regular is not None:
            own = _at_chicago("trade_date", regular.hour, regular.minute)
            sched = sched.with_columns(
                pl.when(pl.col("early_close")).then(pl.col("session_close")).otherwise(own).alias("session_close")
            )
        parts.append(sched.drop("early_close").with_columns(symbol=pl.lit(root, pl.Utf8), scheduled=pl.lit(True)))
    sched = (
        pl.concat(parts) if parts
        else pl.DataFrame(schema={**{k: v for k, v in SCHEDULE_SCHEMA.items() if k != "early_close"},
                                  "symbol": pl.Utf8, "scheduled": pl.Boolean})
    )
    out = keys.join(sched, on=_KEY, how="left")
    fallback_hour = pl.col("symbol").replace_strict(
        {r: c.hour for r, c in closes.items() if c is not None}, default=FALLBACK_CLOSE_HOUR, return_dtype=pl.Int32
    )
    fallback_minute = pl.col("symbol").replace_strict(
        {r: c.minute for r, c in closes.items() if c is not None}, default=0, return_dtype=pl.Int32
    )
    return out.with_columns(
        pl.col("scheduled").fill_null(False),
        pl.coalesce("session_open", _at_chicago("trade_date", FALLBACK_CLOSE_HOUR + 1 - 24)).alias("session_open"),
        pl.coalesce("session_close", _at_chicago("trade_date", fallback_hour, fallback_minute)).alias("session_close"),
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


# Two sources whose records meet within this are one contiguous coverage (an hourly file's last bar opens
# at 23:00 UTC of its last day; the next month's first bar opens at 00:00 UTC).
_JOIN_GAP = timedelta(hours=1)


def merged_spans(spans: pl.DataFrame) -> pl.DataFrame:
    """The union of ``source_spans`` per root as disjoint intervals (symbol, span_start, span_end).

    A landing load's span is first clipped to the trade dates it wrote ([date_from, date_to): from
    21:00 UTC the day before ``date_from``, as a session opens the evening before at 17:00 CT at the
    earliest (22:00 UTC in summer), to 00:00 UTC of ``date_to``, after the last written date's close),
    so a file loaded
    for a few of its dates covers only those; then intervals that overlap or meet within an hour (the
    span of an hourly bar) are merged: a session split across two monthly files is covered by the two.
    """
    schema = {"symbol": pl.Utf8, "span_start": _TS, "span_end": _TS}
    if spans.is_empty():
        return pl.DataFrame(schema=schema)
    lo = pl.col("date_from").cast(pl.Datetime("us")).dt.replace_time_zone("UTC") - pl.duration(hours=3)
    hi = pl.col("date_to").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    clipped = spans.select(
        "symbol",
        pl.when(pl.col("date_from").is_null()).then(pl.col("span_start"))
        .otherwise(pl.max_horizontal("span_start", lo)).alias("span_start"),
        pl.when(pl.col("date_to").is_null()).then(pl.col("span_end"))
        .otherwise(pl.min_horizontal("span_end", hi)).alias("span_end"),
    ).filter(pl.col("span_start") <= pl.col("span_end")).sort("symbol", "span_start")
    reach = pl.col("span_end").cum_max().shift(1).over("symbol")
    group = (pl.col("span_start") > reach + _JOIN_GAP).fill_null(True).cum_sum().over("symbol")
    return (
        clipped.with_columns(_g=group)
        .group_by("symbol", "_g")
        .agg(pl.col("span_start").min(), pl.col("span_end").max())
        .select(schema.keys()).cast(schema).sort("symbol", "span_start")
    )


def _tolerances(
    tolerance: Mapping[str, timedelta] | Mapping[str, Mapping[str, timedelta]] | None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(per frequency: source_freq, _tol_default) and (per root: symbol, source_freq, _tol_root) from a
    per-frequency or per-root mapping, over ``DEFAULT_TOLERANCE``."""
    tolerance = tolerance or {}
    per_root = bool(tolerance) and all(isinstance(v, Mapping) for v in tolerance.values())
    default = {**DEFAULT_TOLERANCE, **({} if per_root else tolerance)}
    dur = pl.Duration("us")
    freq = pl.DataFrame(list(default.items()), schema={"source_freq": pl.Utf8, "_tol_default": dur}, orient="row")
    rows = [(r, f, t) for r, own in (tolerance.items() if per_root else ()) for f, t in own.items()]
    root = pl.DataFrame(rows, schema={"symbol": pl.Utf8, "source_freq": pl.Utf8, "_tol_root": dur}, orient="row")
    return freq, root


def mark_session_complete(
    sessions: pl.DataFrame,
    schedule: pl.DataFrame,
    reach: pl.DataFrame,
    tolerance: Mapping[str, timedelta] | Mapping[str, Mapping[str, timedelta]] | None = None,
) -> pl.DataFrame:
    """``sessions`` (trade_date, symbol, source_freq, last_bar_end, ...) with
    ``session_complete`` and ``session_status`` ('complete' | 'incomplete' | 'partial') set (see the
    module docstring). ``schedule``: ``session_schedule`` of the keys; ``reach``: per root how far its
    loaded data goes (``bar_reach``/``api_reach``; several rows per root allowed); ``tolerance`` per
    source frequency ({"1h": timedelta}), or per root ({"ZL": {"1h": ...}}), over ``DEFAULT_TOLERANCE``."""
    best = reach.group_by("symbol").agg(pl.col("reach").max()) if reach.height else reach
    closes = schedule.select(*_KEY, "session_close", pl.col("scheduled").alias("_scheduled"))
    out = sessions.drop("session_complete", "session_status", strict=False).join(closes, on=_KEY, how="left").join(
        best, on="symbol", how="left"
    )
    by_freq, by_root = _tolerances(tolerance)
    out = out.join(by_freq, on="source_freq", how="left").join(by_root, on=["symbol", "source_freq"], how="left")
    allowed = pl.coalesce("_tol_root", "_tol_default").fill_null(timedelta(0))
    reaches_close = pl.col("last_bar_end") >= pl.col("session_close") - allowed
    data_goes_on = (pl.col("reach") >= pl.col("session_close")).fill_null(False)
    # Bars on a day the calendar has no session for (CME equity on the 2025-01-09 day of mourning: trading
    # until 09:00 CT while pandas_market_calendars lists the day as closed): its real close is unknown, so
    # the session is complete once later data exists, never partial.
    unscheduled = ~pl.col("_scheduled").fill_null(False) & data_goes_on
    complete = ((pl.col("source_freq") == "1d") | reaches_close | unscheduled).fill_null(False)
    status = (
        pl.when(complete).then(pl.lit("complete"))
        .when(data_goes_on).then(pl.lit("partial"))
        .otherwise(pl.lit("incomplete"))
    )
    return (
        out.with_columns(session_status=status)
        .with_columns(session_complete=pl.col("session_status") == "complete")
        .drop("session_close", "reach", "_scheduled", "_tol_default", "_tol_root")
    )


def classify_partitions(
    keys: pl.DataFrame,
    sessions: pl.DataFrame,
    schedule: pl.DataFrame,
    spans: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The status (see the module docstring) of every (trade_date, symbol) of ``keys``.

    ``sessions``: the session bars of those keys (trade_date, symbol, session_complete and, when
    stored, session_status); ``schedule``: ``session_schedule`` of the keys; ``spans``:
    ``source_spans`` of the loaded sources (None = nothing loaded). A calendar session day without a
    bar is ``no_trades`` when the union of the loaded sources (``merged_spans``) spans the whole session
    (records at or before the open and at or after the close), else ``missing``. Returns trade_date, symbol, status, sorted.
    """
    status_col = (
        pl.col("session_status") if "session_status" in sessions.columns
        else pl.lit(None, pl.Utf8)
    )
    have = sessions.select(
        *_KEY, pl.col("session_complete").fill_null(False).alias("_complete"), status_col.alias("_status")
    )
    frame = (
        keys.select(*_KEY).unique()
        .join(have, on=_KEY, how="left")
        .join(schedule.select(*_KEY, "scheduled", "session_open", "session_close"), on=_KEY, how="left")
    )
    covered = pl.lit(False)
    if spans is not None and spans.height:
        no_bar = frame.filter(pl.col("_complete").is_null() & pl.col("scheduled").fill_null(False))
        hit = (
            no_bar.select(*_KEY, "session_open", "session_close")
            .join(merged_spans(spans), on="symbol", how="inner")
            .filter((pl.col("span_start") <= pl.col("session_open")) & (pl.col("span_end") >= pl.col("session_close")))
            .select(*_KEY).unique().with_columns(_covered=pl.lit(True))
        )
        frame = frame.join(hit, on=_KEY, how="left")
        covered = pl.col("_covered").fill_null(False)
    status = (
        pl.when(pl.col("_complete")).then(pl.lit("published"))
        .when(pl.col("_complete").is_not_null() & (pl.col("_status") == "partial")).then(pl.lit("partial"))
        .when(pl.col("_complete").is_not_null()).then(pl.lit("incomplete"))
        .when(~pl.col("scheduled").fill_null(False)).then(pl.lit("no_session"))
        .when(covered).then(pl.lit("no_trades"))
        .otherwise(pl.lit("missing"))
    )
    return frame.select(*_KEY, status.alias("status")).sort("symbol", "trade_date")
