"""CME session calendars (pandas_market_calendars) as the quality rules need them: expected sessions,
early closes, the latest closed session. Cached: building a schedule is slow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import polars as pl


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
