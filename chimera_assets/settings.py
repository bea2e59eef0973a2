"""Every environment-dependent setting, resolved in one place.

Nothing here opens a connection: importing the package must have no side effects.

| env var | default | meaning |
|---|---|---|
| CHIMERA_HOME | ~/.chimera | where the DuckDB warehouse, landing dir and artifacts live |
| CHIMERA_WAREHOUSE | duckdb | ``duckdb`` or ``bigquery`` |
| CHIMERA_DUCKDB_PATH | $CHIMERA_HOME/warehouse.duckdb | the DuckDB file |
| CHIMERA_UNIVERSE | packaged config/universe.yaml | roots and their series |
| CHIMERA_REGIMES | packaged config/regimes.yaml | regime definitions |
| CHIMERA_LANDING_DIR | $CHIMERA_HOME/landing | DBN files dropped here are ingested by the sensor |
| CHIMERA_POLICY_DIR | (unset) | files of policy events (parquet/CSV/JSONL) |
| CHIMERA_BQ_PROJECT / CHIMERA_BQ_LOCATION | (unset) / US | BigQuery project and location |
| CHIMERA_BQ_DATASET_PREFIX | (empty) | prefix for the dataset names (e.g. ``dev_``) |
| CHIMERA_BQ_ENDPOINT | (unset) | an emulator endpoint (tests only) |
| CHIMERA_BQ_MAX_BYTES_BILLED | 107374182400 (100 GiB) | ``maximum_bytes_billed`` of every query job |
| CHIMERA_BQ_JOB_TIMEOUT_S | 3600 | ``job_timeout_ms`` of every job (BigQuery cancels it after that) |
| CHIMERA_BQ_STAGING_DATASET | ``<prefix>staging`` | dataset of the staging tables (default table expiration) |
| CHIMERA_BQ_STAGING_TTL_HOURS | 12 | expiration of staging tables (>= 6 h: a queued MERGE may wait) |
| DATABENTO_API_KEY | (unset) | the Databento key; never logged |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

WAREHOUSE_KINDS = ("duckdb", "bigquery")
# Logical schema names; on BigQuery each is a dataset (optionally prefixed).
SCHEMAS = ("market_data", "features", "training", "ops", "reference")


# BigQuery cost controls (see docs/deployment.md "Costs"): the largest legitimate job, a whole-history
# MERGE into the 1-minute bars, reads a few GiB; a job that would bill more is refused before it runs.
DEFAULT_MAX_BYTES_BILLED = 100 * 1024**3
DEFAULT_JOB_TIMEOUT_S = 3600.0
# A staging table must outlive a MERGE that waits in BigQuery's DML queue (up to 20 per table).
MIN_STAGING_TTL_HOURS = 6.0
DEFAULT_STAGING_TTL_HOURS = 12.0


class SettingsError(ValueError):
    """A setting is invalid; the message names the environment variable."""


@dataclass(frozen=True)
class Settings:
    home: Path
    warehouse: str
    duckdb_path: Path
    universe_path: Path
    regimes_path: Path
    landing_dir: Path
    policy_dir: Path | None
    bq_project: str | None = None
    bq_location: str = "US"
    bq_dataset_prefix: str = ""
    bq_endpoint: str | None = None
    bq_max_bytes_billed: int = DEFAULT_MAX_BYTES_BILLED
    bq_job_timeout_s: float = DEFAULT_JOB_TIMEOUT_S
    bq_staging_dataset: str | None = None
    bq_staging_ttl_hours: float = DEFAULT_STAGING_TTL_HOURS

    @property
    def staging_dataset_name(self) -> str:
        """The BigQuery dataset that holds staging tables (``<prefix>staging`` unless configured)."""
        return self.bq_staging_dataset or f"{self.bq_dataset_prefix}staging"

    def dataset_name(self, schema: str) -> str:
        if schema not in SCHEMAS:
            raise SettingsError(f"unknown warehouse schema {schema!r}; known: {list(SCHEMAS)}")
        return f"{self.bq_dataset_prefix}{schema}"


def get_settings(env: dict[str, str] | None = None) -> Settings:
    """Resolve settings from ``env`` (default: ``os.environ``). Cheap; call it where needed."""
    env = dict(os.environ if env is None else env)
    package_dir = Path(__file__).parent
    home = Path(env.get("CHIMERA_HOME") or Path.home() / ".chimera").expanduser()
    warehouse = (env.get("CHIMERA_WAREHOUSE") or "duckdb").strip().lower()
    if warehouse not in WAREHOUSE_KINDS:
        raise SettingsError(f"CHIMERA_WAREHOUSE={warehouse!r} is not one of {list(WAREHOUSE_KINDS)}")
    prefix = env.get("CHIMERA_BQ_DATASET_PREFIX", "")
    if prefix and not prefix.replace("_", "").isalnum():
        raise SettingsError("CHIMERA_BQ_DATASET_PREFIX may hold only letters, digits and underscores")
    policy_dir = env.get("CHIMERA_POLICY_DIR")
    staging = env.get("CHIMERA_BQ_STAGING_DATASET") or None
    if staging and not staging.replace("_", "").isalnum():
        raise SettingsError("CHIMERA_BQ_STAGING_DATASET may hold only letters, digits and underscores")
    max_bytes = _number(env, "CHIMERA_BQ_MAX_BYTES_BILLED", DEFAULT_MAX_BYTES_BILLED, int, minimum=10 * 1024**2)
    timeout = _number(env, "CHIMERA_BQ_JOB_TIMEOUT_S", DEFAULT_JOB_TIMEOUT_S, float, minimum=1.0)
    ttl = _number(env, "CHIMERA_BQ_STAGING_TTL_HOURS", DEFAULT_STAGING_TTL_HOURS, float, minimum=MIN_STAGING_TTL_HOURS)
    return Settings(
        home=home,
        warehouse=warehouse,
        duckdb_path=Path(env.get("CHIMERA_DUCKDB_PATH") or home / "warehouse.duckdb").expanduser(),
        universe_path=Path(env.get("CHIMERA_UNIVERSE") or package_dir / "config" / "universe.yaml"),
        regimes_path=Path(env.get("CHIMERA_REGIMES") or package_dir / "config" / "regimes.yaml"),
        landing_dir=Path(env.get("CHIMERA_LANDING_DIR") or home / "landing").expanduser(),
        policy_dir=Path(policy_dir).expanduser() if policy_dir else None,
        bq_project=env.get("CHIMERA_BQ_PROJECT") or None,
        bq_location=env.get("CHIMERA_BQ_LOCATION") or "US",
        bq_dataset_prefix=prefix,
        bq_endpoint=env.get("CHIMERA_BQ_ENDPOINT") or None,
        bq_max_bytes_billed=max_bytes,
        bq_job_timeout_s=timeout,
        bq_staging_dataset=staging,
        bq_staging_ttl_hours=ttl,
    )


def _number(env: dict[str, str], name: str, default, kind, minimum):
    """A numeric setting: ``default`` when unset, else ``kind(value)`` >= ``minimum``."""
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r} is below the minimum {minimum}")
    return value
