"""How a domain package (``chimera_assets/defs/<domain>``) turns its pieces into ``dg.Definitions``.

Every domain gives its assets the same treatment here, so the domains differ only in what they hold:
the automation condition of each downstream asset (``lib/automation``), the column schema of each
stored table as metadata, and of the code location's checks those that target only the domain's
assets (a check over several domains' assets, like the column-schema-change check, goes to ops).
"""

from collections.abc import Sequence

import dagster as dg

from chimera_assets.lib.automation.flows import with_automation
from chimera_assets.lib.io_manager import with_table_metadata


def domain_definitions(
    assets: Sequence[dg.AssetsDefinition],
    checks: Sequence[dg.AssetChecksDefinition],
    *,
    jobs: Sequence = (),
    sensors: Sequence[dg.SensorDefinition] = (),
    schedules: Sequence[dg.ScheduleDefinition] = (),
) -> dg.Definitions:
    """The domain's assets (with automation conditions and table metadata), the checks among
    ``checks`` that target only them, and the domain's jobs, sensors and schedules."""
    wrapped = with_table_metadata(with_automation(list(assets)))
    keys = {k for a in wrapped for k in a.keys}
    own = [c for c in checks if all(ck.asset_key in keys for ck in c.check_keys)]
    return dg.Definitions(assets=wrapped, asset_checks=own, jobs=list(jobs), sensors=list(sensors),
                          schedules=list(schedules))
