"""``features.policy_features``: the 16 policy features (thin shell over ``features/policy.py``)."""

import dagster as dg
import polars as pl

from chimera_assets.defs.features.feature_asset import feature_asset
from chimera_assets.features.policy import compute_policy_features
from chimera_assets.lib.asset_keys import POLICY_EVENTS as POLICY_EVENTS_KEY
from chimera_assets.lib.partitions import parse_partition_keys, trade_date_partitions
from chimera_assets.schemas import POLICY_FEATURES


@feature_asset(
    POLICY_FEATURES,
    ins={"policy_events": dg.AssetIn(POLICY_EVENTS_KEY)},
    partitions_def=trade_date_partitions(),
    description="The 16 policy features per trade date (events before 16:00 CT only).",
)
def policy_features(context: dg.AssetExecutionContext, policy_events: pl.DataFrame) -> pl.DataFrame:
    dates = sorted(d for d, _ in parse_partition_keys(context.partition_keys))
    feats = compute_policy_features(policy_events, dates)
    return feats.select(POLICY_FEATURES.column_names)
