"""One chunk of definition records (instrument definitions) -> a frame with each instrument's root.

Definitions are symbology themselves: every record is kept, with its series only where the file's
mappings name it. The root is CME's ``asset`` (product code), else parsed from the raw symbol.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from chimera_assets.dbn.columns import record_frame
from chimera_assets.dbn.diagnostics import DecodeStats
from chimera_assets.trade_calendar import root_expr

# Definition instrument classes that are spreads: future spread, option spread, mixed spread.
SPREAD_INSTRUMENT_CLASSES = ("S", "T", "M")


def definition_chunk(
    arr: np.ndarray, schema: str, mapping: pl.DataFrame, roots: pl.DataFrame | None, stats: DecodeStats
) -> pl.DataFrame:
    """Definitions of one record chunk: instrument_id, valid_date (UTC date of ts_recv), raw_symbol,
    root, instrument_class, expiration, min_price_increment, series (NULL when unmapped), is_spread,
    asset, group, exchange, security_type, cfi, currency, unit_of_measure, unit_of_measure_qty,
    display_factor, activation, leg_count, security_update_action, ts_event, ts_recv, publisher_id.

    Fields an older layout lacks (display_factor, unit_of_measure_qty, leg_count, any string) are NULL.
    ``roots`` and ``stats`` are unused: the builder signature is shared with the other schemas.
    """
    frame = record_frame(
        arr,
        map_date_from="ts_recv",
        timestamps=("expiration", "activation", "ts_event", "ts_recv"),
        prices=("min_price_increment", "display_factor", "unit_of_measure_qty"),
        ints=("instrument_id", "publisher_id"),
        undef_ints=("leg_count",),
        strings=(
            "raw_symbol", "asset", "group", "exchange", "security_type", "cfi", "currency",
            "unit_of_measure", "instrument_class", "security_update_action",
        ),
        optional=("display_factor", "unit_of_measure_qty", "leg_count"),
    )
    out = frame.join(mapping, on=["instrument_id", "map_date"], how="left", maintain_order="left")
    return out.select(
        "instrument_id",
        pl.col("map_date").alias("valid_date"),
        "raw_symbol",
        # CME's asset (product code, e.g. "ES") is the root; fall back to parsing the raw symbol.
        pl.coalesce(pl.col("asset"), root_expr("raw_symbol")).alias("root"),
        "instrument_class",
        "expiration",
        "min_price_increment",
        "series",
        (
            pl.col("instrument_class").is_in(SPREAD_INSTRUMENT_CLASSES).fill_null(False)
            | pl.col("raw_symbol").str.contains(r"[-:]").fill_null(False)
        ).alias("is_spread"),
        "asset",
        "group",
        "exchange",
        "security_type",
        "cfi",
        "currency",
        "unit_of_measure",
        "unit_of_measure_qty",
        "display_factor",
        "activation",
        "leg_count",
        "security_update_action",
        "ts_event",
        "ts_recv",
        "publisher_id",
    )
