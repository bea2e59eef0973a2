"""Reference data: policy events (from the policy resource's files) and the regime calendar and
weights (from config/regimes.yaml)."""

from collections.abc import Sequence

import dagster as dg

from chimera_assets.defs.reference.assets import REFERENCE_ASSETS
from chimera_assets.lib.domain import domain_definitions


def defs(checks: Sequence[dg.AssetChecksDefinition]) -> dg.Definitions:
    return domain_definitions(REFERENCE_ASSETS, checks)
