"""The trade calendar: CME trade dates, the weekend rule, weekday partitions, CME sessions, roots.

Everything that decides which calendar date a bar, an event or a partition belongs to lives here
(one module, so the weekend-to-Monday rule and the weekday helpers exist once).

Trade date rule (SPEC section 2): take the UTC timestamp in America/Chicago wall-clock time, add
7 hours, take the calendar date. The evening session (17:00 CT for equity/energy, 19:00 CT for
grains) therefore lands on the next date. A result that falls on a Saturday or Sunday (real data
has a few Sunday-afternoon bars around holidays; a Friday-evening bar would give Saturday) is
moved to the following Monday, so every trade date is Monday-Friday.

Root rule: the product code of a Databento series or contract symbol, e.g. ``ZL.v.0 -> ZL``,
``ZL.FUT -> ZL``, ``ZLZ5 -> ZL``, ``MESH25 -> MES``, ``ZLZ5-ZLF6 -> ZL``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import polars as pl

CME_TZ = "America/Chicago"
_CME_ZONE = ZoneInfo(CME_TZ)
# The +7 h shift: 17:00 CT (and 19:00 CT for grains) becomes 00:00 / 02:00 of the next date.
SESSION_SHIFT_HOURS = 7

# Root: 1-6 characters of upper-case letters/digits ("6E", "10Y", "SR3", "MES").
_ROOT = r"[A-Z0-9]{1,6}"
# CME month codes. A contract is root + month code + 1-2 (or 4) year digits, nothing else.
_MONTHS = "FGHJKMNQUVXZ"
# The patterns (Rust regex syntax, evaluated by polars). Continuous ("ZL.v.0", "ZL.c.1") and parent
# ("ZL.FUT") symbols; a contract, where the month code must be followed by the year digits up to the
# end or a spread separator, so the split is unambiguous: "ZNZ5" -> ZN/Z/5, "MESH25" -> MES/H/25.
_EXPR_SERIES = rf"^({_ROOT})\.(?:[cnv]\.\d+|FUT|OPT|SPOT)$"
_EXPR_CONTRACT = rf"^({_ROOT}?)[{_MONTHS}](?:\d{{1,2}}|\d{{4}})(?:[-:].*)?$"
_EXPR_STRATEGY = rf"^({_ROOT}):"


def trade_date_expr(ts_col: str = "ts_event") -> pl.Expr:
    """Polars expression giving the CME trade date (``pl.Date``) of a timestamp column.

    ``ts_col`` is a ``pl.Datetime`` of any unit; a time-zone-aware column may be in any zone, and a
    naive column is read as UTC (polars' ``convert_time_zone`` semantics; Databento data is UTC).

    The +7 h is added to the Chicago *wall-clock* time (not to the absolute instant) so the rule
    reads exactly as the spec states it, independent of daylight saving: a 17:00 CT bar maps to
    the next date both in CST (23:00 UTC) and CDT (22:00 UTC). Saturday -> +2 days, Sunday -> +1
    day (the following Monday). Nulls stay null.
    """
    local_naive = pl.col(ts_col).dt.convert_time_zone(CME_TZ).dt.replace_time_zone(None)
    shifted = (local_naive + pl.duration(hours=SESSION_SHIFT_HOURS)).dt.date()
    return on_or_after_weekday_expr(shifted).cast(pl.Date).alias("trade_date")


def trade_date_of(ts: dt.datetime) -> dt.date:
    """Scalar CME trade date of one timezone-aware datetime (reference implementation / tests).

    Raises ValueError for a naive datetime (its instant is unknown).
    """
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"trade_date_of needs a timezone-aware datetime, got naive {ts!r}")
    local = ts.astimezone(_CME_ZONE).replace(tzinfo=None)
    d = (local + dt.timedelta(hours=SESSION_SHIFT_HOURS)).date()
    if d.weekday() == 5:
        return d + dt.timedelta(days=2)
    if d.weekday() == 6:
        return d + dt.timedelta(days=1)
    return d


def root_from_series(series: str) -> str:
    """Product root of a Databento series symbol or CME contract code (one symbol).

    Accepted forms: continuous ``ZL.v.0`` / ``ZL.c.0`` / ``ZL.n.1``; parent ``ZL.FUT``;
    outright contracts ``ZLZ5``, ``ESH1``, ``MESH25`` (1, 2 or 4 year digits); calendar spreads
    ``ZLZ5-ZLF6`` and ``ZLZ5:XYZ`` (root of the first leg); CME strategy symbols ``ZL:BF Z5-F6-H6``.
    Surrounding whitespace is ignored; matching is case-sensitive (CME codes are upper case).

    The one parser is :func:`root_expr`; this applies it to a single symbol so the scalar and the
    vectorised answers cannot disagree. Raises ValueError naming the symbol when none of the forms
    match (e.g. an instrument id string like ``"5482"``, an option ``"ESH5 C5000"``, ``""``).
    """
    if not isinstance(series, str):
        raise ValueError(f"cannot parse a root from non-string symbol {series!r}")
    root = pl.select(root_expr(pl.lit(series, dtype=pl.Utf8))).item()
    if root is None:
        raise ValueError(f"cannot parse a futures root from symbol {series!r}")
    return root


def root_expr(col: str | pl.Expr) -> pl.Expr:
    """Vectorised ``root_from_series`` over a string column.

    Same accepted forms as :func:`root_from_series`, but an unparseable symbol gives NULL
    instead of raising (expressions cannot raise per row); callers that must not lose rows should
    check ``is_null()`` on non-null inputs.
    """
    c = (pl.col(col) if isinstance(col, str) else col).str.strip_chars()
    strategy = c.str.extract(_EXPR_STRATEGY, 1)
    return pl.coalesce(
        c.str.extract(_EXPR_SERIES, 1),
        c.str.extract(_EXPR_CONTRACT, 1).replace("", None),
        # "UD:" (user-defined spread) carries no product root.
        pl.when(strategy != "UD").then(strategy),
    )


def is_spread_symbol_expr(col: str | pl.Expr) -> pl.Expr:
    """True when a symbol contains a spread separator ('-' or ':'); NULL input -> False."""
    c = pl.col(col) if isinstance(col, str) else col
    return c.str.contains(r"[-:]").fill_null(False)


def weekday_dates(start: dt.date, end: dt.date) -> list[dt.date]:
    """Mon-Fri calendar dates in [start, end] (the trade-date partition keys of that range; holidays
    included, the CME calendar decides which of them hold a session). Empty when start > end."""
    if start > end:
        return []
    days = pl.date_range(start, end, "1d", eager=True)
    return days.filter(days.dt.weekday() <= 5).to_list()


# --- the weekend rule on single dates -------------------------------------------------------------


def next_weekday(d: dt.date) -> dt.date:
    """The first Monday-Friday date strictly after ``d``."""
    return on_or_after_weekday(d + dt.timedelta(days=1))


def previous_weekday(d: dt.date) -> dt.date:
    """The last Monday-Friday date strictly before ``d``."""
    return on_or_before_weekday(d - dt.timedelta(days=1))


def on_or_after_weekday(d: dt.date) -> dt.date:
    """``d`` when it is Monday-Friday, else the following Monday (the spec's weekend-to-Monday rule)."""
    return d + dt.timedelta(days=max(0, 7 - d.weekday()) if d.weekday() >= 5 else 0)


def first_owned_day(d: dt.date) -> dt.date:
    """The first calendar day trade-date partition ``d`` owns: a Monday also owns the weekend before it
    (the weekend rule sends Saturday and Sunday to Monday)."""
    return d - dt.timedelta(days=2) if d.weekday() == 0 else d


def on_or_before_weekday(d: dt.date) -> dt.date:
    """``d`` when it is Monday-Friday, else the Friday before it."""
    return d - dt.timedelta(days=d.weekday() - 4 if d.weekday() >= 5 else 0)


def weekday_runs(dates: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Consecutive trade-date partitions (Mon-Fri, holidays included) grouped into ``[(first, last)]``:
    a Friday followed by the next Monday is one run. Duplicates are ignored; sorted by first date."""
    runs: list[list[dt.date]] = []
    for d in sorted(set(dates)):
        if runs and next_weekday(runs[-1][1]) == d:
            runs[-1][1] = d
        else:
            runs.append([d, d])
    return [(a, b) for a, b in runs]


# --- CME sessions (pandas_market_calendars), cached: building a schedule is slow -------------------


@lru_cache(maxsize=256)
def _valid_days(calendar: str, start: date, end: date) -> tuple[date, ...]:
    import pandas_market_calendars as mcal

    days = mcal.get_calendar(calendar).valid_days(start.isoformat(), end.isoformat())
    return tuple(d.date() for d in days)


def expected_sessions(calendar: str, start: date, end: date) -> list[date]:
    """Trade dates in [start, end] on which the CME calendar ``calendar`` (a pandas_market_calendars
    name, e.g. CME_Agriculture) has a session, early closes included."""
    if start > end:
        return []
    return list(_valid_days(calendar, start, end))


@lru_cache(maxsize=256)
def _early_closes(calendar: str, start: date, end: date) -> tuple[date, ...]:
    import pandas_market_calendars as mcal

    cal = mcal.get_calendar(calendar)
    sched = cal.schedule(start.isoformat(), end.isoformat())
    return tuple(d.date() for d in cal.early_closes(sched).index)


def early_close_sessions(calendar: str, start: date, end: date) -> list[date]:
    """Sessions in [start, end] that the calendar closes early (holiday hours)."""
    return [] if start > end else list(_early_closes(calendar, start, end))


def early_close_keys(sessions: pl.DataFrame, calendars: Mapping[str, str]) -> set[tuple[date, str]]:
    """(trade_date, root) pairs of ``sessions`` (columns trade_date, symbol) that are early closes."""
    out: set[tuple[date, str]] = set()
    if sessions.is_empty():
        return out
    for (root,), sub in sessions.group_by("symbol"):
        cal = calendars.get(root)
        if cal is not None:
            out |= {(d, root) for d in early_close_sessions(cal, sub["trade_date"].min(), sub["trade_date"].max())}
    return out


@lru_cache(maxsize=64)
def _session_closes(calendar: str, day: date) -> tuple[tuple[date, datetime], ...]:
    """(trade date, close in UTC) of the sessions from 20 days before ``day`` to the day after.
    Cached per calendar and day: building a schedule costs ~0.1 s and every root asks."""
    import pandas_market_calendars as mcal

    sched = mcal.get_calendar(calendar).schedule(
        (day - timedelta(days=20)).isoformat(), (day + timedelta(days=1)).isoformat()
    )
    return tuple((d.date(), c.to_pydatetime().astimezone(UTC)) for d, c in zip(sched.index, sched["market_close"],
                                                                                strict=True))


def latest_closed_session(calendar: str, as_of: datetime) -> date | None:
    """The last trade date whose session closed at or before ``as_of``."""
    as_of = as_of.astimezone(UTC)
    closed = [d for d, close in _session_closes(calendar, as_of.date()) if close <= as_of]
    return closed[-1] if closed else None


def expected_partitions(
    partitions: Iterable[tuple[date, str]],
    calendars: Mapping[str, str],
    starts: Mapping[str, date] | None = None,
) -> set[tuple[date, str]]:
    """The (trade_date, root) pairs among ``partitions`` on which the root's calendar has a session
    (roots without a calendar and dates before a root's start are not expected)."""
    by_root: dict[str, list[date]] = {}
    for d, s in set(partitions):
        by_root.setdefault(s, []).append(d)
    out: set[tuple[date, str]] = set()
    for root, days in by_root.items():
        cal = calendars.get(root)
        if cal is None:
            continue
        expected = set(expected_sessions(cal, min(days), max(days)))
        start = (starts or {}).get(root)
        out |= {(d, root) for d in days if d in expected and (start is None or d >= start)}
    return out


# Session open/close instants (UTC) of a calendar's sessions, as the session gate compares bars with them.
_TS = pl.Datetime("us", "UTC")
SCHEDULE_SCHEMA = {"trade_date": pl.Date, "session_open": _TS, "session_close": _TS, "early_close": pl.Boolean}

# Early closes the pandas_market_calendars 5.5 calendars lack, as (calendar names, date, close CT).
# Each was seen in the vendor's bars (the real batch: every liquid root of the family stops at that
# time while the calendar says 16:00) and matches CME's holiday trading hours for that day. Without
# them a holiday session would count as cut short by the vendor (SPEC 6.3 ``partial``).
_ENERGY_METALS = frozenset({
    "CMEGlobex_Crude", "CMEGlobex_CL", "CMEGlobex_CrudeAndRefined", "CMEGlobex_Energy", "CMEGlobex_EnergyAndMetals",
    "CMEGlobex_NatGas", "CMEGlobex_NG", "CMEGlobex_Gas", "CMEGlobex_RB", "CMEGlobex_HO", "CMEGlobex_NYHarbor",
    "CMEGlobex_MicroCrude", "CMEGlobex_MCL", "CMEGlobex_Metals", "CMEGlobex_PreciousMetals", "CMEGlobex_Gold",
    "CMEGlobex_GC", "CMEGlobex_Silver", "CMEGlobex_SI", "CMEGlobex_Platinum", "CMEGlobex_PL",
    "CMEGlobex_BaseMetals", "CMEGlobex_Copper", "CMEGlobex_HG",
})
_RATES_FX = frozenset({
    "CME_Rate", "CBOT_Rate", "CME_InterestRate", "CBOT_InterestRate", "CME_Bond", "CBOT_Bond",
    "CMEGlobex_FX", "CME_FX", "CME_Currency",
})
EARLY_CLOSE_FIXES: tuple[tuple[frozenset[str], date, dt.time], ...] = (
    (_ENERGY_METALS, date(2024, 12, 24), dt.time(12, 45)),  # Christmas Eve: NYMEX/COMEX close 13:45 ET
    (_ENERGY_METALS, date(2025, 12, 24), dt.time(12, 45)),
    (_RATES_FX, date(2024, 6, 19), dt.time(12, 0)),  # Juneteenth: rates and FX halt at 12:00 CT
    (_RATES_FX, date(2025, 6, 19), dt.time(12, 0)),
    (_RATES_FX, date(2025, 7, 4), dt.time(12, 0)),  # Independence Day on a Friday
)


def _fixed_close(calendar: str, day: date, close: datetime) -> tuple[datetime, bool]:
    for calendars, fix_day, fix_time in EARLY_CLOSE_FIXES:
        if day == fix_day and calendar in calendars:
            fixed = datetime.combine(day, fix_time, tzinfo=_CME_ZONE).astimezone(UTC)
            if fixed < close:
                return fixed, True
    return close, False


@lru_cache(maxsize=128)
def _schedule_rows(calendar: str, start: date, end: date) -> tuple[tuple[date, datetime, datetime, bool], ...]:
    import pandas_market_calendars as mcal

    cal = mcal.get_calendar(calendar)
    sched = cal.schedule(start.isoformat(), end.isoformat())
    early = {d.date() for d in cal.early_closes(sched).index} if len(sched) else set()
    rows = []
    for d, o, c in zip(sched.index, sched["market_open"], sched["market_close"], strict=True):
        close, fixed = _fixed_close(calendar, d.date(), c.to_pydatetime())
        rows.append((d.date(), o.to_pydatetime(), close, fixed or d.date() in early))
    return tuple(rows)


def calendar_schedule(calendar: str, start: date, end: date) -> pl.DataFrame:
    """Sessions of ``calendar`` (a pandas_market_calendars name) with trade dates in [start, end]:
    trade_date, session_open, session_close (UTC instants; early closes included, with the fixes of
    ``EARLY_CLOSE_FIXES``), early_close (the close is a holiday close, earlier than the regular one)."""
    if start > end:
        return pl.DataFrame(schema=SCHEDULE_SCHEMA)
    rows = _schedule_rows(calendar, start, end)
    return pl.DataFrame(rows, schema=SCHEDULE_SCHEMA, orient="row")


# --- the weekend rule on date columns (vectorised) --------------------------------------------------


def is_weekday_expr(col: str | pl.Expr) -> pl.Expr:
    """True where a Date column is Monday-Friday (NULL stays NULL)."""
    d = pl.col(col) if isinstance(col, str) else col
    return d.dt.weekday() <= 5


def on_or_after_weekday_expr(col: str | pl.Expr) -> pl.Expr:
    """Vectorised :func:`on_or_after_weekday`: a Saturday or Sunday moves to the following Monday (the
    trade-date partition a calendar date belongs to); Monday-Friday and NULL are unchanged."""
    d = pl.col(col) if isinstance(col, str) else col
    wd = d.dt.weekday()  # Monday=1 ... Sunday=7
    return pl.when(wd >= 6).then(d + pl.duration(days=8 - wd)).otherwise(d)
