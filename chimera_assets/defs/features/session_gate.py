"""The gate every date x root feature asset passes: which of its partitions to publish, and why the
others are empty (SPEC 6.3: "days without a publishable session never fail a range").

The rules are pure (``chimera_assets.features.session_state``); this shell reads what they need
(the roots' calendars from the universe, the load ledger) and turns the verdict into metadata. The
one failure left is an asset downstream of session_bars whose run holds a day with raw bars but no
session bar (session_bars was not materialized for it): that partition cannot be built, so the run
stops naming it. See docs/features.md, "Session state".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import dagster as dg
import polars as pl

from chimera_assets.features.session_state import (
    GAP_STATUSES,
    classify_partitions,
    session_schedule,
    source_spans,
)
from chimera_assets.schemas import LOAD_STATE, OHLCV_1D, OHLCV_1H, OHLCV_1M
from chimera_assets.trade_calendar import on_or_after_weekday_expr
from chimera_assets.universe import get_universe
from chimera_assets.warehouse.base import Slice, Warehouse

MAX_LISTED = 20
_KEY = ["trade_date", "symbol"]


class MissingUpstreamError(RuntimeError):
    """A session day of the run has no upstream rows; the message names the partitions and what to run."""


def partition_label(frame: pl.DataFrame) -> list[str]:
    """``"2024-03-04|ZL"`` labels (the Dagster partition keys) of a (trade_date, symbol) frame."""
    labels = frame.select(pl.format("{}|{}", pl.col("trade_date").dt.strftime("%Y-%m-%d"), "symbol"))
    return labels.to_series().to_list()


def _listed(labels: list[str], n: int = 8) -> str:
    return ", ".join(labels[:n]) + (f", ... ({len(labels)} in all)" if len(labels) > n else "")


def calendars_and_starts() -> tuple[dict[str, str], dict]:
    universe = get_universe()
    return ({r: c.calendar for r, c in universe.roots.items()}, {r: c.start for r, c in universe.roots.items()})


def regular_closes() -> dict:
    """Per root, its regular scheduled close (CT) where the universe / product table sets one."""
    return {r: c.session_close for r, c in get_universe().roots.items() if c.session_close is not None}


def series_by_root() -> dict[str, tuple[str, ...]]:
    return {r: c.series for r, c in get_universe().roots.items()}


def schedule_for(keys: pl.DataFrame) -> pl.DataFrame:
    calendars, starts = calendars_and_starts()
    return session_schedule(keys.select(_KEY).unique(), calendars, starts, regular_closes())


def read_ledger(wh: Warehouse) -> pl.DataFrame:
    return wh.read(LOAD_STATE) if wh.table_exists(LOAD_STATE) else LOAD_STATE.empty_frame()


@dataclass(frozen=True)
class Gate:
    """The verdict for one asset's run: ``status`` per run partition (session_state.STATUSES)."""

    asset: str
    status: pl.DataFrame

    def keys(self, status: str) -> pl.DataFrame:
        return self.status.filter(pl.col("status") == status).select(_KEY)

    @property
    def publish(self) -> pl.DataFrame:
        """The (trade_date, symbol) keys whose rows this asset writes."""
        return self.keys("published")

    def metadata(self) -> dict:
        """What the run published and why the other partitions are empty (copied to every partition)."""
        counts = dict(self.status.group_by("status").len().rows())
        out: dict = {"chimera/partitions_published": int(counts.get("published", 0))}
        for status, reason in REASONS.items():
            labels = partition_label(self.keys(status))
            if labels:
                out[f"chimera/{status}"] = dg.MetadataValue.json(
                    {"reason": reason, "count": len(labels), "partitions": labels[:MAX_LISTED]}
                )
        return out

    def gaps(self) -> pl.DataFrame:
        """The run's gap days (no_trades, missing, partial): trade_date, symbol, status."""
        return self.status.filter(pl.col("status").is_in(GAP_STATUSES))


REASONS = {
    "no_session": "no CME session that day (calendar holiday or before the root's start): 0 rows",
    "no_trades": "the calendar lists a session and a loaded source covers it, but the root has no bar: 0 rows",
    "missing": "the calendar lists a session but no loaded source covers it (not loaded yet): 0 rows",
    "partial": "the session's bars stop well before its scheduled close although later data exists "
               "(cut short by the vendor): kept in session_bars, not published",
    "incomplete": "session not complete yet (data does not reach its scheduled close): not published",
}


def gate(
    asset: str, wh: Warehouse, keys: pl.DataFrame, sessions: pl.DataFrame, schedule: pl.DataFrame | None = None
) -> Gate:
    """Classify the run's ``keys`` given its session bars ``sessions`` (trade_date, symbol,
    session_complete, session_status). The ledger is read only when a calendar session day has no bar."""
    keys = keys.select(_KEY).unique()
    sched = schedule if schedule is not None else schedule_for(keys)
    status = classify_partitions(keys, sessions, sched)
    if status.filter(pl.col("status") == "missing").height:
        spans = source_spans(read_ledger(wh), series_by_root())
        status = classify_partitions(keys, sessions, sched, spans)
    return Gate(asset, status)


def raise_if_unbuilt(verdict: Gate, wh: Warehouse, hint: str) -> None:
    """Stop an asset downstream of session_bars when a day of its run has raw bars but no session bar:
    session_bars was not materialized for it (a gap day has no raw bar either, so it never stops)."""
    lacking = verdict.status.filter(pl.col("status").is_in(("no_trades", "missing")))
    if lacking.is_empty():
        return
    unbuilt = lacking.join(raw_days(wh, lacking), on=_KEY, how="semi").sort("symbol", "trade_date")
    if unbuilt.height:
        raise MissingUpstreamError(
            f"{verdict.asset}: no session bars for {_listed(partition_label(unbuilt))} although their raw bars "
            f"are loaded ({hint})"
        )


def raw_days(wh: Warehouse, keys: pl.DataFrame) -> pl.DataFrame:
    """The (trade_date, symbol) pairs among ``keys`` with a raw bar (1m, 1h or 1d); reads only each
    root's [first, last] key range of the raw tables' date and symbol columns."""
    span = keys.group_by("symbol").agg(pl.col("trade_date").min().alias("lo"), pl.col("trade_date").max().alias("hi"))
    slice_ = Slice(tuple((r, lo - timedelta(days=2), hi) for r, lo, hi in sorted(span.rows())))
    found = [pl.DataFrame(schema={"trade_date": pl.Date, "symbol": pl.Utf8})]
    for spec in (OHLCV_1M, OHLCV_1H, OHLCV_1D):
        if wh.table_exists(spec):
            rows = wh.read(spec, slice_, columns=[spec.date_column, "symbol"])
            found.append(rows.select(on_or_after_weekday_expr(spec.date_column).alias("trade_date"), "symbol").unique())
    return pl.concat(found).unique().join(keys.select(_KEY), on=_KEY, how="semi")


def raise_if_stale(asset: str, sessions: pl.DataFrame) -> None:
    """Refuse stored session bars marked incomplete although a later session of the root exists.

    A session becomes complete when later data is loaded and its session_bars partition is re-run
    (the sensors and ``chimera run`` do both). If only the later dates were re-run, the earlier bar
    still says incomplete; features built now would skip it (a pivot from the session before it),
    so the run stops and names it instead.
    """
    if sessions.is_empty():
        return
    last = pl.col("trade_date").max().over("symbol")
    # A partial session (cut short by the vendor, later sessions exist) is final until a corrected file
    # arrives; only a session stored as incomplete that later data now follows is stale.
    waiting = (
        pl.col("session_status").fill_null("incomplete") == "incomplete" if "session_status" in sessions.columns
        else pl.lit(True)
    )
    stale = sessions.filter(~pl.col("session_complete").fill_null(False) & waiting & (pl.col("trade_date") < last))
    if stale.height:
        labels = partition_label(stale.select(_KEY).sort("symbol", "trade_date"))
        raise MissingUpstreamError(
            f"{asset}: session bars of {_listed(labels)} are marked incomplete although later sessions exist "
            f"(materialize features/session_bars for them again first)"
        )


def require_rows(
    asset: str, publish: pl.DataFrame, frame: pl.DataFrame, upstream: str, date_col: str = "trade_date",
    by_symbol: bool = True,
) -> None:
    """Raise naming the partitions of ``publish`` that ``frame`` (an upstream table's rows) lacks."""
    on = [date_col, "symbol"] if by_symbol else [date_col]
    want = publish.rename({"trade_date": date_col}) if date_col != "trade_date" else publish
    if not by_symbol:
        want = want.select(date_col).unique()
    lacking = want.join(frame.select(on).unique(), on=on, how="anti").sort(on)
    if lacking.height:
        labels = (
            partition_label(lacking.rename({date_col: "trade_date"}) if date_col != "trade_date" else lacking)
            if by_symbol else [d.isoformat() for d in lacking[date_col].to_list()]
        )
        raise MissingUpstreamError(
            f"{asset}: no {upstream} rows for {_listed(labels)} (materialize {upstream} for them first)"
        )
