"""``features.*``: session bars, market, pivots, golden zone, policy, consolidated frame and matrix.

Thin shells: load inputs (with their declared lookbacks), call the pure function, keep the run's
partitions, return the frame; the IO manager MERGEs it. A range run computes the whole range in one
vectorised pass.
"""

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from chimera_assets.assets.common import (
    SINGLE_RUN,
    WAREHOUSE_IO,
    WRITER_POOL,
    date_of_multi,
    multi_partitions,
    only_run_keys,
    read_lookback,
    run_keys,
)
from chimera_assets.features.golden_zone import compute_golden_zone
from chimera_assets.features.market import compute_market_features
from chimera_assets.features.pivots import compute_pivots
from chimera_assets.features.policy import compute_policy_features
from chimera_assets.features.regimes import load_regimes, regime_for_dates
from chimera_assets.features.session_bars import build_session_bars
from chimera_assets.io_manager import WarehouseResource
from chimera_assets.matrix import build_consolidated, build_daily_ml_matrix
from chimera_assets.partitions import parse_partition_keys, trade_date_partitions
from chimera_assets.schemas import (
    CONSOLIDATED,
    DAILY_ML_MATRIX,
    GOLDEN_ZONE,
    MARKET_FEATURES,
    OHLCV_1D,
    OHLCV_1H,
    OHLCV_1M,
    PIVOTS,
    POLICY_FEATURES,
    SESSION_BARS,
    STATISTICS,
)
from chimera_assets.settings import get_settings
from chimera_assets.universe import get_universe

GROUP = "features"
# Lookbacks in trade-date partitions (Mon-Fri incl. holidays).
SESSION_FLAG_LOOKBACK = 35  # thin flag: 20 prior sessions; roll flag: 1
PIVOT_LOOKBACK = 15  # previous session and the prior completed ISO week
MARKET_LOOKBACK = 300  # rv20 (20 sessions) then 252 sessions of rv20
GOLDEN_LOOKBACK = 130  # the zig-zag restarts at each roll; quarterly rolls are < 70 sessions apart


def _k(spec) -> dg.AssetKey:
    return dg.AssetKey([spec.schema, spec.name])


RAW_1M = dg.AssetKey(["market_data", "databento_futures_ohlcv_1m"])
RAW_1H = dg.AssetKey(["market_data", "databento_futures_ohlcv_1h"])
RAW_1D = dg.AssetKey(["market_data", "databento_futures_ohlcv_1d"])
RAW_STATS = dg.AssetKey(["market_data", "databento_futures_statistics"])
POLICY_EVENTS_KEY = dg.AssetKey(["reference", "policy_events"])


def _asset(spec, lookback_dates: int | None = None, **kw):
    """A date x root feature asset written through the MERGE IO manager.

    ``lookback_dates`` is recorded as metadata: how many earlier trade-date partitions of its
    upstream tables the asset reads besides its own partitions.
    """
    metadata = {"chimera/lookback_trade_dates": lookback_dates or 0}
    return dg.asset(
        key=_k(spec),
        partitions_def=kw.pop("partitions_def", None) or multi_partitions(),
        backfill_policy=SINGLE_RUN,
        io_manager_key=WAREHOUSE_IO,
        group_name=GROUP,
        pool=WRITER_POOL,
        kinds={"polars"},
        metadata=metadata,
        **kw,
    )


def settlements_from_statistics(stats: pl.DataFrame) -> pl.DataFrame:
    """Settlement price (stat_type 3) and open interest (stat_type 9) per (trade_date, symbol, instrument)."""
    key = ["trade_date", "symbol", "instrument_id"]
    settle = stats.filter(pl.col("stat_type") == 3).select(*key, pl.col("price").alias("settle"))
    oi = stats.filter(pl.col("stat_type") == 9).select(*key, pl.col("quantity").alias("open_interest"))
    return settle.join(oi, on=key, how="full", coalesce=True)


def _none_if_empty(frame: pl.DataFrame) -> pl.DataFrame | None:
    return frame if frame.height else None


@_asset(
    SESSION_BARS,
    lookback_dates=SESSION_FLAG_LOOKBACK,
    deps=[RAW_1M, RAW_1H, RAW_1D, RAW_STATS],
    description="One OHLCV row per (trade_date, root) from the finest loaded frequency; roll and thin flags.",
)
def session_bars(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> pl.DataFrame:
    wh = warehouse.get()
    n = SESSION_FLAG_LOOKBACK
    stats = read_lookback(wh, STATISTICS, context, n)
    bars = build_session_bars(
        _none_if_empty(read_lookback(wh, OHLCV_1M, context, n)),
        _none_if_empty(read_lookback(wh, OHLCV_1H, context, n)),
        _none_if_empty(read_lookback(wh, OHLCV_1D, context, n)),
        settlements_from_statistics(stats) if stats.height else None,
    )
    out = only_run_keys(bars, run_keys(context))
    context.log.info(f"session_bars: {out.height} session(s) for {len(context.partition_keys)} partition(s)")
    return out.select(SESSION_BARS.column_names)


@_asset(
    MARKET_FEATURES,
    lookback_dates=MARKET_LOOKBACK,
    deps=[RAW_1H, _k(SESSION_BARS)],
    description="vwap, realized_vol_1h, rv20, vol_percentile, k_vol (point in time).",
)
def market_features(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> pl.DataFrame:
    wh = warehouse.get()
    bars_1h = read_lookback(wh, OHLCV_1H, context, MARKET_LOOKBACK)
    bars_1m = read_lookback(wh, OHLCV_1M, context, 0)
    sessions = read_lookback(wh, SESSION_BARS, context, MARKET_LOOKBACK)
    feats = compute_market_features(_none_if_empty(bars_1h), sessions, _none_if_empty(bars_1m))
    return only_run_keys(feats, run_keys(context)).select(MARKET_FEATURES.column_names)


@_asset(
    PIVOTS,
    lookback_dates=PIVOT_LOOKBACK,
    deps=[_k(SESSION_BARS)],
    description="Floor-trader pivots from the previous session, weekly pivot, distances.",
)
def pivots(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> pl.DataFrame:
    sessions = read_lookback(warehouse.get(), SESSION_BARS, context, PIVOT_LOOKBACK)
    return only_run_keys(compute_pivots(sessions), run_keys(context)).select(PIVOTS.column_names)


@_asset(
    GOLDEN_ZONE,
    lookback_dates=GOLDEN_LOOKBACK,
    deps=[RAW_1H, _k(SESSION_BARS)],
    description="Golden-zone state from 1h zig-zag swings (golden-zone roots only; NULL elsewhere).",
)
def golden_zone(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> pl.DataFrame:
    wh = warehouse.get()
    roots = get_universe().golden_zone_roots
    keys = run_keys(context)
    wanted = [r for r in keys["symbol"].unique().to_list() if r in roots]
    gz = GOLDEN_ZONE.empty_frame()
    if wanted:
        bars_1h = read_lookback(wh, OHLCV_1H, context, GOLDEN_LOOKBACK).filter(pl.col("symbol").is_in(wanted))
        if bars_1h.height:
            gz = compute_golden_zone(bars_1h, roots)
    # One row per session of the run: NULL features for roots without the family or without data.
    sessions = read_lookback(wh, SESSION_BARS, context, 0).select("trade_date", "symbol")
    frame = sessions.join(gz, on=["trade_date", "symbol"], how="left")
    return only_run_keys(frame, keys).select(GOLDEN_ZONE.column_names)


@_asset(
    POLICY_FEATURES,
    ins={"policy_events": dg.AssetIn(POLICY_EVENTS_KEY)},
    partitions_def=trade_date_partitions(),
    description="The 16 policy features per trade date (events before 16:00 CT only).",
)
def policy_features(context: dg.AssetExecutionContext, policy_events: pl.DataFrame) -> pl.DataFrame:
    dates = sorted(d for d, _ in parse_partition_keys(context.partition_keys))
    feats = compute_policy_features(policy_events, dates)
    return feats.select(POLICY_FEATURES.column_names)


@_asset(
    CONSOLIDATED,
    ins={
        "session_bars": dg.AssetIn(_k(SESSION_BARS)),
        "market_features": dg.AssetIn(_k(MARKET_FEATURES)),
        "pivots": dg.AssetIn(_k(PIVOTS)),
        "golden_zone": dg.AssetIn(_k(GOLDEN_ZONE)),
        "policy_features": dg.AssetIn(_k(POLICY_FEATURES), partition_mapping=date_of_multi()),
    },
    description="The flat frame: one row per (symbol, data_date) with every feature family.",
)
def consolidated_features(
    context: dg.AssetExecutionContext,
    session_bars: pl.DataFrame,
    market_features: pl.DataFrame,
    pivots: pl.DataFrame,
    golden_zone: pl.DataFrame,
    policy_features: pl.DataFrame,
) -> pl.DataFrame:
    frame = build_consolidated(session_bars, market_features, pivots, golden_zone, policy_features)
    return only_run_keys(frame, run_keys(context), date_col="data_date")


@_asset(
    DAILY_ML_MATRIX,
    ins={
        "consolidated_features": dg.AssetIn(_k(CONSOLIDATED)),
        "pivots": dg.AssetIn(_k(PIVOTS)),
    },
    deps=[dg.AssetKey(["training", "regime_calendar"])],
    description="The ML matrix: STRUCT columns market_data, pivots, policy, golden_zone, regime.",
)
def daily_ml_matrix(
    context: dg.AssetExecutionContext, consolidated_features: pl.DataFrame, pivots: pl.DataFrame
) -> pl.DataFrame:
    regimes = load_regimes(get_settings().regimes_path)
    by_date = regime_for_dates(regimes, consolidated_features["data_date"].unique().sort())
    matrix = build_daily_ml_matrix(consolidated_features, pivots, by_date, datetime.now(UTC))
    return only_run_keys(matrix, run_keys(context), date_col="data_date")


FEATURE_ASSETS = [
    session_bars, market_features, pivots, golden_zone, policy_features, consolidated_features, daily_ml_matrix,
]
