"""The policy features' cut-off instants: one per distinct session close of the universe's roots.

SPEC 6.4: a root's policy values use the events before that root's own session close (13:20 CT for
grains, 16:00 CT for equity index, early closes on holidays ...). ``features.policy_features`` is
therefore keyed by (trade_date, cutoff): for each trade date, one row per distinct close instant of
the roots on that date. The consolidated frame joins a root's row on (data_date, timestamp = the
root's session close), so both sides MUST take the close from the same function,
:func:`chimera_assets.features.session_state.session_schedule`: it is called in one place,
:func:`root_cutoffs`.

Pure polars (no Dagster).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

import polars as pl

from chimera_assets.features.session_state import session_schedule
from chimera_assets.universe import Universe, get_universe

CUTOFF_SCHEMA = {"trade_date": pl.Date(), "cutoff": pl.Datetime("us", "UTC")}


def _dates(dates: Iterable[date] | pl.Series) -> pl.Series:
    s = dates if isinstance(dates, pl.Series) else pl.Series("trade_date", list(dates), dtype=pl.Date)
    if s.null_count():
        raise ValueError("trade dates contain NULL")
    return s.cast(pl.Date).unique().sort().alias("trade_date")


def root_cutoffs(
    dates: Iterable[date] | pl.Series, universe: Universe | None = None, roots: Sequence[str] | None = None
) -> pl.DataFrame:
    """Every (trade_date, symbol) of ``dates`` x ``roots`` (default: every universe root) with ``cutoff``
    = the root's scheduled session close instant (UTC) from ``session_schedule`` (the root's calendar,
    or its universe ``session_close`` on regular days, early closes included; a day without a calendar
    session, or before the root's ``start``, gets the
    16:00 CT fallback close of ``session_schedule``). Sorted by (trade_date, symbol)."""
    uni = universe or get_universe()
    names = list(roots) if roots is not None else uni.root_names
    days = _dates(dates)
    keys = days.to_frame().join(pl.DataFrame({"symbol": names}, schema={"symbol": pl.Utf8}), how="cross")
    calendars = {r: uni.roots[r].calendar for r in names}
    starts = {r: uni.roots[r].start for r in names}
    # Per root, its regular close where the universe sets one (RootConfig.session_close), as the
    # consolidated frame's schedule (session_gate.schedule_for) passes it.
    closes = {r: uni.roots[r].session_close for r in names if uni.roots[r].session_close is not None}
    # The single call to session_schedule (the consolidated join must see the same instants).
    sched = session_schedule(keys, calendars, starts, closes)
    return sched.select(
        pl.col("trade_date").cast(pl.Date),
        pl.col("symbol").cast(pl.Utf8),
        pl.col("session_close").cast(pl.Datetime("us", "UTC")).alias("cutoff"),
    ).sort("trade_date", "symbol")


def policy_cutoffs(
    dates: Iterable[date] | pl.Series, universe: Universe | None = None, roots: Sequence[str] | None = None
) -> pl.DataFrame:
    """The (trade_date, cutoff) rows of ``features.policy_features`` for ``dates``: per date, the
    distinct session close instants (UTC) of ``roots`` (default every universe root; see
    :func:`root_cutoffs`). With the 7 default roots: 13:20 CT (ZL, ZS, ZM, ZC) and 16:00 CT (MES, ES,
    CL) on regular days, plus the early closes of holidays. Sorted by (trade_date, cutoff)."""
    out = root_cutoffs(dates, universe, roots).select("trade_date", "cutoff").unique()
    return out.cast(CUTOFF_SCHEMA).sort("trade_date", "cutoff")  # type: ignore[arg-type]
