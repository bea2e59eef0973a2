"""Dagster resources: where raw data comes from (landing directory or the Databento API)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from chimera_assets.settings import get_settings


class DatabentoSource(dg.ConfigurableResource):
    """Where raw DBN comes from.

    ``landing`` (default): files in the landing directory (``CHIMERA_LANDING_DIR``). ``api``: the
    Databento Historical API (key from ``DATABENTO_API_KEY``), fetched in month x series chunks into
    ``$CHIMERA_HOME/api_cache`` and recorded in the ledger, then read like landing files.
    """

    mode: str = "landing"
    landing_dir: str | None = None
    api_gateway: str | None = None

    def landing_path(self) -> Path:
        return Path(self.landing_dir) if self.landing_dir else get_settings().landing_dir

    def api_cache_path(self) -> Path:
        return get_settings().home / "api_cache"
