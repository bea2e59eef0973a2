"""Warehouse backends behind one interface (``base.Warehouse``); ``get_warehouse`` picks one."""

from __future__ import annotations

from chimera_assets.settings import Settings, get_settings
from chimera_assets.warehouse.base import (
    AuditFailed,
    FrameRejected,
    MergeResult,
    Slice,
    Warehouse,
    WarehouseError,
)


def get_warehouse(settings: Settings | None = None) -> Warehouse:
    """The configured backend (DuckDB by default). Opens nothing until first used."""
    settings = settings or get_settings()
    if settings.warehouse == "bigquery":
        from chimera_assets.warehouse.bigquery_backend import BigQueryWarehouse

        return BigQueryWarehouse.from_settings(settings)
    from chimera_assets.warehouse.duckdb_backend import DuckDBWarehouse

    return DuckDBWarehouse(settings.duckdb_path)


__all__ = [
    "AuditFailed", "FrameRejected", "MergeResult", "Slice", "Warehouse", "WarehouseError", "get_warehouse",
]
