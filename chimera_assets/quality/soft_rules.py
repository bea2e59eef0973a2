"""The soft (non-blocking, WARN) rules: missing sessions, one-day flips and thin sessions, outlier
returns and matrix freshness.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from chimera_assets.quality.frames import (
    partition_key,
    partition_key_expr,
)
from chimera_assets.quality.registry import (
    MAX_OFFENDING_KEYS,
    PARTITION,
    RULES,
    CheckOutcome,
    QualityConfig,
)
from chimera_assets.trade_calendar import (
    expected_partitions,
    expected_sessions,
    latest_closed_session,
)


def missing_session_rows(
    sessions: pl.DataFrame,
    partitions: Iterable[tuple[date, str]],
    calendars: Mapping[str, str],
    starts: Mapping[str, date] | None = None,
) -> pl.DataFrame:
    """(trade_date, symbol) partitions the root's calendar expects that have no row in ``sessions``
    (columns trade_date, symbol). Roots without a calendar, and dates before a root's start, are skipped."""
    schema = {PARTITION: pl.Utf8, "trade_date": pl.Date, "symbol": pl.Utf8, "calendar": pl.Utf8}
    have = set(zip(sessions["trade_date"].to_list(), sessions["symbol"].to_list(), strict=True))
    rows = [
        (partition_key(d, s), d, s, calendars[s])
        for d, s in expected_partitions(partitions, calendars, starts)
        if (d, s) not in have
    ]
    return pl.DataFrame(rows, schema=schema, orient="row").sort("symbol", "trade_date")


def unexpected_session_rows(sessions: pl.DataFrame, calendars: Mapping[str, str]) -> pl.DataFrame:
    """Session bars on dates the calendar says are closed (informational; never a failure)."""
    out = []
    for root in sorted(set(sessions["symbol"].to_list())):
        cal = calendars.get(root)
        days = sessions.filter(pl.col("symbol") == root)["trade_date"]
        if cal is None or days.is_empty():
            continue
        expected = set(expected_sessions(cal, days.min(), days.max()))
        out += [{"trade_date": d.isoformat(), "symbol": root} for d in days.to_list() if d not in expected]
    return pl.DataFrame(out, schema={"trade_date": pl.Utf8, "symbol": pl.Utf8})


def flip_and_thin_rows(
    session_bars: pl.DataFrame,
    config: QualityConfig | None = None,
    early_closes: set[tuple[date, str]] | None = None,
) -> pl.DataFrame:
    """Sessions that are a one-day contract flip and/or thin, from columns trade_date, symbol,
    instrument_id, volume (any order, several roots).

    one_day_flip: instrument differs from the previous session's and the next session returns to the
    previous session's instrument (A -> B -> A); it needs the next session, so the last session of a
    root is never a flip yet. thin: volume < thin_ratio x median volume of the previous thin_window
    sessions (at least thin_min_prior of them), the session-bar definition. ``kind`` is
    "one_day_flip", "thin" or "one_day_flip+thin"; ``next_date`` is the session after.
    """
    cfg = config or QualityConfig()
    schema = {
        PARTITION: pl.Utf8, "trade_date": pl.Date, "symbol": pl.Utf8, "kind": pl.Utf8, "instrument_id": pl.Int64,
        "prev_instrument_id": pl.Int64, "next_instrument_id": pl.Int64, "volume": pl.Int64,
        "median_prior_volume": pl.Float64, "next_date": pl.Date,
    }
    if session_bars.is_empty():
        return pl.DataFrame(schema=schema)
    order = {"partition_by": "symbol", "order_by": "trade_date"}
    inst = pl.col("instrument_id")
    f = session_bars.select(
        pl.col("trade_date").cast(pl.Date), pl.col("symbol").cast(pl.Utf8), inst.cast(pl.Int64),
        pl.col("volume").cast(pl.Int64),
    ).sort("symbol", "trade_date")
    f = f.with_columns(
        prev_instrument_id=inst.shift(1).over(**order),
        next_instrument_id=inst.shift(-1).over(**order),
        next_date=pl.col("trade_date").shift(-1).over(**order),
        median_prior_volume=pl.col("volume").cast(pl.Float64).shift(1)
        .rolling_median(cfg.thin_window, min_samples=cfg.thin_min_prior).over(**order),
    )
    flip = (
        (inst != pl.col("prev_instrument_id")) & (pl.col("next_instrument_id") == pl.col("prev_instrument_id"))
    ).fill_null(False)
    thin = (pl.col("volume") < cfg.thin_ratio * pl.col("median_prior_volume")).fill_null(False)
    if early_closes and cfg.thin_ignore_early_close:
        ec = pl.DataFrame(sorted(early_closes), schema={"trade_date": pl.Date, "symbol": pl.Utf8}, orient="row")
        f = f.join(ec.with_columns(_early=pl.lit(True)), on=["trade_date", "symbol"], how="left")
        thin = thin & ~pl.col("_early").fill_null(False)
    kind = (
        pl.when(flip & thin).then(pl.lit("one_day_flip+thin"))
        .when(flip).then(pl.lit("one_day_flip"))
        .when(thin).then(pl.lit("thin"))
    )
    return (
        f.with_columns(kind.alias("kind"), partition_key_expr("trade_date", "symbol"))
        .filter(pl.col("kind").is_not_null())
        .select(list(schema))
    )


def outlier_return_rows(
    session_bars: pl.DataFrame,
    market_features: pl.DataFrame,
    config: QualityConfig | None = None,
    partitions: Iterable[str] | None = None,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Sessions whose close-to-close log return exceeds k x the daily volatility known before it.

    r(D) = ln(close_D / close_prev) over consecutive sessions of one root and the SAME instrument
    (a return across a roll compares two contracts, so it is skipped); sigma(D) = rv20 of the previous
    session / sqrt(252) (rv20 is annualised); outlier when |r| > k x sigma. Returns the offending rows
    and counts: returns_compared, skipped_roll, skipped_no_vol. ``partitions`` limits both to those
    partition keys (the frames may hold earlier sessions as history).
    """
    cfg = config or QualityConfig()
    schema = {
        PARTITION: pl.Utf8, "trade_date": pl.Date, "symbol": pl.Utf8, "instrument_id": pl.Int64,
        "close": pl.Float64, "prev_close": pl.Float64, "log_return": pl.Float64, "daily_vol": pl.Float64,
        "z": pl.Float64, "k": pl.Float64,
    }
    counts = {"returns_compared": 0, "skipped_roll": 0, "skipped_no_vol": 0}
    if session_bars.is_empty():
        return pl.DataFrame(schema=schema), counts
    order = {"partition_by": "symbol", "order_by": "trade_date"}
    f = (
        session_bars.select(
            pl.col("trade_date").cast(pl.Date), pl.col("symbol").cast(pl.Utf8),
            pl.col("instrument_id").cast(pl.Int64), pl.col("close").cast(pl.Float64),
        )
        .join(
            market_features.select(pl.col("trade_date").cast(pl.Date), pl.col("symbol").cast(pl.Utf8),
                                   pl.col("rv20").cast(pl.Float64)),
            on=["trade_date", "symbol"], how="left",
        )
        .sort("symbol", "trade_date")
        .with_columns(
            prev_close=pl.col("close").shift(1).over(**order),
            _prev_inst=pl.col("instrument_id").shift(1).over(**order),
            daily_vol=pl.col("rv20").shift(1).over(**order) / math.sqrt(252),
        )
        .filter(pl.col("prev_close").is_not_null())
        .with_columns(partition_key_expr("trade_date", "symbol"))
    )
    if partitions is not None:
        f = f.filter(pl.col(PARTITION).is_in(list(partitions)))
    same = f.filter(pl.col("instrument_id") == pl.col("_prev_inst"))
    counts["skipped_roll"] = f.height - same.height
    ok = same.filter(
        (pl.col("close") > 0) & (pl.col("prev_close") > 0) & (pl.col("daily_vol") > 0)
    )
    counts["skipped_no_vol"] = same.height - ok.height
    counts["returns_compared"] = ok.height
    out = ok.with_columns(log_return=(pl.col("close") / pl.col("prev_close")).log()).with_columns(
        z=pl.col("log_return") / pl.col("daily_vol"), k=pl.lit(cfg.outlier_k)
    )
    out = out.filter(pl.col("z").abs() > cfg.outlier_k)
    return out.select(list(schema)), counts


def freshness_outcome(
    latest_by_root: Mapping[str, date],
    calendars: Mapping[str, str],
    as_of: datetime,
    max_lag: int = 3,
) -> CheckOutcome:
    """Lag, in expected CME sessions, between each root's latest matrix date and the latest session
    closed at ``as_of``; fails (WARN) when a root lags by more than ``max_lag`` sessions. Roots
    without any matrix row are listed but not judged (never loaded is not stale)."""
    rule = RULES["matrix_freshness"]
    per_root: dict[str, dict[str, Any]] = {}
    stale = []
    for root in sorted(latest_by_root):
        latest = latest_by_root[root]
        cal = calendars.get(root, "CME_Agriculture")
        expected = latest_closed_session(cal, as_of)
        lag = 0 if expected is None or expected <= latest else len(
            [d for d in expected_sessions(cal, latest + timedelta(days=1), expected)]
        )
        per_root[root] = {"latest_date": latest.isoformat(),
                          "latest_expected": expected.isoformat() if expected else None, "lag_sessions": lag}
        if lag > max_lag:
            stale.append({"partition": partition_key(latest, root), "symbol": root, "latest_date": latest.isoformat(),
                          "latest_expected": expected.isoformat() if expected else None, "lag_sessions": lag})
    meta = {
        "as_of": as_of.isoformat(),
        "max_lag_sessions": max_lag,
        "roots_checked": len(per_root),
        "roots_stale": len(stale),
        "max_lag_observed": max((r["lag_sessions"] for r in per_root.values()), default=0),
        "per_root": per_root,
        "offending_keys": stale[:MAX_OFFENDING_KEYS],
    }
    return CheckOutcome(rule.name, not stale, rule.severity, meta, rule.description)
