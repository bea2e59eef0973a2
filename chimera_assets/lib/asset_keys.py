"""Every asset key of the graph, in one place: ``[schema, table]`` as the spec's logical names.

A table's asset key is derived from its ``TableSpec`` (``asset_key``); the names below are the keys
the code refers to by name (dependencies, automation, sensors). Keys of per-root training tables
come from ``training_key(root)``.
"""

from __future__ import annotations

import dagster as dg

from chimera_assets import schemas
from chimera_assets.schemas import TableSpec, training_table


def asset_key(spec: TableSpec) -> dg.AssetKey:
    """The asset key of a table: ``AssetKey([spec.schema, spec.name])``."""
    return dg.AssetKey([spec.schema, spec.name])


def training_key(root: str) -> dg.AssetKey:
    """The asset key of the training table of ``root`` (``training.<root lower>_training``)."""
    return asset_key(training_table(root))


RAW_1M = asset_key(schemas.OHLCV_1M)
RAW_1H = asset_key(schemas.OHLCV_1H)
RAW_1D = asset_key(schemas.OHLCV_1D)
RAW_BARS = (RAW_1M, RAW_1H, RAW_1D)
RAW_STATS = asset_key(schemas.STATISTICS)
RAW_DEFINITIONS = asset_key(schemas.DEFINITIONS)
LOAD_STATE = asset_key(schemas.LOAD_STATE)
SESSION_BARS = asset_key(schemas.SESSION_BARS)
MARKET_FEATURES = asset_key(schemas.MARKET_FEATURES)
PIVOTS = asset_key(schemas.PIVOTS)
GOLDEN_ZONE = asset_key(schemas.GOLDEN_ZONE)
POLICY_FEATURES = asset_key(schemas.POLICY_FEATURES)
POLICY_EVENTS = asset_key(schemas.POLICY_EVENTS)
REGIME_CALENDAR = asset_key(schemas.REGIME_CALENDAR)
REGIME_WEIGHTS = asset_key(schemas.REGIME_WEIGHTS)
CONSOLIDATED = asset_key(schemas.CONSOLIDATED)
DAILY_ML_MATRIX = asset_key(schemas.DAILY_ML_MATRIX)
DATA_QUALITY_REPORT = dg.AssetKey(["ops", "data_quality_report"])  # a dashboard, not a warehouse table
