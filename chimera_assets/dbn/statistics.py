"""One chunk of statistics records (settlement, open interest, ...) -> a frame dated by trade date."""

from __future__ import annotations

import numpy as np
import polars as pl

from chimera_assets.dbn.columns import record_frame, trade_dates_from_ts
from chimera_assets.dbn.diagnostics import DecodeStats
from chimera_assets.dbn.symbology import join_symbology


def statistics_chunk(
    arr: np.ndarray, schema: str, mapping: pl.DataFrame, roots: pl.DataFrame | None, stats: DecodeStats
) -> pl.DataFrame:
    """Statistics of one record chunk: trade_date, symbol, series, instrument_id, stat_type, price,
    quantity (NULL when UNDEF), stat_flags, ts_event, ts_recv, ts_ref, update_action, sequence,
    publisher_id. Symbology is joined on the UTC date of ``ts_recv``; unmapped records are dropped
    and counted in ``stats``."""
    frame = record_frame(
        arr,
        map_date_from="ts_recv",
        timestamps=("ts_event", "ts_recv", "ts_ref"),
        prices=("price",),
        ints=("instrument_id", "stat_type", "stat_flags", "update_action", "sequence", "publisher_id"),
        undef_ints=("quantity",),
    )
    out = join_symbology(frame, mapping, roots, stats)
    # ts_ref is the reference (session) time the statistic applies to; when UNDEF (e.g. intraday
    # high/low stats) fall back to the trade date of ts_event.
    ref_td = trade_dates_from_ts(out.get_column("ts_ref"))
    ev_td = trade_dates_from_ts(out.get_column("ts_event"))
    return out.select(
        pl.coalesce(ref_td, ev_td).alias("trade_date"),
        "symbol",
        "series",
        "instrument_id",
        "stat_type",
        "price",
        "quantity",
        "stat_flags",
        "ts_event",
        "ts_recv",
        "ts_ref",
        "update_action",
        "sequence",
        "publisher_id",
    )
