"""The code location: the domains of ``chimera_assets/defs`` merged with the shared resources.

Building it opens no connection and reads only the packaged YAML files.
"""

from __future__ import annotations

import dagster as dg

import chimera_assets.lib.dagster_warnings  # noqa: F401 - first: silences the beta notices of the APIs used on purpose
from chimera_assets.defs import features, market_data, ops, reference, training
from chimera_assets.lib.checks.build import build_checks
from chimera_assets.lib.instance import apply_bookkeeping_env
from chimera_assets.lib.io_manager import WarehouseIOManager
from chimera_assets.lib.resources import DatabentoSource, PolicySource, deployment_fields
from chimera_assets.lib.warehouse_resource import warehouse_resource


def build_definitions(
    source_mode: str = "landing",
    landing_dir: str | None = None,
    policy_dir: str | None = None,
    api_key: str | None = None,
) -> dg.Definitions:
    """``landing_dir``/``policy_dir``: the source directories as resource fields (``chimera run``
    options, or EnvVars for the code location); ``api_key``: ``dg.EnvVar`` only, never a value.
    None: the deployment's settings, resolved where used (lib/resources.py)."""
    warehouse = warehouse_resource()  # DuckDB by default; BigQuery settings as resource fields
    checks = build_checks()  # each domain takes the checks of its own assets
    domains = [market_data.defs(checks), reference.defs(checks), features.defs(checks), training.defs(checks)]
    placed = {id(c) for d in domains for c in d.asset_checks or []}
    # ops holds the checks over several domains' assets, so no check is left out
    domains.append(ops.defs([c for c in checks if id(c) not in placed], build_definitions))
    shared = dg.Definitions(
        # Steps run one after another in the run's process: a step subprocess costs 5-15 s of imports
        # and DuckDB allows one writer at a time anyway (sensor/automation runs are small).
        executor=dg.in_process_executor,
        resources={
            "warehouse": warehouse,
            "warehouse_io": WarehouseIOManager(warehouse=warehouse),
            "databento": DatabentoSource(mode=source_mode, landing_dir=landing_dir, api_key=api_key),
            "policy": PolicySource(policy_dir=policy_dir),
        },
    )
    return dg.Definitions.merge(*domains, shared)


# The code server and every run worker (UI launches, backfills, sensor runs) import this module: the
# event bookkeeping settings reach the run worker from here even when `dagster dev` was started
# without them (a value set in the environment wins; chimera_assets/lib/instance.py).
apply_bookkeeping_env()
defs = build_definitions(**deployment_fields())  # the UI shows which variable each field comes from
