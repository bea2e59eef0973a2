"""Dagster resources: where raw data and policy events come from.

Their fields are what the Dagster UI shows (Deployment -> the code location -> Resources). A field
left unset means "the deployment's setting" (``settings.py``: ``CHIMERA_LANDING_DIR``,
``CHIMERA_POLICY_DIR``), resolved when the resource is used, so one set of definitions follows its
process's environment. ``chimera run --landing-dir/--policy-dir/--demo`` and ``chimera prune
--landing-dir`` set the fields instead (``build_definitions(landing_dir=..., policy_dir=...)``): the
CLI never writes the environment.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from chimera_assets.settings import get_settings


class DatabentoSource(dg.ConfigurableResource):
    """Where raw DBN comes from.

    ``landing`` (default): files in the landing directory. ``api``: the Databento Historical API
    (key from ``DATABENTO_API_KEY``, read only when a request is made and never shown), fetched in
    month x series chunks into ``$CHIMERA_HOME/api_cache`` and recorded in the ledger, then read like
    landing files.
    """

    mode: str = Field(default="landing", description="'landing' (DBN files) or 'api' (Databento Historical API).")
    landing_dir: str | None = Field(
        default=None,
        description="Directory of DBN files (.dbn / .dbn.zst). Unset: CHIMERA_LANDING_DIR, else $CHIMERA_HOME/landing.",
    )
    api_gateway: str | None = Field(
        default=None, description="Databento API gateway URL. Unset: DATABENTO_GATEWAY, else Databento's default."
    )

    def landing_path(self) -> Path:
        return Path(self.landing_dir) if self.landing_dir else get_settings().landing_dir

    def api_cache_path(self) -> Path:
        return get_settings().home / "api_cache"


class PolicySource(dg.ConfigurableResource):
    """Where the dated policy texts (parquet/CSV/JSONL files) of ``reference.policy_events`` come from."""

    policy_dir: str | None = Field(
        default=None,
        description="Directory of policy event files. Unset: CHIMERA_POLICY_DIR (no directory: stored events kept).",
    )

    def policy_path(self) -> Path | None:
        """The directory, or None when neither the field nor ``CHIMERA_POLICY_DIR`` names one."""
        return Path(self.policy_dir).expanduser() if self.policy_dir else get_settings().policy_dir
