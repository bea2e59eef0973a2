"""Session bars (SPEC 6.3): one OHLCV row per (trade_date, root) from intraday bars.

Pure polars; no I/O. Prices are in the exchange's native quote units, volume in contracts.
"""

from __future__ import annotations

import polars as pl

from chimera_assets.schemas import SESSION_BARS
from chimera_assets.trade_calendar import is_weekday_expr

# The columns of features.session_bars (declared in schemas.py) but session_complete and session_status,
# which the session state adds (features/session_state.py: they need the root's schedule).
SESSION_BAR_SCHEMA: dict[str, pl.DataType] = {
    c: t for c, t in SESSION_BARS.polars_schema().items() if c not in ("session_complete", "session_status")
}
# How far each intraday frequency's bar reaches past its ts_event (the bar's open).
BAR_SPAN = {"1m": pl.duration(minutes=1), "1h": pl.duration(hours=1)}

THIN_RATIO = 0.2
THIN_WINDOW = 20
THIN_MIN_PRIOR = 5

_KEY = ["trade_date", "symbol"]
_BAR_COLS = ["ts_event", "trade_date", "symbol", "instrument_id", "open", "high", "low", "close", "volume"]
# Lower rank = finer frequency; the finest one present wins per (trade_date, symbol).
_FREQ_RANK = {"1m": 0, "1h": 1, "1d": 2}


def ohlcv_aggregations() -> list[pl.Expr]:
    """OHLCV of a group of bars (in time order): first open, max high, min low, last close, summed volume."""
    return [
        pl.col("open").first(),
        pl.col("high").max(),
        pl.col("low").min(),
        pl.col("close").last(),
        pl.col("volume").sum(),
    ]


def _outright_ohlcv(bars: pl.DataFrame, trade_date: pl.Expr, lead: list[pl.Expr] | None = None) -> pl.DataFrame:
    """``bars`` without spread rows, as ``*lead, trade_date, symbol, instrument_id, open..close, volume``
    with their feature types (prices Float64, volume Int64)."""
    if "is_spread" in bars.columns:
        # NULL is_spread means "unknown"; SPEC 6.1 derives it whenever possible, so treat NULL as outright.
        bars = bars.filter(~pl.col("is_spread").fill_null(False))
    return bars.select(
        *(lead or []),
        trade_date,
        pl.col("symbol").cast(pl.Utf8),
        pl.col("instrument_id").cast(pl.Int64),
        *[pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close")],
        pl.col("volume").cast(pl.Int64),
    )


def clean_intraday(bars: pl.DataFrame | None, freq: str | None = None) -> pl.DataFrame | None:
    """Drop spread rows and duplicate bars; keep the columns features need.

    Duplicates on (symbol, instrument_id, ts_event) come from two series of one root resolving to
    the same contract (e.g. ``ZL.v.0`` and ``ZL.c.0``); they are the same trade data, so one is kept
    (the first after sorting, for determinism). When ``freq`` is given a ``source_freq`` column is added.
    Returns None for None/empty input.
    """
    if bars is None or bars.height == 0:
        return None
    out = _outright_ohlcv(bars, pl.col("trade_date").cast(pl.Date), lead=[pl.col("ts_event")]).sort(
        "symbol", "ts_event", "instrument_id"
    )
    # After the sort duplicates are adjacent: a shifted compare is much cheaper than unique().
    dup = pl.lit(True)
    for k in ("symbol", "ts_event", "instrument_id"):
        dup = dup & (pl.col(k) == pl.col(k).shift(1))
    out = out.filter(~dup.fill_null(False))
    if freq is not None:
        out = out.with_columns(source_freq=pl.lit(freq))
    return out


def select_session_instrument(bars: pl.DataFrame) -> pl.DataFrame:
    """Keep, per (trade_date, symbol), only the bars of the instrument that traded the session's last bar.

    ``.v.0`` series roll at 00:00 UTC, inside the CME evening session, so a session can start on the
    old contract and end on the new one. Ties on the last ``ts_event`` (two contracts printing the
    same final bar, only possible with parent/multi-series input) go to the larger volume, then the
    smaller instrument_id, so the choice is deterministic.
    """
    last_inst = (
        bars.sort(*_KEY, "ts_event", "volume", "instrument_id", descending=[False, False, False, False, True])
        .group_by(_KEY)
        .agg(pl.col("instrument_id").last().alias("_keep_inst"))
    )
    return (
        bars.join(last_inst, on=_KEY, how="inner")
        .filter(pl.col("instrument_id") == pl.col("_keep_inst"))
        .drop("_keep_inst")
    )


def finest_intraday(frames: list[pl.DataFrame | None]) -> pl.DataFrame | None:
    """Concatenate cleaned intraday frames (each with ``source_freq``) and keep, per (trade_date, symbol),
    the finest frequency present, then the session instrument (see ``select_session_instrument``)."""
    present = [f for f in frames if f is not None and f.height]
    if not present:
        return None
    bars = pl.concat(present, how="vertical_relaxed")
    rank = pl.col("source_freq").replace_strict(_FREQ_RANK, return_dtype=pl.Int8)
    bars = bars.filter(rank == rank.min().over(_KEY))
    return select_session_instrument(bars)


def _aggregate_intraday(bars: pl.DataFrame) -> pl.DataFrame:
    return (
        bars.sort("ts_event")
        .group_by(_KEY)
        .agg(
            pl.col("instrument_id").first(),
            *ohlcv_aggregations(),
            pl.len().cast(pl.Int64).alias("bar_count"),
            pl.col("source_freq").first(),
            pl.col("ts_event").max().alias("_last_ts"),
        )
        # The end of the session's last kept bar: what session completeness compares with the close.
        .with_columns(
            (pl.col("_last_ts").cast(pl.Datetime("us", "UTC")) + pl.when(pl.col("source_freq") == "1m")
             .then(BAR_SPAN["1m"]).otherwise(BAR_SPAN["1h"])).alias("last_bar_end")
        )
        .drop("_last_ts")
    )


def _daily_fallback(bars_1d: pl.DataFrame | None, have: pl.DataFrame | None) -> pl.DataFrame | None:
    """ohlcv-1d rows for (date, symbol) keys with no intraday bars (SPEC 6.3: last resort, flagged "1d").

    Databento's 1d bar is a UTC day, not the CME session, so it is only an approximation of the
    session. Weekend UTC days (Sunday evening = first hours of Monday's session) are dropped rather
    than merged. With several contracts on one date (parent-symbol input) the highest-volume contract
    is kept (smaller instrument_id on ties).
    """
    if bars_1d is None or bars_1d.height == 0:
        return None
    d = _outright_ohlcv(bars_1d, pl.col("date").cast(pl.Date).alias("trade_date")).filter(
        is_weekday_expr("trade_date")
    )
    d = (
        d.sort(*_KEY, "volume", "instrument_id", descending=[False, False, True, False], nulls_last=True)
        .unique(subset=_KEY, keep="first", maintain_order=True)
        .with_columns(bar_count=pl.lit(1, pl.Int64), source_freq=pl.lit("1d"),
                      last_bar_end=pl.lit(None, pl.Datetime("us", "UTC")))
    )
    if have is not None:
        d = d.join(have.select(_KEY), on=_KEY, how="anti")
    return d


def _settlement_frame(bars_1d: pl.DataFrame | None, settlements: pl.DataFrame | None) -> pl.DataFrame | None:
    """settle / open_interest per (trade_date, symbol, instrument_id); the statistics frame wins over
    the values carried on the 1d frame."""
    key = ["trade_date", "symbol", "instrument_id"]
    parts = []
    for frame, date_col in ((settlements, "trade_date"), (bars_1d, "date")):
        if frame is None or frame.height == 0:
            continue
        cols = [c for c in ("settle", "open_interest") if c in frame.columns]
        if not cols:
            continue
        parts.append(
            frame.select(
                pl.col(date_col).cast(pl.Date).alias("trade_date"),
                pl.col("symbol").cast(pl.Utf8),
                pl.col("instrument_id").cast(pl.Int64),
                (pl.col("settle").cast(pl.Float64) if "settle" in cols else pl.lit(None, pl.Float64)).alias(
                    "settle"
                ),
                (
                    pl.col("open_interest").cast(pl.Int64)
                    if "open_interest" in cols
                    else pl.lit(None, pl.Int64)
                ).alias("open_interest"),
            ).unique(subset=key, keep="last", maintain_order=True)
        )
    if not parts:
        return None
    out = parts[0]
    for extra in parts[1:]:
        out = (
            out.join(extra, on=key, how="full", coalesce=True, suffix="_b")
            .with_columns(
                pl.coalesce("settle", "settle_b").alias("settle"),
                pl.coalesce("open_interest", "open_interest_b").alias("open_interest"),
            )
            .drop("settle_b", "open_interest_b")
        )
    return out


def add_session_flags(frame: pl.DataFrame) -> pl.DataFrame:
    """roll_flag and thin_flag over a frame of session bars (all symbols, any date order).

    roll_flag: instrument_id differs from the previous session's of the same symbol; False on a
    symbol's first session. thin_flag: volume < 0.2 x median volume of the previous 20 sessions
    (today excluded); False when fewer than 5 previous sessions exist or volume is NULL.
    """
    order = {"partition_by": "symbol", "order_by": "trade_date"}
    prev_inst = pl.col("instrument_id").shift(1).over(**order)
    med = (
        pl.col("volume")
        .cast(pl.Float64)
        .shift(1)
        .rolling_median(THIN_WINDOW, min_samples=THIN_MIN_PRIOR)
        .over(**order)
    )
    return frame.with_columns(
        roll_flag=(pl.col("instrument_id") != prev_inst).fill_null(False),
        thin_flag=(pl.col("volume") < THIN_RATIO * med).fill_null(False),
    )


def build_session_bars(
    bars_1m: pl.DataFrame | None,
    bars_1h: pl.DataFrame | None,
    bars_1d: pl.DataFrame | None = None,
    settlements: pl.DataFrame | None = None,
    history: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Build session bars for every (trade_date, symbol) present in the inputs, in one vectorised pass.

    Source: per (trade_date, symbol) the finest frequency present (1m, else 1h, else the 1d row,
    ``source_freq`` "1d", ``bar_count`` 1). Spread rows are ignored. On a roll day only the bars of the
    contract that printed the session's last bar are kept (``select_session_instrument``).
    open = first kept bar's open, close = last kept bar's close, high/low = max/min, volume = sum
    (contracts), bar_count = number of kept bars.

    settle / open_interest: left-joined on (trade_date, symbol, instrument_id) from ``settlements``
    (columns trade_date, symbol, instrument_id, settle, open_interest), else from the 1d frame's own
    columns; NULL when neither has the key. They are published after the session (OI on D+1).

    ``history``: earlier session bars (same columns) so that roll_flag/thin_flag of the first dates
    see their prior sessions. History rows whose key is rebuilt here are replaced; history rows are
    never returned. Flags are computed over the union ordered by trade_date.

    Returns exactly ``SESSION_BAR_SCHEMA``'s columns, sorted by (symbol, trade_date).
    """
    m = clean_intraday(bars_1m, "1m")
    h = clean_intraday(bars_1h, "1h")
    intraday = finest_intraday([m, h])
    parts = []
    agg = None
    if intraday is not None:
        agg = _aggregate_intraday(intraday)
        parts.append(agg)
    daily = _daily_fallback(bars_1d, agg)
    if daily is not None:
        parts.append(daily)
    if not parts:
        return pl.DataFrame(schema=SESSION_BAR_SCHEMA)

    price_cols = ["instrument_id", "open", "high", "low", "close", "volume", "bar_count", "source_freq",
                  "last_bar_end"]
    new = pl.concat([p.select(*_KEY, *price_cols) for p in parts], how="vertical_relaxed")
    settle = _settlement_frame(bars_1d, settlements)
    if settle is not None:
        new = new.join(settle, on=["trade_date", "symbol", "instrument_id"], how="left")
    else:
        new = new.with_columns(settle=pl.lit(None, pl.Float64), open_interest=pl.lit(None, pl.Int64))
    new = new.with_columns(_new=pl.lit(True))

    frame = new
    if history is not None and history.height:
        hist = (
            history.select(*_KEY, "instrument_id", "volume")
            .with_columns(pl.col("trade_date").cast(pl.Date), pl.col("instrument_id").cast(pl.Int64))
            .join(new.select(_KEY), on=_KEY, how="anti")
            .with_columns(_new=pl.lit(False))
        )
        frame = pl.concat([new, hist], how="diagonal_relaxed")

    out = add_session_flags(frame).filter(pl.col("_new"))
    return out.select([pl.col(c).cast(t) for c, t in SESSION_BAR_SCHEMA.items()]).sort("symbol", "trade_date")
