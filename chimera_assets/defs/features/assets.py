"""``features.*``: session bars, market, pivots, golden zone, policy, consolidated frame and matrix.

Thin shells: load inputs (with their declared lookbacks), call the pure function, keep the run's
partitions, return the frame; the IO manager MERGEs it. A range run computes the whole range in one
vectorised pass.

Every date x root asset passes the session gate (``defs/features/session_gate.py``): only complete sessions
are published downstream of session_bars; a partition is written empty only where the CME calendar
has no session (or the loaded source spans the day without a bar), and a run whose upstream rows are
missing for a session day fails naming them. The reasons are in each materialization's metadata.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl

from chimera_assets.defs.features.feature_asset import feature_asset as _asset
from chimera_assets.defs.features.policy_assets import policy_features
from chimera_assets.defs.features.session_gate import (
    Gate,
    gate,
    raise_if_stale,
    raise_if_unbuilt,
    read_ledger,
    require_rows,
    schedule_for,
    series_by_root,
)
from chimera_assets.features.golden_zone import compute_golden_zone
from chimera_assets.features.market import compute_market_features
from chimera_assets.features.matrix import build_consolidated, build_daily_ml_matrix
from chimera_assets.features.pivots import compute_pivots
from chimera_assets.features.regimes import load_regimes, regime_for_dates
from chimera_assets.features.session_bars import build_session_bars
from chimera_assets.features.session_state import GAP_STATUSES, api_reach, bar_reach, mark_session_complete
from chimera_assets.lib.asset_common import (
    date_of_multi,
    only_run_keys,
    read_lookback,
    run_keys,
)
from chimera_assets.lib.asset_keys import RAW_1D, RAW_1H, RAW_1M, RAW_STATS, REGIME_CALENDAR, asset_key
from chimera_assets.lib.io_manager import WarehouseResource
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
    TableSpec,
)
from chimera_assets.settings import get_settings
from chimera_assets.universe import get_universe
from chimera_assets.warehouse.base import Slice, Warehouse

# Lookbacks in trade-date partitions (Mon-Fri incl. holidays).
SESSION_FLAG_LOOKBACK = 35  # thin flag: 20 prior sessions; roll flag: 1
PIVOT_LOOKBACK = 15  # previous session and the prior completed ISO week
MARKET_LOOKBACK = 300  # rv20 (20 sessions) then 252 sessions of rv20
GOLDEN_LOOKBACK = 130  # the zig-zag restarts at each roll; quarterly rolls are < 70 sessions apart
# Calendar days after the run's last date read to see whether later data exists (session completeness).
COMPLETENESS_LOOKAHEAD_DAYS = 10
SESSIONS_HINT = "materialize features/session_bars for them first"




def settlements_from_statistics(stats: pl.DataFrame) -> pl.DataFrame:
    """Settlement price (stat_type 3) and open interest (stat_type 9) per (trade_date, symbol, instrument)."""
    key = ["trade_date", "symbol", "instrument_id"]
    settle = stats.filter(pl.col("stat_type") == 3).select(*key, pl.col("price").alias("settle"))
    oi = stats.filter(pl.col("stat_type") == 9).select(*key, pl.col("quantity").alias("open_interest"))
    return settle.join(oi, on=key, how="full", coalesce=True)


def _none_if_empty(frame: pl.DataFrame) -> pl.DataFrame | None:
    return frame if frame.height else None


def _raw_hint(roots: list[str]) -> str:
    """Which raw assets feed the session bars of ``roots`` (named with the days that lack data)."""
    from chimera_assets.universe import get_universe

    cfg = get_universe().roots
    schemas = sorted({s for r in roots for s in cfg[r].schemas if s.startswith("ohlcv-")})
    tables = ", ".join(f"market_data/databento_futures_{s.replace('-', '_')}" for s in schemas)
    return f"load their data: materialize {tables} or run chimera run with their landing files / --api"


def _lookahead_bars(wh: Warehouse, spec, keys: pl.DataFrame) -> pl.DataFrame:
    """ts_event/symbol of the bars in the days after each root's last run date (later data)."""
    last = keys.group_by("symbol").agg(pl.col("trade_date").max())
    ranges = tuple(
        (r, d + timedelta(days=1), d + timedelta(days=COMPLETENESS_LOOKAHEAD_DAYS)) for r, d in sorted(last.rows())
    )
    return wh.read(spec, Slice(ranges), columns=["ts_event", "symbol"])


def _session_reach(wh: Warehouse, keys: pl.DataFrame, bars_1m: pl.DataFrame, bars_1h: pl.DataFrame) -> pl.DataFrame:
    """Per root, how far its loaded data reaches: the run's bars, the bars of the following days,
    and the Databento API requests recorded in the ledger (never a landing file's header period)."""
    frames = [(bars_1m, "1m"), (bars_1h, "1h")]
    for spec, freq in ((OHLCV_1M, "1m"), (OHLCV_1H, "1h")):
        if wh.table_exists(spec):
            frames.append((_lookahead_bars(wh, spec, keys), freq))
    reach = bar_reach(frames)
    return pl.concat([reach, api_reach(read_ledger(wh), series_by_root())], how="vertical_relaxed")


@_asset(
    SESSION_BARS,
    lookback_dates=SESSION_FLAG_LOOKBACK,
    deps=[RAW_1M, RAW_1H, RAW_1D, RAW_STATS],
    description=(
        "One OHLCV row per (trade_date, root) from the finest loaded frequency; roll and thin flags; "
        "session_complete (the loaded data reaches the session's scheduled close)."
    ),
)
def session_bars(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> pl.DataFrame:
    wh = warehouse.get()
    n = SESSION_FLAG_LOOKBACK
    keys = run_keys(context)
    stats = read_lookback(wh, STATISTICS, context, n)
    bars_1m, bars_1h = read_lookback(wh, OHLCV_1M, context, n), read_lookback(wh, OHLCV_1H, context, n)
    bars = build_session_bars(
        _none_if_empty(bars_1m),
        _none_if_empty(bars_1h),
        _none_if_empty(read_lookback(wh, OHLCV_1D, context, n)),
        settlements_from_statistics(stats) if stats.height else None,
    )
    out = only_run_keys(bars, keys)
    schedule = schedule_for(keys)
    out = mark_session_complete(out, schedule, _session_reach(wh, keys, bars_1m, bars_1h))
    verdict = gate("features/session_bars", wh, keys, out, schedule)
    context.add_output_metadata(verdict.metadata())
    counts = dict(verdict.status.group_by("status").len().rows())
    gaps = ", ".join(f"{counts[s]} {s}" for s in GAP_STATUSES + ("incomplete",) if counts.get(s))
    context.log.info(
        f"session_bars: {out.height} session(s) for {len(context.partition_keys)} partition(s), "
        f"{counts.get('published', 0)} complete" + (f"; without a publishable session: {gaps} "
                                                    f"({_raw_hint(sorted(set(verdict.gaps()['symbol'].to_list())))} "
                                                    "to fill the missing ones)" if gaps else "")
    )
    return out.select(SESSION_BARS.column_names)


def _sessions_gate(asset: str, wh: Warehouse, context: dg.AssetExecutionContext, sessions: pl.DataFrame) -> Gate:
    """The gate of an asset downstream of session_bars: fails on run partitions without a session bar
    (on a session day), records the empty and incomplete ones as metadata."""
    keys = run_keys(context)
    raise_if_stale(asset, sessions)
    verdict = gate(asset, wh, keys, only_run_keys(sessions, keys))
    raise_if_unbuilt(verdict, wh, SESSIONS_HINT)
    context.add_output_metadata(verdict.metadata())
    return verdict


def _read_gated_sessions(
    spec: TableSpec, context: dg.AssetExecutionContext, warehouse: WarehouseResource, lookback: int
) -> tuple[Warehouse, pl.DataFrame, Gate]:
    """The warehouse, the session bars of the run (plus ``lookback`` earlier trade dates) and the
    session gate of the feature asset ``spec`` (see ``_sessions_gate``)."""
    wh = warehouse.get()
    sessions = read_lookback(wh, SESSION_BARS, context, lookback)
    return wh, sessions, _sessions_gate(f"{spec.schema}/{spec.name}", wh, context, sessions)


def _complete(sessions: pl.DataFrame) -> pl.DataFrame:
    """Only complete sessions feed the feature families (incomplete ones wait for more data)."""
    return sessions.filter(pl.col("session_complete").fill_null(False))


@_asset(
    MARKET_FEATURES,
    lookback_dates=MARKET_LOOKBACK,
    deps=[RAW_1H, asset_key(SESSION_BARS)],
    description="vwap, realized_vol_1h, rv20, vol_percentile, k_vol (point in time).",
)
def market_features(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> pl.DataFrame:
    wh, sessions, verdict = _read_gated_sessions(MARKET_FEATURES, context, warehouse, MARKET_LOOKBACK)
    bars_1h = read_lookback(wh, OHLCV_1H, context, MARKET_LOOKBACK)
    bars_1m = read_lookback(wh, OHLCV_1M, context, 0)
    feats = compute_market_features(_none_if_empty(bars_1h), _complete(sessions), _none_if_empty(bars_1m))
    return only_run_keys(feats, verdict.publish).select(MARKET_FEATURES.column_names)


@_asset(
    PIVOTS,
    lookback_dates=PIVOT_LOOKBACK,
    deps=[asset_key(SESSION_BARS)],
    description="Floor-trader pivots from the previous session, weekly pivot, distances.",
)
def pivots(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> pl.DataFrame:
    _, sessions, verdict = _read_gated_sessions(PIVOTS, context, warehouse, PIVOT_LOOKBACK)
    return only_run_keys(compute_pivots(_complete(sessions)), verdict.publish).select(PIVOTS.column_names)


@_asset(
    GOLDEN_ZONE,
    lookback_dates=GOLDEN_LOOKBACK,
    deps=[RAW_1H, asset_key(SESSION_BARS)],
    description="Golden-zone state from 1h zig-zag swings (golden-zone roots only; NULL elsewhere).",
)
def golden_zone(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> pl.DataFrame:
    roots = get_universe().golden_zone_roots
    wh, sessions, verdict = _read_gated_sessions(GOLDEN_ZONE, context, warehouse, 0)
    keys = verdict.publish
    wanted = [r for r in keys["symbol"].unique().to_list() if r in roots]
    gz = GOLDEN_ZONE.empty_frame()
    if wanted:
        bars_1h = read_lookback(wh, OHLCV_1H, context, GOLDEN_LOOKBACK).filter(pl.col("symbol").is_in(wanted))
        if bars_1h.height:
            gz = compute_golden_zone(bars_1h, roots)
    # One row per complete session of the run: NULL features for roots without the family or without data.
    frame = _complete(sessions).select("trade_date", "symbol").join(gz, on=["trade_date", "symbol"], how="left")
    return only_run_keys(frame, keys).select(GOLDEN_ZONE.column_names)


@_asset(
    CONSOLIDATED,
    ins={
        "session_bars": dg.AssetIn(asset_key(SESSION_BARS)),
        "market_features": dg.AssetIn(asset_key(MARKET_FEATURES)),
        "pivots": dg.AssetIn(asset_key(PIVOTS)),
        "golden_zone": dg.AssetIn(asset_key(GOLDEN_ZONE)),
        "policy_features": dg.AssetIn(asset_key(POLICY_FEATURES), partition_mapping=date_of_multi()),
    },
    description="The flat frame: one row per complete session (symbol, data_date) with every feature family.",
)
def consolidated_features(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    session_bars: pl.DataFrame,
    market_features: pl.DataFrame,
    pivots: pl.DataFrame,
    golden_zone: pl.DataFrame,
    policy_features: pl.DataFrame,
) -> pl.DataFrame:
    asset = "features/consolidated_features"
    publish = _sessions_gate(asset, warehouse.get(), context, session_bars).publish
    for frame, name in ((market_features, "features/market_features"), (pivots, "features/pivots"),
                        (golden_zone, "features/golden_zone")):
        require_rows(asset, publish, frame, name)
    require_rows(asset, publish, policy_features, "features/policy_features", by_symbol=False)
    sessions = only_run_keys(session_bars, publish)
    # Each root's own scheduled close: the row's timestamp and its policy cut-off (SPEC 6.4, 6.5).
    frame = build_consolidated(sessions, market_features, pivots, golden_zone, policy_features,
                               closes=schedule_for(publish))
    return only_run_keys(frame, publish, date_col="data_date")


@_asset(
    DAILY_ML_MATRIX,
    ins={
        "consolidated_features": dg.AssetIn(asset_key(CONSOLIDATED)),
        "pivots": dg.AssetIn(asset_key(PIVOTS)),
    },
    deps=[REGIME_CALENDAR],
    description="The ML matrix: STRUCT columns market_data, pivots, policy, golden_zone, regime.",
)
def daily_ml_matrix(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    consolidated_features: pl.DataFrame,
    pivots: pl.DataFrame,
) -> pl.DataFrame:
    asset = "features/daily_ml_matrix"
    publish = _read_gated_sessions(DAILY_ML_MATRIX, context, warehouse, 0)[2].publish
    require_rows(asset, publish, consolidated_features, "features/consolidated_features", date_col="data_date")
    require_rows(asset, publish, pivots, "features/pivots")
    consolidated = only_run_keys(consolidated_features, publish, date_col="data_date")
    regimes = load_regimes(get_settings().regimes_path)
    by_date = regime_for_dates(regimes, consolidated["data_date"].unique().sort())
    matrix = build_daily_ml_matrix(consolidated, pivots, by_date, datetime.now(UTC))
    return only_run_keys(matrix, publish, date_col="data_date")


FEATURE_ASSETS = [
    session_bars, market_features, pivots, golden_zone, policy_features, consolidated_features, daily_ml_matrix,
]
