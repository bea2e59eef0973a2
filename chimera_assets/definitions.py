"""The code location: every asset, check, sensor and resource of chimera.

Building it opens no connection and reads only the packaged YAML files.
"""

from __future__ import annotations

import dagster as dg

import chimera_assets.dagster_warnings  # noqa: F401 - first: silences the beta notices of the APIs used on purpose
from chimera_assets.assets.features import FEATURE_ASSETS
from chimera_assets.assets.market_data import RAW_ASSETS
from chimera_assets.assets.quality_report import QUALITY_ASSETS
from chimera_assets.assets.reference import REFERENCE_ASSETS
from chimera_assets.assets.training import training_assets
from chimera_assets.instance import apply_bookkeeping_env
from chimera_assets.io_manager import WarehouseIOManager, with_table_metadata
from chimera_assets.lib.automation.flows import with_automation
from chimera_assets.lib.automation.sensor import automation_sensor
from chimera_assets.lib.checks.build import build_checks
from chimera_assets.lib.warehouse_resource import warehouse_resource
from chimera_assets.resources import DatabentoSource, PolicySource, deployment_fields
from chimera_assets.sensors import build_sensors_and_schedules
from chimera_assets.whole_graph import whole_graph_job


def build_definitions(
    source_mode: str = "landing",
    landing_dir: str | None = None,
    policy_dir: str | None = None,
    api_key: str | None = None,
) -> dg.Definitions:
    """``landing_dir``/``policy_dir``: the source directories as resource fields (``chimera run``
    options, or EnvVars for the code location); ``api_key``: ``dg.EnvVar`` only, never a value.
    None: the deployment's settings, resolved where used (resources.py)."""
    warehouse = warehouse_resource()  # DuckDB by default; BigQuery settings as resource fields
    auto = build_sensors_and_schedules()  # landing + API sensors, the daily safety net, their jobs
    return dg.Definitions(
        assets=[
            *with_table_metadata(with_automation([*RAW_ASSETS, *REFERENCE_ASSETS, *FEATURE_ASSETS, *training_assets()])),
            *QUALITY_ASSETS,
        ],
        asset_checks=build_checks(),
        jobs=[*auto.jobs, whole_graph_job(build_definitions)],  # the UI's whole-graph path (whole_graph.py)
        sensors=[*auto.sensors, automation_sensor()],
        schedules=auto.schedules,
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


# The code server and every run worker (UI launches, backfills, sensor runs) import this module: the
# event bookkeeping settings reach the run worker from here even when `dagster dev` was started
# without them (a value set in the environment wins; chimera_assets/instance.py).
apply_bookkeeping_env()
defs = build_definitions(**deployment_fields())  # the UI shows which variable each field comes from
