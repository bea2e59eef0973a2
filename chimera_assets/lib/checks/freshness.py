"""``matrix_freshness`` (WARN): the matrix's newest trade date per root lags the root's exchange calendar
by at most ``QualityConfig.freshness_max_lag`` sessions.

Kept custom rather than Dagster's ``build_last_update_freshness_checks`` / time-partition freshness:
those judge when the asset was last materialized (or its newest partition key), while this judges the
data itself - the newest ``data_date`` stored per root, in trading sessions of that root's calendar -
so a run that rewrote old dates, or a root whose source stopped, still shows as stale.
"""

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from chimera_assets.lib.asset_keys import asset_key
from chimera_assets.lib.checks.evaluation import check_output, evaluation
from chimera_assets.lib.checks.scope import calendars_and_starts
from chimera_assets.lib.io_manager import WarehouseResource
from chimera_assets.quality.registry import RULES, QualityConfig
from chimera_assets.quality.soft_rules import freshness_outcome
from chimera_assets.schemas import DAILY_ML_MATRIX

MATRIX_KEY = asset_key(DAILY_ML_MATRIX)


@dg.asset_check(
    asset=MATRIX_KEY,
    name="matrix_freshness",
    blocking=False,
    description=RULES["matrix_freshness"].description,
)
def matrix_freshness(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    config = QualityConfig.from_env()
    calendars, _ = calendars_and_starts()
    keys = warehouse.get().read(DAILY_ML_MATRIX, columns=["symbol", "data_date"])
    latest = {s: d for s, d in keys.group_by("symbol").agg(pl.col("data_date").max()).iter_rows()}
    as_of = config.as_of or datetime.now(UTC)
    oc = freshness_outcome(latest, calendars, as_of, config.freshness_max_lag)
    if not latest:
        oc.metadata["note"] = "the matrix has no rows yet"
    # Yielded as an evaluation: an AssetCheckResult of an unpartitioned check in a partitioned run makes
    # Dagster enumerate every partition key of the asset (~11 s here) to find its target.
    yield evaluation(MATRIX_KEY, oc, None, False)
    yield check_output(context, MATRIX_KEY, "matrix_freshness")
