"""Training: one training table per root (targets, purge flags, splits), gated by the leakage check."""

from collections.abc import Sequence

import dagster as dg

from chimera_assets.defs.training.assets import training_assets
from chimera_assets.lib.domain import domain_definitions


def defs(checks: Sequence[dg.AssetChecksDefinition]) -> dg.Definitions:
    return domain_definitions(training_assets(), checks)
