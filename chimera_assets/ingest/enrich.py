"""Columns a raw load adds from other raw tables: definitions (raw_symbol, is_spread) and, for
ohlcv-1d, settlements and open interest from statistics. Pure polars plus warehouse reads."""

from __future__ import annotations

import polars as pl

from chimera_assets.schemas import DEFINITIONS, OHLCV_1D, STATISTICS, TableSpec
from chimera_assets.warehouse.base import Slice, Warehouse


def _latest_definitions(wh: Warehouse) -> pl.DataFrame:
    """The latest known definition per instrument_id (raw_symbol, instrument class); may be empty."""
    defs = wh.read(DEFINITIONS, columns=["instrument_id", "valid_date", "raw_symbol", "instrument_class"])
    return defs.sort("valid_date").group_by("instrument_id").last().select(
        "instrument_id", pl.col("raw_symbol").alias("_def_raw"), pl.col("instrument_class").alias("_cls")
    )


def _attach_definitions(frame: pl.DataFrame, latest: pl.DataFrame) -> pl.DataFrame:
    """raw_symbol (and is_spread from the instrument class) from known definitions, else as decoded."""
    if frame.is_empty() or "raw_symbol" not in frame.columns or latest.is_empty():
        return frame
    return (
        frame.join(latest, on="instrument_id", how="left")
        .with_columns(
            pl.coalesce("_def_raw", "raw_symbol").alias("raw_symbol"),
            pl.when(pl.col("_cls").is_not_null())
            .then(pl.col("_cls").is_in(["S", "T", "M"]))
            .otherwise(pl.col("is_spread"))
            .alias("is_spread"),
        )
        .drop("_def_raw", "_cls")
    )


def _attach_settlements(frame: pl.DataFrame, stats: pl.DataFrame) -> pl.DataFrame:
    """settle (stat_type 3 price) and open_interest (stat_type 9 quantity) for the 1d table, from the
    statistics rows of the partitions being written."""
    if stats.is_empty() or frame.is_empty():
        return frame
    key = ["trade_date", "symbol", "instrument_id"]
    settle = stats.filter(pl.col("stat_type") == 3).select(*key, pl.col("price").alias("_settle"))
    oi = stats.filter(pl.col("stat_type") == 9).select(*key, pl.col("quantity").alias("_oi"))
    return (
        frame.join(settle.rename({"trade_date": "date"}), on=["date", "symbol", "instrument_id"], how="left")
        .join(oi.rename({"trade_date": "date"}), on=["date", "symbol", "instrument_id"], how="left")
        .with_columns(
            pl.coalesce("_settle", "settle").alias("settle"), pl.coalesce("_oi", "open_interest").alias("open_interest")
        )
        .drop("_settle", "_oi")
    )


def enrich_hook(spec: TableSpec, wh: Warehouse, load: list):
    """The frame hook of a load: definitions (raw_symbol, is_spread) and, for ohlcv-1d, settlements."""
    defs = _latest_definitions(wh) if spec is not DEFINITIONS and spec is not STATISTICS else None
    stats = wh.read(STATISTICS, Slice.from_keys(load)) if spec is OHLCV_1D and load else None

    def hook(frame: pl.DataFrame, _block) -> pl.DataFrame:
        if stats is not None:
            frame = _attach_settlements(frame, stats)
        if defs is not None:
            frame = _attach_definitions(frame, defs)
        return frame

    return hook
