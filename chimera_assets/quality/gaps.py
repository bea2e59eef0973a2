"""The gap days of session bars (SPEC 6.3 and 7): calendar sessions without a publishable session,
each with its status (``no_trades``, ``missing`` or ``partial``, see ``features/session_state.py``).

What the WARN check ``no_missing_sessions`` lists. The status comes from the same pure rules the
session gate applies (``classify_partitions`` over the load ledger's source spans), so the check and
the partitions' metadata never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

import polars as pl

from chimera_assets.features.session_state import classify_partitions, session_schedule, source_spans
from chimera_assets.quality.frames import partition_key_expr
from chimera_assets.quality.registry import PARTITION
from chimera_assets.quality.soft_rules import missing_session_rows
from chimera_assets.schemas import LOAD_STATE
from chimera_assets.universe import get_universe
from chimera_assets.warehouse.base import Warehouse

_KEY = ["trade_date", "symbol"]
GAP_SCHEMA = {PARTITION: pl.Utf8, "trade_date": pl.Date, "symbol": pl.Utf8, "calendar": pl.Utf8, "status": pl.Utf8}


def gap_day_rows(
    wh: Warehouse,
    sessions: pl.DataFrame,
    partitions: Iterable[tuple[date, str]],
    calendars: Mapping[str, str],
    starts: Mapping[str, date] | None = None,
) -> pl.DataFrame:
    """The calendar sessions among ``partitions`` whose root has no publishable session bar in
    ``sessions`` (the stored rows of those partitions: trade_date, symbol and, when present,
    session_status): no row at all (``no_trades`` when a loaded source covers the session, else
    ``missing``) or a row cut short by the vendor (``partial``). Columns of ``GAP_SCHEMA``, sorted."""
    partitions = list(partitions)
    absent = missing_session_rows(sessions.select(_KEY), partitions, calendars, starts)
    out = [absent.with_columns(status=pl.lit("missing")).cast(GAP_SCHEMA)]
    if absent.height:
        universe = get_universe()
        keys = absent.select(_KEY)
        closes = {r: c.session_close for r, c in universe.roots.items() if c.session_close is not None}
        sched = session_schedule(keys, calendars, starts, closes)
        ledger = wh.read(LOAD_STATE) if wh.table_exists(LOAD_STATE) else LOAD_STATE.empty_frame()
        spans = source_spans(ledger, {r: c.series for r, c in universe.roots.items()})
        status = classify_partitions(keys, sessions.clear().select(_KEY).with_columns(
            session_complete=pl.lit(None, pl.Boolean)), sched, spans)
        out = [absent.join(status, on=_KEY, how="left").cast(GAP_SCHEMA)]
    if "session_status" in sessions.columns:
        wanted = pl.DataFrame(partitions, schema={"trade_date": pl.Date, "symbol": pl.Utf8}, orient="row")
        partial = sessions.filter(pl.col("session_status") == "partial").join(wanted, on=_KEY, how="semi")
        out.append(partial.select(
            partition_key_expr("trade_date", "symbol"),
            *_KEY,
            pl.col("symbol").replace_strict(dict(calendars), default=None, return_dtype=pl.Utf8).alias("calendar"),
            pl.lit("partial").alias("status"),
        ).cast(GAP_SCHEMA))
    return pl.concat(out).sort("symbol", "trade_date")
