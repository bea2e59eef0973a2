"""Market data: the raw Databento tables and their load ledger, and what brings new data in (the
landing-file sensor, the Databento availability sensor, the daily safety net and their jobs)."""

from collections.abc import Sequence

import dagster as dg

from chimera_assets.defs.market_data.assets import RAW_ASSETS
from chimera_assets.defs.market_data.checks import stale_source_checks
from chimera_assets.defs.market_data.sensors import build_sensors_and_schedules
from chimera_assets.lib.domain import domain_definitions


def defs(checks: Sequence[dg.AssetChecksDefinition]) -> dg.Definitions:
    auto = build_sensors_and_schedules()
    return domain_definitions(RAW_ASSETS, [*checks, *stale_source_checks()], jobs=auto.jobs, sensors=auto.sensors,
                              schedules=auto.schedules)
