"""Market features (SPEC 6.4 "market"): VWAP, intraday realized volatility and its regimes.

Pure polars. Prices in native quote units; volatilities are annualised with 252 sessions and
expressed as a fraction (0.15 = 15 %), from log returns.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from chimera_assets.features.session_bars import clean_intraday
from chimera_assets.schemas import MARKET_FEATURES

ANNUALISATION = 252
RV_WINDOW = 20
RV_MIN_VALUES = 20
REGIME_WINDOW = 252
REGIME_MIN_VALUES = 100
K_VOL_BOUNDS = (0.5, 2.0)

# The columns of features.market_features (declared in schemas.py).
MARKET_SCHEMA: dict[str, pl.DataType] = MARKET_FEATURES.polars_schema()

_KEY = ["trade_date", "symbol"]
_INST_KEY = ["trade_date", "symbol", "instrument_id"]
_FREQ_RANK = {"1m": 0, "1h": 1}


def _session_instruments(session_bars: pl.DataFrame) -> pl.DataFrame:
    return session_bars.select(
        pl.col("trade_date").cast(pl.Date),
        pl.col("symbol").cast(pl.Utf8),
        pl.col("instrument_id").cast(pl.Int64),
    )


def _sum_r2(bars_1h: pl.DataFrame | None, keep: pl.DataFrame) -> pl.DataFrame:
    """Per session: sum of squared log returns between consecutive 1h closes of the session's contract.

    NULL with fewer than 2 bars. A non-positive close (CL, April 2020) has no log return: those
    returns are NULL and skipped.
    """
    h = clean_intraday(bars_1h)
    if h is None:
        return keep.select(_KEY).with_columns(sum_r2=pl.lit(None, pl.Float64))
    c = pl.col("close")
    prev = c.shift(1).over(_KEY, order_by="ts_event")
    r = pl.when((c > 0) & (prev > 0)).then((c / prev).log())
    return (
        h.join(keep, on=_INST_KEY, how="inner")
        .with_columns(_r=r)
        .group_by(_KEY)
        .agg(
            pl.when(pl.len() >= 2, pl.col("_r").count() >= 1).then((pl.col("_r") ** 2).sum()).alias("sum_r2")
        )
    )


def _vwap(frames: list[pl.DataFrame | None], keep: pl.DataFrame) -> pl.DataFrame:
    """sum(typical*volume)/sum(volume), typical = (H+L+C)/3, over the finest provided frequency's bars
    of the session's contract; NULL when the session's volume sums to 0 or it has no intraday bars."""
    present = [f for f in frames if f is not None]
    if not present:
        return keep.select(_KEY).with_columns(vwap=pl.lit(None, pl.Float64))
    bars = pl.concat(present, how="vertical_relaxed").join(keep, on=_INST_KEY, how="inner")
    rank = pl.col("source_freq").replace_strict(_FREQ_RANK, return_dtype=pl.Int8)
    typical = (pl.col("high") + pl.col("low") + pl.col("close")) / 3.0
    vol = pl.col("volume").cast(pl.Float64)
    return (
        bars.filter(rank == rank.min().over(_KEY))
        .group_by(_KEY)
        .agg(pl.when(vol.sum() > 0).then((typical * vol).sum() / vol.sum()).alias("vwap"))
    )


def _rv20(frame: pl.DataFrame) -> pl.DataFrame:
    """rv20 over the union frame (columns sum_r2, rv20_hist, _new).

    rv20(D) = sqrt(252 * mean of the last 20 non-NULL sum_r2 values at or before D); NULL until 20
    values exist. A session with NULL sum_r2 (holiday with one bar, 1d-sourced session) carries the
    previous session's rv20: its window is the same 20 values.
    """
    order = {"partition_by": "symbol", "order_by": "trade_date"}
    valid = frame.filter(pl.col("sum_r2").is_not_null()).with_columns(
        _rv=(
            pl.col("sum_r2").rolling_mean(RV_WINDOW, min_samples=RV_MIN_VALUES).over(**order) * ANNUALISATION
        ).sqrt()
    )
    seeded = frame.join(valid.select(*_KEY, "_rv"), on=_KEY, how="left").with_columns(
        # History rows keep their stored rv20: the history slice may be too short to recompute it.
        _rv=pl.when(pl.col("_new")).then(pl.col("_rv")).otherwise(pl.col("rv20_hist"))
    )
    return seeded.with_columns(
        rv20=pl.when(pl.col("_new") & pl.col("sum_r2").is_null())
        .then(pl.col("_rv").forward_fill().over(**order))
        .otherwise(pl.col("_rv"))
    ).drop("_rv")


def _regime(frame: pl.DataFrame) -> pl.DataFrame:
    """vol_percentile and k_vol over the trailing 252 sessions (today included); NULL under 100
    non-NULL rv20 values in that window or when today's rv20 is NULL."""
    ranked = frame.sort("symbol", "trade_date").with_columns(_i=pl.int_range(pl.len()).over("symbol"))
    rv = pl.col("rv20")
    stats = ranked.rolling(index_column="_i", period=f"{REGIME_WINDOW}i", group_by="symbol").agg(
        _n=rv.count(),
        _le=(rv <= rv.last()).sum(),
        _med=rv.median(),
        trade_date=pl.col("trade_date").last(),
    )
    ok = (pl.col("_n") >= REGIME_MIN_VALUES) & pl.col("rv20").is_not_null()
    lo, hi = K_VOL_BOUNDS
    return (
        ranked.join(stats.select("symbol", "trade_date", "_n", "_le", "_med"), on=_KEY, how="left")
        .with_columns(
            vol_percentile=pl.when(ok).then(pl.col("_le") / pl.col("_n")),
            k_vol=pl.when(ok & (pl.col("_med") > 0)).then((pl.col("rv20") / pl.col("_med")).clip(lo, hi)),
        )
        .drop("_i", "_n", "_le", "_med")
    )


def compute_market_features(
    bars_1h: pl.DataFrame | None,
    session_bars: pl.DataFrame,
    bars_intraday_for_vwap: pl.DataFrame | None = None,
    *,
    output_dates: tuple[date, date] | None = None,
    history: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Market features for every (trade_date, symbol) of ``session_bars``.

    Only the bars of the contract ``session_bars`` kept for the session are used (roll days!).
    - ``vwap``: over ``bars_intraday_for_vwap`` (the 1m bars) where they cover the session's contract,
      else over ``bars_1h``; NULL with zero volume or no intraday bars (1d-sourced session).
    - ``sum_r2``: sum of squared 1h log returns inside the session (no overnight return); NULL under 2 bars.
    - ``realized_vol_1h`` = sqrt(252 * sum_r2).
    - ``rv20`` = sqrt(252 * mean of the last 20 non-NULL sum_r2 values at or before the date); NULL
      until 20 exist.
    - ``vol_percentile`` = share of the trailing 252 sessions' non-NULL rv20 values (today included)
      that are <= today's rv20; ``k_vol`` = clamp(rv20 / median of those values, 0.5, 2.0). Both
      NULL under 100 values.

    Lookback: rolling values need up to 20 + 251 earlier sessions. Either pass a longer range than
    needed and ``output_dates=(first, last)`` (inclusive) to return only that slice, or pass
    ``history`` = earlier rows of this function's output (needs trade_date, symbol, sum_r2, rv20);
    history rows are context only and never returned. Point in time: a value for date D depends only
    on rows with trade_date <= D.
    """
    keep = _session_instruments(session_bars)
    vwap_frames = [clean_intraday(bars_intraday_for_vwap, "1m"), clean_intraday(bars_1h, "1h")]
    frame = (
        keep.select(_KEY)
        .unique()
        .join(_vwap(vwap_frames, keep), on=_KEY, how="left")
        .join(_sum_r2(bars_1h, keep), on=_KEY, how="left")
        .with_columns(realized_vol_1h=(pl.col("sum_r2") * ANNUALISATION).sqrt(), _new=pl.lit(True))
    )
    if history is not None and history.height:
        hist = (
            history.select(
                pl.col("trade_date").cast(pl.Date),
                pl.col("symbol").cast(pl.Utf8),
                pl.col("sum_r2").cast(pl.Float64),
                pl.col("rv20").cast(pl.Float64).alias("rv20_hist"),
            )
            .join(frame.select(_KEY), on=_KEY, how="anti")
            .with_columns(_new=pl.lit(False))
        )
        frame = pl.concat([frame, hist], how="diagonal_relaxed")
    else:
        frame = frame.with_columns(rv20_hist=pl.lit(None, pl.Float64))

    out = _regime(_rv20(frame)).filter(pl.col("_new"))
    if output_dates is not None:
        out = out.filter(pl.col("trade_date").is_between(*output_dates, closed="both"))
    return out.select([pl.col(c).cast(t) for c, t in MARKET_SCHEMA.items()]).sort("symbol", "trade_date")
