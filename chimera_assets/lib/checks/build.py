"""Every asset check of the code location, as ``definitions.py`` wires them (``asset_checks=build_checks()``)."""

import dagster as dg

from chimera_assets.defs.market_data.checks import stale_source_checks
from chimera_assets.lib.checks.freshness import matrix_freshness
from chimera_assets.lib.checks.schema_change import schema_change_checks
from chimera_assets.lib.checks.scope import audited_tables
from chimera_assets.lib.checks.table_checks import table_checks
from chimera_assets.settings import partitioned_checks


def build_checks(partitioned: bool | None = None) -> list[dg.AssetChecksDefinition]:
    """Every quality check: one per checked table, matrix freshness, column-schema changes, stale sources.
    ``partitioned`` defaults to ``CHIMERA_PARTITIONED_CHECKS`` (see ``table_checks``)."""
    part = partitioned_checks() if partitioned is None else partitioned
    return [*(table_checks(s, part) for s in audited_tables()), matrix_freshness, *schema_change_checks(),
            *stale_source_checks()]
