"""Features: session bars, the feature families, policy features, the consolidated frame and
``daily_ml_matrix`` (thin assets over the pure maths in ``chimera_assets/features``)."""

from collections.abc import Sequence

import dagster as dg

from chimera_assets.defs.features.assets import FEATURE_ASSETS
from chimera_assets.lib.domain import domain_definitions


def defs(checks: Sequence[dg.AssetChecksDefinition]) -> dg.Definitions:
    return domain_definitions(FEATURE_ASSETS, checks)
