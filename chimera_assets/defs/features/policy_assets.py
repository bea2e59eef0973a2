"""``features.policy_features``: the 16 policy features (thin shell over ``features/policy.py``).

Date-partitioned; each trade date holds one row per distinct session close instant (``cutoff``) of
the universe's roots that day (``features/policy_cutoffs.py``), so every root's row is cut at its
own close (SPEC 6.4).
"""

import dagster as dg
import polars as pl

from chimera_assets.defs.features.feature_asset import feature_asset
from chimera_assets.features.policy import compute_policy_features
from chimera_assets.features.policy_cutoffs import policy_cutoffs
from chimera_assets.lib.asset_keys import POLICY_EVENTS as POLICY_EVENTS_KEY
from chimera_assets.lib.partitions import parse_partition_keys, trade_date_partitions
from chimera_assets.schemas import POLICY_FEATURES
from chimera_assets.settings import get_settings

# Materialization metadata key naming which event time the values used (the training card prints it).
POLICY_TIME_METADATA = "chimera/policy_time"


@feature_asset(
    POLICY_FEATURES,
    ins={"policy_events": dg.AssetIn(POLICY_EVENTS_KEY)},
    partitions_def=trade_date_partitions(),
    description=(
        "The 16 policy features per trade date and session-close cut-off (one row per distinct close "
        "of the universe's roots: events up to each root's own close only)."
    ),
)
def policy_features(context: dg.AssetExecutionContext, policy_events: pl.DataFrame) -> pl.DataFrame:
    dates = sorted(d for d, _ in parse_partition_keys(context.partition_keys))
    cutoffs = policy_cutoffs(dates)
    time_basis = get_settings().policy_time
    feats = compute_policy_features(policy_events, cutoffs, time_basis=time_basis)
    context.add_output_metadata({
        POLICY_TIME_METADATA: time_basis,
        "chimera/policy_cutoffs_per_date": dg.MetadataValue.json(
            sorted(set(cutoffs.group_by("trade_date").len()["len"].to_list()))
        ),
    })
    return feats.select(POLICY_FEATURES.column_names)
