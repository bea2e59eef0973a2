"""Golden-zone retracement features (SPEC 6.4 "golden_zone") from 1h bars.

Swings come from a causal zig-zag on 1h closes; a leg is the pair of the last two confirmed swings.
Prices in native quote units; volume in contracts.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from chimera_assets.features.session_bars import clean_intraday
from chimera_assets.schemas import GOLDEN_ZONE

ATR_WINDOW = 14
REVERSAL_ATR_MULT = 3.0
VOL_SMA_WINDOW = 20
TRIGGER_VOL_MULT = 1.5
FIB_MID = 0.5
FIB_GOLDEN = 0.618

# The columns of features.golden_zone (declared in schemas.py).
GOLDEN_ZONE_SCHEMA: dict[str, pl.DataType] = GOLDEN_ZONE.polars_schema()


def zigzag_swings(
    close: np.ndarray, threshold: np.ndarray, seg_start: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Causal zig-zag over closes, one pass over all series at once.

    ``threshold[i]`` is the reversal distance at bar i (NaN = not yet known: no swing can be confirmed).
    ``seg_start[i]`` True resets all state (new symbol or new contract). A swing high at bar h is
    confirmed at the first bar i > h whose close is >= threshold[i] below the highest close since the
    last confirmed swing low (mirror for lows); before the first swing both extremes are tracked and the
    first reversal seen decides the direction. Values at bar i use closes[:i+1] only.

    Returns per bar: swing_high, swing_low (NaN until two swings are confirmed in the segment),
    leg_dir (+1 up-leg = the low came first, -1 down-leg, 0 none) and leg_id (changes at every
    confirmation and every reset, so it keys "the current leg").
    """
    n = len(close)
    c = close.tolist()
    t = threshold.tolist()
    s = seg_start.tolist()
    out_hi = [math.nan] * n
    out_lo = [math.nan] * n
    out_dir = [0] * n
    out_leg = [0] * n
    leg = 0
    trend = 0
    hi = lo = math.nan
    hi_i = lo_i = 0
    last_px = prev_px = math.nan
    last_is_high = False
    nswing = 0
    for i in range(n):
        ci = c[i]
        if s[i]:
            leg += 1
            trend, nswing = 0, 0
            hi = lo = ci
            hi_i = lo_i = i
        else:
            ti = t[i]
            confirm = 0  # +1 confirms the tracked high, -1 the tracked low
            if trend == 0:
                if ci > hi:
                    hi, hi_i = ci, i
                elif ci < lo:
                    lo, lo_i = ci, i
                up, down = ci - lo >= ti, hi - ci >= ti
                # Both can hold after a wide range: the later extreme is the one price just turned from.
                if up and (not down or lo_i > hi_i):
                    confirm = -1
                elif down:
                    confirm = 1
            elif trend == 1:
                if ci > hi:
                    hi, hi_i = ci, i
                elif hi - ci >= ti:
                    confirm = 1
            elif ci < lo:
                lo, lo_i = ci, i
            elif ci - lo >= ti:
                confirm = -1
            if confirm:
                leg += 1
                nswing += 1
                prev_px = last_px
                # The next candidate is the opposite extreme since the confirmed swing (threshold moves
                # with ATR, so it need not be today's close).
                if confirm == 1:
                    last_px, last_is_high, trend = hi, True, -1
                    window = c[hi_i + 1 : i + 1]
                    lo = min(window)
                    lo_i = hi_i + 1 + window.index(lo)
                else:
                    last_px, last_is_high, trend = lo, False, 1
                    window = c[lo_i + 1 : i + 1]
                    hi = max(window)
                    hi_i = lo_i + 1 + window.index(hi)
        out_leg[i] = leg
        if nswing >= 2:
            if last_is_high:
                out_hi[i], out_lo[i], out_dir[i] = last_px, prev_px, 1
            else:
                out_hi[i], out_lo[i], out_dir[i] = prev_px, last_px, -1
    return (
        np.asarray(out_hi, dtype=np.float64),
        np.asarray(out_lo, dtype=np.float64),
        np.asarray(out_dir, dtype=np.int8),
        np.asarray(out_leg, dtype=np.int64),
    )


def golden_zone_bars(bars_1h: pl.DataFrame, roots: set[str]) -> pl.DataFrame:
    """Bar-level golden-zone values, one row per 1h bar of the roots, sorted by symbol, ts_event.

    Bars: non-spread, deduplicated, in time order per symbol (one series per root expected: bars of
    several contracts interleaved would restart the zig-zag at every change). All bars are kept, also
    an old contract's evening bars on a roll day, so every bar's values are causal (a per-session
    contract choice is only known at the session's end). Segments = runs of one contract per symbol;
    ATR, SMA20, the 5-bar volume slope and the zig-zag all restart at a segment start, so no return,
    range or swing spans two contracts. ATR14 = simple mean of the last 14 true ranges
    (TR = max(H, prev C) - min(L, prev C); H - L on a segment's first bar); NULL before 14 bars.
    A trigger needs the previous bar in the same leg, so a leg's first bar never triggers.
    Columns added: atr, swing_high, swing_low, leg_dir, leg_id, fib_50, fib_618, state, vol_sma20,
    vol_decay_slope, qualified_trigger.
    """
    h = clean_intraday(bars_1h)
    if h is None:
        return pl.DataFrame()
    h = h.filter(pl.col("symbol").is_in(sorted(roots)))
    if h.height == 0:
        return pl.DataFrame()
    h = h.sort("symbol", "ts_event")

    seg_start = (pl.col("symbol") != pl.col("symbol").shift(1)) | (
        pl.col("instrument_id") != pl.col("instrument_id").shift(1)
    )
    h = h.with_columns(_seg_start=seg_start.fill_null(True)).with_columns(_seg=pl.col("_seg_start").cum_sum())
    prev_close = pl.col("close").shift(1).over("_seg")
    tr = pl.max_horizontal("high", prev_close) - pl.min_horizontal("low", prev_close)
    v = pl.col("volume").cast(pl.Float64)
    # OLS slope over x = 0..4 is sum((x-2) * v_x) / 10; divided by the mean volume it is scale free.
    lag = [v.shift(k).over("_seg") for k in range(5)]
    slope = (2 * lag[0] + lag[1] - lag[3] - 2 * lag[4]) / 10.0
    mean5 = (lag[0] + lag[1] + lag[2] + lag[3] + lag[4]) / 5.0
    h = h.with_columns(
        atr=tr.rolling_mean(ATR_WINDOW, min_samples=ATR_WINDOW).over("_seg"),
        vol_sma20=v.rolling_mean(VOL_SMA_WINDOW, min_samples=VOL_SMA_WINDOW).over("_seg"),
        _decay_bar=pl.when(mean5 > 0).then(slope / mean5),
    )

    thr = (h["atr"] * REVERSAL_ATR_MULT).fill_null(float("nan")).to_numpy()
    sw_hi, sw_lo, leg_dir, leg_id = zigzag_swings(h["close"].to_numpy(), thr, h["_seg_start"].to_numpy())
    h = h.with_columns(
        swing_high=pl.Series(sw_hi).fill_nan(None),
        swing_low=pl.Series(sw_lo).fill_nan(None),
        leg_dir=pl.Series(leg_dir),
        leg_id=pl.Series(leg_id),
    )

    H, L, c = pl.col("swing_high"), pl.col("swing_low"), pl.col("close")
    up = pl.col("leg_dir") == 1
    R = H - L
    h = h.with_columns(
        fib_50=pl.when(up).then(H - FIB_MID * R).otherwise(L + FIB_MID * R),
        fib_618=pl.when(up).then(H - FIB_GOLDEN * R).otherwise(L + FIB_GOLDEN * R),
    )
    f50, f618 = pl.col("fib_50"), pl.col("fib_618")
    state = (
        pl.when(pl.col("leg_dir") == 0)
        .then(None)
        .when(up & (c >= f618) & (c <= f50))
        .then(1)
        .when(up & (c >= L) & (c < f618))
        .then(2)
        .when(~up & (c >= f50) & (c <= f618))
        .then(1)
        .when(~up & (c > f618) & (c <= H))
        .then(2)
        .otherwise(0)
        .cast(pl.Int64)
    )
    h = h.with_columns(state=state)

    in_zone = pl.col("state") >= 1
    first_entry = in_zone & (in_zone.cast(pl.Int32).cum_sum().over("leg_id") == 1)
    # An entry less than 5 bars after a reset has no slope; the leg then stays NULL (nothing older to carry).
    h = h.with_columns(
        vol_decay_slope=pl.when(first_entry).then(pl.col("_decay_bar")).forward_fill().over("leg_id")
    )
    crossed = pl.when(up).then(c > f50).otherwise(c < f50)
    trigger = (
        (pl.col("state").shift(1).over("leg_id") >= 1)
        & crossed
        & (v >= TRIGGER_VOL_MULT * pl.col("vol_sma20"))
        & (pl.col("vol_decay_slope") < 0)
    )
    return h.with_columns(qualified_trigger=trigger.fill_null(False)).drop("_seg_start", "_seg", "_decay_bar")


def compute_golden_zone(bars_1h: pl.DataFrame, roots: set[str]) -> pl.DataFrame:
    """Daily golden-zone rows for the symbols in ``roots`` (others: no rows; the caller adds NULLs).

    Values are those of the session's last 1h bar (on a roll day: the new contract's); ``qualified_trigger`` is True if any bar of the
    session triggered. ``golden_zone_state``: 1 = between fib_50 and fib_618, 2 = beyond fib_618 up to
    the leg's origin swing, 0 = outside; NULL (with NULL swings and fibs) while fewer than two swings
    are confirmed since the series or the contract started. ``vol_decay_slope``: 5-bar OLS slope of
    volume ending at the leg's first zone entry divided by those bars' mean volume (per bar); NULL
    before the leg enters the zone. Point in time: a day's values use bars up to its last bar only.
    """
    bars = golden_zone_bars(bars_1h, roots)
    if bars.height == 0:
        return pl.DataFrame(schema=GOLDEN_ZONE_SCHEMA)
    daily = bars.group_by("trade_date", "symbol").agg(
        pl.col("state").sort_by("ts_event").last().alias("golden_zone_state"),
        *[
            pl.col(x).sort_by("ts_event").last()
            for x in ("swing_high", "swing_low", "fib_50", "fib_618", "vol_decay_slope")
        ],
        pl.col("qualified_trigger").any(),
    )
    return daily.select([pl.col(x).cast(t) for x, t in GOLDEN_ZONE_SCHEMA.items()]).sort(
        "symbol", "trade_date"
    )
