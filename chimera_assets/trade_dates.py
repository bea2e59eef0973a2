"""CME trade dates and product roots.

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
import re
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
# Continuous ("ZL.v.0", "ZL.c.1", "ZL.n.0") and parent ("ZL.FUT", "ZL.OPT") symbols.
_SERIES_RE = re.compile(rf"^({_ROOT})\.(?:[cnv]\.\d+|FUT|OPT|SPOT)$")
# Because the month code must be followed by the trailing digits up to the end (or a spread
# separator), the split is unambiguous: "ZNZ5" -> ZN/Z/5, "MESH25" -> MES/H/25.
_CONTRACT_RE = re.compile(rf"^({_ROOT}?)[{_MONTHS}](?:\d{{1,2}}|\d{{4}})$")

# Vectorised equivalents (Rust regex syntax, same meaning as above).
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
    weekday = shifted.dt.weekday()  # Monday=1 ... Sunday=7
    return (
        pl.when(weekday == 6)
        .then(shifted + pl.duration(days=2))
        .when(weekday == 7)
        .then(shifted + pl.duration(days=1))
        .otherwise(shifted)
        .cast(pl.Date)
        .alias("trade_date")
    )


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
    """Product root of a Databento series symbol or CME contract code.

    Accepted forms: continuous ``ZL.v.0`` / ``ZL.c.0`` / ``ZL.n.1``; parent ``ZL.FUT``;
    outright contracts ``ZLZ5``, ``ESH1``, ``MESH25`` (1, 2 or 4 year digits); calendar spreads
    ``ZLZ5-ZLF6`` (root of the first leg); CME strategy symbols ``ZL:BF Z5-F6-H6``.
    Surrounding whitespace is ignored; matching is case-sensitive (CME codes are upper case).

    Raises ValueError naming the symbol when none of these forms match (e.g. an instrument id
    string like ``"5482"``, an option ``"ESH5 C5000"``, or an empty string).
    """
    if not isinstance(series, str):
        raise ValueError(f"cannot parse a root from non-string symbol {series!r}")
    sym = series.strip()
    m = _SERIES_RE.match(sym)
    if m:
        return m.group(1)
    m = _CONTRACT_RE.match(sym)
    if m and m.group(1):
        return m.group(1)
    if ":" in sym:
        # CME strategy notation "ZL:BF Z5-F6-H6"; "UD:..." user-defined spreads carry no root.
        first = sym.split(":", 1)[0]
        if re.fullmatch(_ROOT, first) and first != "UD":
            return first
    elif "-" in sym:
        m = _CONTRACT_RE.match(sym.split("-", 1)[0])
        if m and m.group(1):
            return m.group(1)
    raise ValueError(f"cannot parse a futures root from symbol {series!r}")


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
