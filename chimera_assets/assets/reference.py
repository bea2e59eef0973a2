"""Unpartitioned reference tables: policy events and the regime calendar/weights from the YAML."""

from pathlib import Path

import dagster as dg
import polars as pl

from chimera_assets.assets.common import WAREHOUSE_IO, WRITER_POOL
from chimera_assets.features.policy import load_policy_events
from chimera_assets.features.regimes import build_regime_calendar, build_regime_weights, load_regimes
from chimera_assets.schemas import POLICY_EVENTS, REGIME_CALENDAR, REGIME_WEIGHTS
from chimera_assets.settings import get_settings

POLICY_SUFFIXES = (".parquet", ".csv", ".jsonl", ".json", ".ndjson")


def policy_files(directory: Path | None) -> list[Path]:
    """Event files in the policy directory (parquet, CSV, JSON lines); none when it is not set."""
    if directory is None or not directory.exists():
        return []
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in POLICY_SUFFIXES)


@dg.asset(
    key=dg.AssetKey(["reference", "policy_events"]),
    io_manager_key=WAREHOUSE_IO,
    group_name="reference",
    pool=WRITER_POOL,
    kinds={"polars"},
    description="Dated policy texts (social posts, executive orders, news) from CHIMERA_POLICY_DIR, deduplicated.",
)
def policy_events(context: dg.AssetExecutionContext) -> pl.DataFrame:
    directory = get_settings().policy_dir
    files = policy_files(directory)
    if not files:
        context.log.warning(
            f"no policy event files (CHIMERA_POLICY_DIR={directory}); policy features stay NULL (no coverage)"
        )
        return POLICY_EVENTS.empty_frame()
    events = load_policy_events(files)
    context.log.info(f"{events.height} policy event(s) from {len(files)} file(s)")
    return events.select(POLICY_EVENTS.column_names)


@dg.asset(
    key=dg.AssetKey(["training", "regime_weights"]),
    io_manager_key=WAREHOUSE_IO,
    group_name="training",
    pool=WRITER_POOL,
    kinds={"polars"},
    description="Regime weights from the regimes YAML (baseline = 100).",
)
def regime_weights() -> pl.DataFrame:
    return build_regime_weights(load_regimes(get_settings().regimes_path)).select(REGIME_WEIGHTS.column_names)


@dg.asset(
    key=dg.AssetKey(["training", "regime_calendar"]),
    io_manager_key=WAREHOUSE_IO,
    group_name="training",
    pool=WRITER_POOL,
    kinds={"polars"},
    description="One row per calendar day with its regime (baseline outside every regime).",
)
def regime_calendar() -> pl.DataFrame:
    return build_regime_calendar(load_regimes(get_settings().regimes_path)).select(REGIME_CALENDAR.column_names)


REFERENCE_ASSETS = [policy_events, regime_weights, regime_calendar]
