"""The code location: every asset, check, sensor and resource of chimera.

Building it opens no connection and reads only the packaged YAML files.
"""

from __future__ import annotations

import dagster as dg

from chimera_assets.assets.features import FEATURE_ASSETS
from chimera_assets.assets.market_data import RAW_ASSETS
from chimera_assets.assets.reference import REFERENCE_ASSETS
from chimera_assets.assets.training import training_assets
from chimera_assets.io_manager import WarehouseIOManager, WarehouseResource
from chimera_assets.resources import DatabentoSource


def build_definitions(source_mode: str = "landing") -> dg.Definitions:
    warehouse = WarehouseResource()
    return dg.Definitions(
        assets=[*RAW_ASSETS, *REFERENCE_ASSETS, *FEATURE_ASSETS, *training_assets()],
        resources={
            "warehouse": warehouse,
            "warehouse_io": WarehouseIOManager(warehouse=warehouse),
            "databento": DatabentoSource(mode=source_mode),
        },
    )


defs = build_definitions()
