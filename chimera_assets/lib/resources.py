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

from chimera_assets.settings import databento_api_key, get_settings, is_set


class DatabentoSource(dg.ConfigurableResource):
    """Where raw DBN comes from.

    ``landing`` (default): files in the landing directory. ``api``: the Databento Historical API
    (key from the ``api_key`` EnvVar field, else ``DATABENTO_API_KEY``; never shown), fetched in
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
    api_key: str | None = Field(
        default=None,
        description="The Databento API key, as EnvVar('DATABENTO_API_KEY') (the UI shows the name, never the "
        "value). Unset: DATABENTO_API_KEY, read when a request is made.",
    )

    def landing_path(self) -> Path:
        landing_dir = _value(self.landing_dir)
        return Path(landing_dir).expanduser() if landing_dir else get_settings().landing_dir

    def resolved_api_key(self) -> str | None:
        """The key (a secret: never log it), or None when neither the field nor the environment has one."""
        return (_value(self.api_key) or "").strip() or databento_api_key()

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
        policy_dir = _value(self.policy_dir)
        return Path(policy_dir).expanduser() if policy_dir else get_settings().policy_dir


def _value(field: str | None) -> str | None:
    """A field's value. Dagster resolves ``EnvVar`` fields when it sets a resource up for a run or a
    tick; a resource object taken straight from the definitions (``runner.py`` reads
    ``defs.resources``) still holds the ``EnvVar``, whose value Dagster's ``get_value`` reads."""
    return field.get_value() if isinstance(field, dg.EnvVar) else field


# The deployment's values as EnvVar fields, for the code location the UI loads: the UI then names the
# variable each field comes from (a secret's value is never shown). Only variables that are set:
# Dagster refuses to start a run whose EnvVar is unset, while an empty field falls back to the
# defaults of settings.py. Tests and the CLI build their definitions without them (None = settings).
DEPLOYMENT_ENV_VARS = {"landing_dir": "CHIMERA_LANDING_DIR", "policy_dir": "CHIMERA_POLICY_DIR",
                       "api_key": "DATABENTO_API_KEY"}


def deployment_fields() -> dict[str, str | None]:
    """``build_definitions`` keyword arguments: ``dg.EnvVar(name)`` for each set variable, else None."""
    return {field: dg.EnvVar(name) if is_set(name) else None for field, name in DEPLOYMENT_ENV_VARS.items()}
