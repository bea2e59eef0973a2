"""Floor-trader pivots (SPEC 6.4 "pivots") from session bars. All levels in native price units."""

from __future__ import annotations

import polars as pl

from chimera_assets.schemas import PIVOTS

# The columns of features.pivots (declared in schemas.py).
PIVOT_SCHEMA: dict[str, pl.DataType] = PIVOTS.polars_schema()

_LEVELS = ["P", "R1", "R2", "R3", "S1", "S2", "S3"]


def _weekly_pivots(sb: pl.DataFrame) -> pl.DataFrame:
    """WP per (symbol, ISO week): (max high + min low + last close) / 3 over the week's sessions.

    Only sessions of the contract that traded the week's last session count, so a roll or a one-day
    flip to another contract inside the week does not mix two price levels into one range.
    """
    last_inst = pl.col("instrument_id").sort_by("trade_date").last().over("symbol", "_week")
    return (
        sb.filter(pl.col("instrument_id") == last_inst)
        .group_by("symbol", "_week")
        .agg(
            pl.col("high").max().alias("_wh"),
            pl.col("low").min().alias("_wl"),
            pl.col("close").sort_by("trade_date").last().alias("_wc"),
        )
        .select(
            "symbol",
            # Keyed by the week it is used in: the week after the one it summarises.
            (pl.col("_week") + pl.duration(weeks=1)).alias("_week"),
            ((pl.col("_wh") + pl.col("_wl") + pl.col("_wc")) / 3.0).alias("weekly_pivot"),
        )
    )


def compute_pivots(session_bars: pl.DataFrame) -> pl.DataFrame:
    """Daily and weekly pivots for every row of ``session_bars`` (needs trade_date, symbol,
    instrument_id, high, low, close).

    H, L, C = previous session's high/low/close of the same symbol (the previous row by trade_date,
    whatever its contract); P = (H+L+C)/3, R1 = 2P-L, S1 = 2P-H, R2 = P+(H-L), S2 = P-(H-L),
    R3 = H+2(P-L), S3 = L-2(H-P). price = today's close; distance_to_P = price-P (signed);
    distance_to_nearest_pivot = min |price-level| over P, R1..R3, S1..S3; price_above_P = price > P.
    A symbol's first session has NULL levels, distances and price_above_P, and pivot_roll_flag False.
    pivot_roll_flag = previous session was another instrument_id (levels then come from the old
    contract: the caller decides whether to trust them).

    weekly_pivot: WP of the immediately preceding ISO week (Mon-Sun) with H = max high, L = min low,
    C = last close of its sessions (only those of the week's last contract); NULL when that week has
    no sessions. weekly_pivot_distance = |price - WP|. Uses only sessions before the row's week, so it
    is point in time.
    """
    order = {"partition_by": "symbol", "order_by": "trade_date"}
    sb = session_bars.select(
        pl.col("trade_date").cast(pl.Date),
        pl.col("symbol").cast(pl.Utf8),
        pl.col("instrument_id").cast(pl.Int64),
        *[pl.col(c).cast(pl.Float64) for c in ("high", "low", "close")],
    ).with_columns(_week=pl.col("trade_date").dt.truncate("1w"))

    H, L, C, P = pl.col("prev_high"), pl.col("prev_low"), pl.col("prev_close"), pl.col("P")
    price = pl.col("price")
    out = (
        sb.with_columns(
            prev_high=pl.col("high").shift(1).over(**order),
            prev_low=pl.col("low").shift(1).over(**order),
            prev_close=pl.col("close").shift(1).over(**order),
            pivot_roll_flag=(
                pl.col("instrument_id") != pl.col("instrument_id").shift(1).over(**order)
            ).fill_null(False),
            price=pl.col("close"),
        )
        .with_columns(P=(H + L + C) / 3.0)
        .with_columns(
            R1=2 * P - L,
            S1=2 * P - H,
            R2=P + (H - L),
            S2=P - (H - L),
            R3=H + 2 * (P - L),
            S3=L - 2 * (H - P),
            distance_to_P=price - P,
            price_above_P=price > P,
        )
        .with_columns(
            distance_to_nearest_pivot=pl.min_horizontal([(price - pl.col(x)).abs() for x in _LEVELS])
        )
        .join(_weekly_pivots(sb), on=["symbol", "_week"], how="left")
        .with_columns(weekly_pivot_distance=(price - pl.col("weekly_pivot")).abs())
    )
    return out.select([pl.col(c).cast(t) for c, t in PIVOT_SCHEMA.items()]).sort("symbol", "trade_date")
