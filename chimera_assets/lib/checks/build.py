"""The quality checks of the stored tables; ``definitions.py`` hands them to the domains, each keeping
those of its own assets."""

import dagster as dg

from chimera_assets.lib.checks.freshness import matrix_freshness
from chimera_assets.lib.checks.schema_change import schema_change_checks
from chimera_assets.lib.checks.scope import audited_tables
from chimera_assets.lib.checks.table_checks import table_checks
from chimera_assets.settings import partitioned_checks


def build_checks(partitioned: bool | None = None) -> list[dg.AssetChecksDefinition]:
    """The quality checks of the stored tables: one per checked table, matrix freshness, column-schema
    changes (the market-data domain adds its own ``source_files_present``).
    ``partitioned`` defaults to ``CHIMERA_PARTITIONED_CHECKS`` (see ``table_checks``)."""
    part = partitioned_checks() if partitioned is None else partitioned
    return [*(table_checks(s, part) for s in audited_tables()), matrix_freshness, *schema_change_checks()]
