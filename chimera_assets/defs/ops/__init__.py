"""Operations: the data-quality report, the whole-graph job (the UI's "run everything" path), the
automation sensor that keeps the downstream assets up to date, and the checks that span domains."""

from collections.abc import Callable, Sequence

import dagster as dg

from chimera_assets.defs.ops.quality_report import QUALITY_ASSETS
from chimera_assets.defs.ops.whole_graph import whole_graph_job
from chimera_assets.lib.automation.sensor import automation_sensor


def defs(checks: Sequence[dg.AssetChecksDefinition], build_definitions: Callable[[str], dg.Definitions]) -> dg.Definitions:
    """``checks``: the checks no other domain holds (over several domains' assets, e.g. the
    column-schema-change check); ``build_definitions``: the code location's builder, which the
    whole-graph job runs with."""
    # The report is a dashboard, not a stored table: no table metadata, no automation condition.
    return dg.Definitions(assets=QUALITY_ASSETS, asset_checks=list(checks), jobs=[whole_graph_job(build_definitions)],
                          sensors=[automation_sensor()])
