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
| CHIMERA_POLICY_TIME | event | ``event``: policy events count from their event time; ``knowledge``: from the later of event time and ingest time (a backtest of what was collected by then) |
| CHIMERA_BQ_PROJECT / CHIMERA_BQ_LOCATION | (unset) / US | BigQuery project and location |
| CHIMERA_BQ_DATASET_PREFIX | (empty) | prefix for the dataset names (e.g. ``dev_``) |
| CHIMERA_BQ_ENDPOINT | (unset) | an emulator endpoint (tests only) |
| CHIMERA_BQ_MAX_BYTES_BILLED | 107374182400 (100 GiB) | ``maximum_bytes_billed`` of every query job |
| CHIMERA_BQ_JOB_TIMEOUT_S | 3600 | ``job_timeout_ms`` of every job (BigQuery cancels it after that) |
| CHIMERA_BQ_STAGING_DATASET | ``<prefix>staging`` | dataset of the staging tables (default table expiration) |
| CHIMERA_BQ_STAGING_TTL_HOURS | 12 | expiration of staging tables (>= 6 h: a queued MERGE may wait) |
| CHIMERA_BQ_STORAGE_ENDPOINT | (unset) | an emulator's Storage Read gRPC address (tests only; needs CHIMERA_BQ_ENDPOINT) |
| CHIMERA_BQ_CREDENTIALS_JSON | (unset) | a service-account key as JSON text; a secret: never in ``Settings`` |
| DATABENTO_API_KEY | (unset) | the Databento key; a secret: never in ``Settings``, never logged |
| DATABENTO_GATEWAY | (unset) | a Databento API gateway URL (the loopback fake gateway in tests) |
| CHIMERA_SENSOR_INTERVAL_S | (unset) | minimum interval of every sensor tick, s (tests shorten it) |
| CHIMERA_LANDING_SETTLE_S | 0 (off) | the landing sensor also accepts a file at first sight when its mtime is this old, s |
| CHIMERA_API_ROOTS | every root | comma-separated roots the Databento availability sensor asks for |
| CHIMERA_API_SENSOR_START | (unset) | first trade date the availability sensor asks for (YYYY-MM-DD) |
| CHIMERA_SAFETY_NET_DAYS | 5 | trade dates the daily safety net looks back over |
| CHIMERA_ROLL_ADJUSTMENT | ratio | roll adjustment of the training targets: ``ratio``, ``difference`` or ``none`` |
| CHIMERA_PARTITIONED_CHECKS | (off) | ``1``: the checks of partitioned tables become partitioned checks |
| CHIMERA_QUALITY_* | see quality/registry.py | data-quality thresholds (``quality_env``) |
| DAGSTER_HOME | $CHIMERA_HOME/dagster | the Dagster instance (``dagster_home_env``; lib/instance.py) |

The sensor/check/quality values are functions, not ``Settings`` fields, so a bad value fails only
where it is used (a tick, a check build), as before, and not every ``get_settings()`` caller.
The CLI never writes this environment: its options reach the runs as resource fields
(``build_definitions(landing_dir=..., policy_dir=...)``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

WAREHOUSE_KINDS = ("duckdb", "bigquery")
# Logical schema names; on BigQuery each is a dataset (optionally prefixed).
SCHEMAS = ("market_data", "features", "training", "ops", "reference")
# When a policy event becomes usable by the policy features (docs/policy_features.md section 4).
POLICY_TIME_BASES = ("event", "knowledge")


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
    policy_time: str = "event"

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
    policy_time = (env.get("CHIMERA_POLICY_TIME") or "event").strip().lower()
    if policy_time not in POLICY_TIME_BASES:
        raise SettingsError(f"CHIMERA_POLICY_TIME={policy_time!r} is not one of {list(POLICY_TIME_BASES)}")
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
        policy_time=policy_time,
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


# --------------------------------------------------------------------------------------------------
# Settings read where they are used (functions: a bad value fails there, not in every get_settings())
# --------------------------------------------------------------------------------------------------


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _text(name: str, env: Mapping[str, str] | None) -> str:
    return (_env(env).get(name) or "").strip()


def databento_api_key(env: Mapping[str, str] | None = None) -> str | None:
    """``DATABENTO_API_KEY`` (stripped) or None. A secret: callers never log or store it."""
    return _text("DATABENTO_API_KEY", env) or None


def databento_gateway(env: Mapping[str, str] | None = None) -> str | None:
    """``DATABENTO_GATEWAY`` or None (Databento's default gateway)."""
    return _env(env).get("DATABENTO_GATEWAY") or None


def bq_credentials_json(env: Mapping[str, str] | None = None) -> str | None:
    """``CHIMERA_BQ_CREDENTIALS_JSON`` (a service-account key) or None. A secret."""
    return _env(env).get("CHIMERA_BQ_CREDENTIALS_JSON") or None


def bq_storage_endpoint(env: Mapping[str, str] | None = None) -> str | None:
    """``CHIMERA_BQ_STORAGE_ENDPOINT`` ("127.0.0.1:9060", an emulator's Storage Read address) or None."""
    return _env(env).get("CHIMERA_BQ_STORAGE_ENDPOINT") or None


def sensor_interval_s(default: int, env: Mapping[str, str] | None = None) -> int:
    """``CHIMERA_SENSOR_INTERVAL_S`` (tests shorten every sensor tick with it, >= 1), else ``default``."""
    raw = _text("CHIMERA_SENSOR_INTERVAL_S", env)
    if not raw:
        return default
    try:
        value = int(float(raw))
    except ValueError:
        raise SettingsError(f"CHIMERA_SENSOR_INTERVAL_S={raw!r} is not a number of seconds") from None
    return max(1, value)


def landing_settle_s(env: Mapping[str, str] | None = None) -> float:
    """``CHIMERA_LANDING_SETTLE_S``: a landing file whose mtime is at least this many seconds old is
    accepted at first sight (default 0: off)."""
    raw = _text("CHIMERA_LANDING_SETTLE_S", env)
    return float(raw) if raw else 0.0


def api_roots(env: Mapping[str, str] | None = None) -> list[str] | None:
    """``CHIMERA_API_ROOTS`` split on commas (the caller validates them against the universe), or None."""
    raw = _text("CHIMERA_API_ROOTS", env)
    return raw.split(",") if raw else None


def api_sensor_start(env: Mapping[str, str] | None = None) -> date | None:
    """``CHIMERA_API_SENSOR_START`` (YYYY-MM-DD): the availability sensor's first trade date, or None."""
    raw = _text("CHIMERA_API_SENSOR_START", env)
    return date.fromisoformat(raw) if raw else None


def safety_net_days(env: Mapping[str, str] | None = None) -> int:
    """``CHIMERA_SAFETY_NET_DAYS``: trade dates the daily safety net looks back over (default 5)."""
    return int(_env(env).get("CHIMERA_SAFETY_NET_DAYS", "5"))


def partitioned_checks(env: Mapping[str, str] | None = None) -> bool:
    """``CHIMERA_PARTITIONED_CHECKS`` in (1, true, yes, on): partitioned checks for partitioned tables."""
    return _text("CHIMERA_PARTITIONED_CHECKS", env).lower() in ("1", "true", "yes", "on")


ROLL_ADJUSTMENTS = ("ratio", "difference", "none")


def roll_adjustment(env: Mapping[str, str] | None = None) -> str:
    """``CHIMERA_ROLL_ADJUSTMENT``: how training targets bridge a contract roll (default ``ratio``)."""
    value = _text("CHIMERA_ROLL_ADJUSTMENT", env).lower() or "ratio"
    if value not in ROLL_ADJUSTMENTS:
        raise SettingsError(f"CHIMERA_ROLL_ADJUSTMENT={value!r} is not one of {list(ROLL_ADJUSTMENTS)}")
    return value


def quality_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``CHIMERA_QUALITY_*`` variables (``QualityConfig.from_env`` parses and validates them)."""
    return {k: v for k, v in _env(env).items() if k.startswith("CHIMERA_QUALITY_")}


def dagster_home_env(env: Mapping[str, str] | None = None) -> str | None:
    """``DAGSTER_HOME`` (stripped) or None; lib/instance.py resolves the default."""
    return _text("DAGSTER_HOME", env) or None


def is_set(name: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether the variable ``name`` holds a non-blank value (resources then name it as an ``EnvVar``)."""
    return bool(_text(name, env))


def process_env() -> dict[str, str]:
    """A copy of this process's environment: the base of a child process's environment
    (``chimera ui`` adds DAGSTER_HOME to it for ``dagster dev``) and of ``env`` mappings."""
    return dict(os.environ)


def set_process_defaults(values: Mapping[str, str]) -> None:
    """Set ``values`` in THIS process's environment where unset (a value the user set wins).

    The one write to ``os.environ``, and only for variables Dagster itself reads in-process from
    ``os.environ`` with no API to pass them (the event batch size, planned-event subsets, the
    automation timestamp fetch limit: see ``instance.BOOKKEEPING_ENV``); chimera's own options never
    go through the environment."""
    for key, value in values.items():
        if not (os.environ.get(key) or "").strip():
            os.environ[key] = value


# Every CHIMERA_* variable chimera or its CI scripts read: any other is most likely a misspelling
# (CHIMERA_LANDNG_DIR would otherwise be ignored in silence and the default directory used).
KNOWN_VARIABLES = frozenset({
    "CHIMERA_HOME", "CHIMERA_WAREHOUSE", "CHIMERA_DUCKDB_PATH", "CHIMERA_UNIVERSE", "CHIMERA_REGIMES",
    "CHIMERA_LANDING_DIR", "CHIMERA_POLICY_DIR", "CHIMERA_BQ_PROJECT", "CHIMERA_BQ_LOCATION",
    "CHIMERA_BQ_DATASET_PREFIX", "CHIMERA_BQ_ENDPOINT", "CHIMERA_BQ_MAX_BYTES_BILLED", "CHIMERA_BQ_JOB_TIMEOUT_S",
    "CHIMERA_BQ_STAGING_DATASET", "CHIMERA_BQ_STAGING_TTL_HOURS", "CHIMERA_BQ_STORAGE_ENDPOINT",
    "CHIMERA_BQ_CREDENTIALS_JSON", "CHIMERA_SENSOR_INTERVAL_S", "CHIMERA_LANDING_SETTLE_S", "CHIMERA_API_ROOTS",
    "CHIMERA_API_SENSOR_START", "CHIMERA_SAFETY_NET_DAYS", "CHIMERA_PARTITIONED_CHECKS",
    "CHIMERA_QUALITY_OUTLIER_K", "CHIMERA_QUALITY_THIN_RATIO", "CHIMERA_QUALITY_THIN_WINDOW",
    "CHIMERA_QUALITY_FRESHNESS_LAG", "CHIMERA_QUALITY_PER_PARTITION_LIMIT", "CHIMERA_QUALITY_AS_OF",
    # tests and CI scripts
    "CHIMERA_TEST_POSTGRES_URL", "CHIMERA_BQ_EMULATOR", "CHIMERA_BQ_EMULATOR_PYTHON", "CHIMERA_BQ_EMULATOR_VENV",
    "CHIMERA_BQ_EMULATOR_STATE", "CHIMERA_BQ_EMULATOR_GRPC_PORT", "CHIMERA_VENV", "CHIMERA_PYTHON",
    "CHIMERA_PG_STATE", "CHIMERA_SCREENSHOT_DIR", "CHIMERA_CHROMIUM",
})


def unknown_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """One line per set ``CHIMERA_*`` variable chimera does not know, with the closest known name."""
    import difflib

    lines = []
    for name in sorted(k for k in _env(env) if k.startswith("CHIMERA_") and k not in KNOWN_VARIABLES):
        close = difflib.get_close_matches(name, sorted(KNOWN_VARIABLES), n=1, cutoff=0.8)
        hint = f" (did you mean {close[0]}?)" if close else ""
        lines.append(f"{name} is not a chimera setting and is ignored{hint}")
    return lines


def check_home(settings: Settings) -> None:
    """``CHIMERA_HOME`` must be a writable directory (created if missing), else SettingsError."""
    home = settings.home
    if home.exists() and not home.is_dir():
        raise SettingsError(f"CHIMERA_HOME={str(home)!r} is a file, not a directory")
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(f"CHIMERA_HOME={str(home)!r} cannot be created: {exc.strerror or exc}") from None
    if not os.access(home, os.W_OK | os.X_OK):
        raise SettingsError(f"CHIMERA_HOME={str(home)!r} is not writable")
