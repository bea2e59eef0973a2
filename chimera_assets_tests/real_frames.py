"""The real batch through the pure builders (no Dagster), for tests that need real feature frames:
raw 1h bars -> session bars -> market, pivots, golden zone -> consolidated -> matrix."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

import chimera_assets
from chimera_assets_tests.conftest import shared_data


def real_feature_frames(start: date, end: date, roots: list[str], policy: pl.DataFrame | None = None,
                        own_closes: bool = False) -> dict[str, pl.DataFrame]:
    """Frames of [start, end] x ``roots`` from ../shared/data/databento-batch (skips when absent).

    ``policy``: the policy features to join (default: computed from no events, at 16:00 CT);
    ``own_closes``: the consolidated timestamp is each root's scheduled close (as the asset computes it),
    else the 16:00 CT fallback. Keys: raw, session_bars, market, pivots, golden, consolidated, matrix."""
    from chimera_assets.features.golden_zone import compute_golden_zone
    from chimera_assets.features.market import compute_market_features
    from chimera_assets.features.matrix import build_consolidated, build_daily_ml_matrix
    from chimera_assets.features.pivots import compute_pivots
    from chimera_assets.features.policy import compute_policy_features
    from chimera_assets.features.regimes import load_regimes, regime_for_dates
    from chimera_assets.features.session_bars import build_session_bars
    from chimera_assets.features.session_state import session_schedule
    from chimera_assets.ingest.landing import build_raw_frame, list_dbn_files, select_files
    from chimera_assets.lib.partitions import weekday_dates
    from chimera_assets.schemas import GOLDEN_ZONE, MARKET_FEATURES, OHLCV_1H, PIVOTS, POLICY_EVENTS
    from chimera_assets.universe import load_universe

    batch = shared_data("databento-batch")
    universe = load_universe()
    dates = weekday_dates(start, end)
    sel = select_files(list_dbn_files(batch), "ohlcv-1h", dates, roots, universe)
    raw, _ = build_raw_frame(OHLCV_1H, sel.files, [(d, r) for d in dates for r in roots], universe, "test")
    sb = build_session_bars(None, raw)
    mf = compute_market_features(raw, sb).select(MARKET_FEATURES.column_names)
    pv = compute_pivots(sb).select(PIVOTS.column_names)
    gz = sb.select("trade_date", "symbol").join(
        compute_golden_zone(raw, universe.golden_zone_roots), on=["trade_date", "symbol"], how="left"
    ).select(GOLDEN_ZONE.column_names)
    if policy is None:
        policy = compute_policy_features(POLICY_EVENTS.empty_frame(), sorted(set(sb["trade_date"].to_list())))
    closes = None
    if own_closes:
        cfg = universe.roots
        closes = session_schedule(
            sb.select("trade_date", "symbol").unique(), {r: cfg[r].calendar for r in roots},
            {r: cfg[r].start for r in roots}, {r: cfg[r].session_close for r in roots if cfg[r].session_close})
    cons = build_consolidated(sb, mf, pv, gz, policy, closes=closes)
    regimes = load_regimes(Path(chimera_assets.__file__).parent / "config" / "regimes.yaml")
    now = datetime(2025, 12, 15, tzinfo=UTC)
    matrix = build_daily_ml_matrix(cons, pv, regime_for_dates(regimes, cons["data_date"].unique().sort()), now)
    return {"raw": raw, "session_bars": sb, "market": mf, "pivots": pv, "golden": gz, "consolidated": cons,
            "matrix": matrix}
