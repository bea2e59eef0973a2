"""The gate every date x root feature asset passes: which of its partitions to publish, which may be
empty, and one clear error when upstream rows are missing ("no green without data", SPEC 6.3).

The rules are pure (``chimera_assets.features.session_state``); this shell reads what they need
(the roots' calendars from the universe, the load ledger) and turns the verdict into metadata or an
exception. See docs/features.md, "Session state".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import dagster as dg
import polars as pl

from chimera_assets.features.session_state import (
    NEIGHBOUR_DAYS_AFTER,
    NEIGHBOUR_DAYS_BEFORE,
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


def series_by_root() -> dict[str, tuple[str, ...]]:
    return {r: c.series for r, c in get_universe().roots.items()}


def schedule_for(keys: pl.DataFrame) -> pl.DataFrame:
    calendars, starts = calendars_and_starts()
    return session_schedule(keys.select(_KEY).unique(), calendars, starts)


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

    def raise_if_missing(self, upstream: str, hint: str) -> None:
        missing = partition_label(self.keys("missing"))
        if missing:
            raise MissingUpstreamError(f"{self.asset}: no {upstream} for {_listed(missing)} ({hint})")

    def metadata(self) -> dict:
        """What the run published and why the other partitions are empty (copied to every partition)."""
        counts = dict(self.status.group_by("status").len().rows())
        out: dict = {"chimera/partitions_published": int(counts.get("published", 0))}
        reasons = {
            "no_session": "no CME session that day (calendar holiday or before the root's start): 0 rows",
            "no_trades": "the calendar lists a session but the loaded source spans it without a bar: 0 rows",
            "incomplete": "session not complete yet (data does not reach its scheduled close): not published",
            "not_started": "a load wrote this date but its data ends before the session opens: waiting, 0 rows",
        }
        for status, reason in reasons.items():
            labels = partition_label(self.keys(status))
            if labels:
                out[f"chimera/{status}"] = dg.MetadataValue.json(
                    {"reason": reason, "count": len(labels), "partitions": labels[:MAX_LISTED]}
                )
        return out


def gate(
    asset: str, wh: Warehouse, keys: pl.DataFrame, sessions: pl.DataFrame, schedule: pl.DataFrame | None = None
) -> Gate:
    """Classify the run's ``keys`` given its session bars ``sessions`` (trade_date, symbol,
    session_complete). The ledger is read only when a calendar session day has no bar."""
    keys = keys.select(_KEY).unique()
    sched = schedule if schedule is not None else schedule_for(keys)
    status = classify_partitions(keys, sessions, sched)
    missing = status.filter(pl.col("status") == "missing")
    if missing.height:
        spans = source_spans(read_ledger(wh), series_by_root())
        status = classify_partitions(keys, sessions, sched, spans, raw_days_around(wh, missing))
    return Gate(asset, status)


def raw_days_around(wh: Warehouse, keys: pl.DataFrame) -> pl.DataFrame:
    """The (trade_date, symbol) pairs with a raw bar (1m, 1h or 1d) from NEIGHBOUR_DAYS_BEFORE days
    before each root's first key to NEIGHBOUR_DAYS_AFTER days after its last one."""
    span = keys.group_by("symbol").agg(pl.col("trade_date").min().alias("lo"), pl.col("trade_date").max().alias("hi"))
    slice_ = Slice(tuple(
        (r, lo - timedelta(days=NEIGHBOUR_DAYS_BEFORE), hi + timedelta(days=NEIGHBOUR_DAYS_AFTER))
        for r, lo, hi in sorted(span.rows())
    ))
    found = [pl.DataFrame(schema={"trade_date": pl.Date, "symbol": pl.Utf8})]
    for spec in (OHLCV_1M, OHLCV_1H, OHLCV_1D):
        if wh.table_exists(spec):
            rows = wh.read(spec, slice_, columns=[spec.date_column, "symbol"])
            found.append(rows.select(on_or_after_weekday_expr(spec.date_column).alias("trade_date"), "symbol").unique())
    return pl.concat(found).unique()


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
    stale = sessions.filter(~pl.col("session_complete").fill_null(False) & (pl.col("trade_date") < last))
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
