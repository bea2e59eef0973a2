"""Sensors and the daily schedule: how new raw data gets requested without anyone clicking.

* ``chimera_landing_files`` (:mod:`chimera_assets.defs.market_data.landing_sensor`) watches the landing directory and
  requests the raw partitions of complete new files that the raw assets' planner would load.
* ``chimera_databento_availability`` asks ``metadata.get_dataset_range`` (with a key in
  ``DATABENTO_API_KEY``) which trade dates became complete since its cursor and requests them from
  the API for the configured roots; without a key every tick is skipped with the reason.
* ``chimera_daily_safety_net`` (18:30 America/Chicago, Mon-Fri) re-requests, for the last few trade
  dates, raw partitions that are available but were never materialized and the date x root chain
  of any session whose matrix partition is missing.

Downstream assets then update by declarative automation (``chimera_assets/lib/automation/``).
Tick intervals come from ``CHIMERA_SENSOR_INTERVAL_S`` when set (tests shorten them with it).
"""

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg

from chimera_assets.dbn.diagnostics import DbnDecodeError
from chimera_assets.defs.market_data.landing_sensor import landing_sensor_factory
from chimera_assets.defs.market_data.run_requests import (
    POLICY_JOB_NAME,
    RAW_JOB_NAME,
    RAW_KEYS,
    PartitionKey,
    instance_or_none,
    partition_run_requests,
    policy_run_requests,
    raw_key,
)
from chimera_assets.ingest.coverage import file_coverage
from chimera_assets.ingest.landing import SCHEMA_TABLES, list_dbn_files, needed_window
from chimera_assets.lib.asset_keys import (
    CONSOLIDATED,
    DAILY_ML_MATRIX,
    GOLDEN_ZONE,
    MARKET_FEATURES,
    PIVOTS,
    POLICY_FEATURES,
    RAW_BARS,
    SESSION_BARS,
)
from chimera_assets.lib.automation.sensor import last_partition_date
from chimera_assets.lib.partitions import FIRST_TRADE_DATE
from chimera_assets.lib.resources import DatabentoSource
from chimera_assets.settings import api_roots as configured_api_roots
from chimera_assets.settings import api_sensor_start, safety_net_days, sensor_interval_s
from chimera_assets.trade_calendar import next_weekday, weekday_dates
from chimera_assets.universe import Universe, get_universe

API_SENSOR_NAME = "chimera_databento_availability"
SAFETY_NET_NAME = "chimera_daily_safety_net"
REFRESH_JOB_NAME = "chimera_session_refresh"
SAFETY_NET_CRON = "30 18 * * 1-5"
CHICAGO = "America/Chicago"
DEFAULT_API_INTERVAL_S = 900
API_RUN_CONFIG = {"resources": {"databento": {"config": {"mode": "api"}}}}
DOWNSTREAM_MULTI = (SESSION_BARS, MARKET_FEATURES, PIVOTS, GOLDEN_ZONE, CONSOLIDATED, DAILY_ML_MATRIX)

# --------------------------------------------------------------------------------------------------
# Databento API availability
# --------------------------------------------------------------------------------------------------


def api_roots(universe: Universe) -> list[str]:
    """``CHIMERA_API_ROOTS`` (comma list) or every root of the universe."""
    configured = configured_api_roots()
    return universe.require_roots(configured) if configured else universe.root_names


def last_complete_trade_date(schema: str, available_end: datetime, last_date: date) -> date | None:
    """The newest trade date whose whole ``schema`` window ends at or before ``available_end``."""
    d = min(last_date, available_end.date())
    first = date.fromisoformat(FIRST_TRADE_DATE)
    while d >= first:
        if d.weekday() < 5 and needed_window(schema, d)[1] <= available_end:
            return d
        d -= timedelta(days=1)
    return None


def newly_available(
    api, universe: Universe, roots: Sequence[str], cursor: dict[str, str], *, now: datetime | None = None,
    initial_start: date | None = None,
) -> tuple[dict[PartitionKey, set[dg.AssetKey]], dict[str, str]]:
    """(assets per (date, root) to request, new cursor {schema: last requested trade date})."""
    last_date = last_partition_date(now)
    schemas = sorted({s for r in roots for s in universe.roots[r].schemas if s in SCHEMA_TABLES})
    out: dict[PartitionKey, set[dg.AssetKey]] = defaultdict(set)
    new_cursor = dict(cursor)
    for schema in schemas:
        _, end = api.dataset_range(universe.dataset, schema)
        last = last_complete_trade_date(schema, end, last_date)
        if last is None:
            continue
        prev = cursor.get(schema)
        if prev:
            start = next_weekday(date.fromisoformat(prev))
        else:
            start = initial_start or last  # first tick: the newest complete date only, not history
        for d in weekday_dates(start, last):
            for r in roots:
                if schema in universe.roots[r].schemas:
                    out[(d, r)].add(raw_key(schema))
        if not prev or last > date.fromisoformat(prev):
            new_cursor[schema] = last.isoformat()
    return dict(out), new_cursor


def api_sensor_factory(jobs: Sequence, minimum_interval_seconds: int | None = None) -> dg.SensorDefinition:
    @dg.sensor(
        name=API_SENSOR_NAME,
        jobs=list(jobs),
        minimum_interval_seconds=minimum_interval_seconds or sensor_interval_s(DEFAULT_API_INTERVAL_S),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Asks Databento (metadata.get_dataset_range) which trade dates became available and requests "
            "them from the API; skipped without DATABENTO_API_KEY."
        ),
    )
    def chimera_databento_availability(context: dg.SensorEvaluationContext, databento: DatabentoSource):
        from chimera_assets.ingest.databento_api import API_KEY_ENV, DatabentoApi

        if not databento.resolved_api_key():
            return dg.SkipReason(
                f"{API_KEY_ENV} is not set: no Databento API key configured, so there is nothing to ask "
                "(set the key in the code location's environment to pull new trade dates from the API)"
            )
        universe = get_universe()
        roots = api_roots(universe)
        api = DatabentoApi(key=databento.resolved_api_key(), gateway=databento.api_gateway, max_attempts=3)
        cursor = json.loads(context.cursor) if context.cursor else {}
        wanted, new_cursor = newly_available(
            api, universe, roots, cursor, initial_start=api_sensor_start()
        )
        tags = {"chimera/trigger": API_SENSOR_NAME}
        requests = partition_run_requests(
            wanted, universe, run_key_prefix="api", tags=tags, run_config=API_RUN_CONFIG, job_name=RAW_JOB_NAME
        )
        if requests:
            requests += policy_run_requests(instance_or_none(context), {d for d, _ in wanted}, run_key_prefix="api", tags=tags)
        if not requests:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"no newly available trade dates since {cursor or 'start'}"),
                cursor=json.dumps(new_cursor, sort_keys=True),
            )
        context.log.info(f"databento: requesting {sum(len(v) for v in wanted.values())} raw partition(s)")
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(new_cursor, sort_keys=True))

    return chimera_databento_availability


# --------------------------------------------------------------------------------------------------
# Daily safety net
# --------------------------------------------------------------------------------------------------


def landing_coverage(landing_dir: Path, universe: Universe, keys: list[PartitionKey]) -> dict[str, set[PartitionKey]]:
    """Per schema: which of ``keys`` the readable landing files hold records for (record coverage)."""
    wanted = set(keys)
    out: dict[str, set[PartitionKey]] = defaultdict(set)
    for p in list_dbn_files(landing_dir):
        try:
            cov = file_coverage(p, universe)
        except (DbnDecodeError, OSError):
            continue
        out[cov.schema] |= cov.partitions & wanted
    return dict(out)


def safety_net_requests(
    instance: dg.DagsterInstance, source: DatabentoSource, universe: Universe, day: date, n_days: int
) -> list[dg.RunRequest]:
    dates = [d for d in weekday_dates(day - timedelta(days=3 * n_days), min(day, last_partition_date()))][-n_days:]
    if not dates:
        return []
    if source.mode == "api":
        roots = api_roots(universe)
        available = {
            s: {(d, r) for d in dates for r in roots if s in universe.roots[r].schemas} for s in SCHEMA_TABLES
        }
    else:
        keys = [(d, r) for d in dates for r in universe.root_names]
        available = landing_coverage(source.landing_path(), universe, keys)
    materialized = {k: instance.get_materialized_partitions(k) for k in (*RAW_KEYS, DAILY_ML_MATRIX)}
    wanted: dict[PartitionKey, set[dg.AssetKey]] = defaultdict(set)
    for schema, keys_ok in available.items():
        for d, r in keys_ok:
            if f"{d.isoformat()}|{r}" not in materialized[raw_key(schema)]:
                wanted[(d, r)].add(raw_key(schema))
    bar_keys = set(RAW_BARS)
    for d in dates:
        for r in universe.root_names:
            pk = f"{d.isoformat()}|{r}"
            has_bars = any(pk in materialized[k] for k in RAW_BARS) or bool(wanted.get((d, r), set()) & bar_keys)
            if has_bars and pk not in materialized[DAILY_ML_MATRIX]:
                wanted[(d, r)].update(DOWNSTREAM_MULTI)
    return partition_run_requests(
        dict(wanted), universe, run_key_prefix=f"safety|{day.isoformat()}",
        tags={"chimera/trigger": SAFETY_NET_NAME}, run_config=API_RUN_CONFIG if source.mode == "api" else None,
    )


def safety_net_factory(job) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=SAFETY_NET_NAME,
        cron_schedule=SAFETY_NET_CRON,
        execution_timezone=CHICAGO,
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "Evening safety net: raw partitions of the last trade dates that are available but never "
            "loaded, and the session chain of any session whose matrix partition is missing."
        ),
    )
    def chimera_daily_safety_net(context: dg.ScheduleEvaluationContext, databento: DatabentoSource):
        n_days = safety_net_days()
        day = context.scheduled_execution_time.astimezone(_chicago()).date()
        requests = safety_net_requests(context.instance, databento, get_universe(), day, n_days)
        if not requests:
            return dg.SkipReason(f"the last {n_days} trade date(s) up to {day} are loaded and materialized")
        return requests

    return chimera_daily_safety_net


def _chicago():
    from zoneinfo import ZoneInfo

    return ZoneInfo(CHICAGO)


# --------------------------------------------------------------------------------------------------
# Wiring
# --------------------------------------------------------------------------------------------------


def raw_ingest_job():
    return dg.define_asset_job(
        RAW_JOB_NAME,
        selection=dg.AssetSelection.assets(*RAW_KEYS),
        description="Raw Databento tables for the requested (date, root) partitions (sensor-launched).",
    )


def policy_features_job():
    return dg.define_asset_job(
        POLICY_JOB_NAME,
        selection=dg.AssetSelection.assets(POLICY_FEATURES),
        description="Policy features of the trade dates the sensors load (date-only partitions).",
    )


def session_refresh_job():
    return dg.define_asset_job(
        REFRESH_JOB_NAME,
        selection=dg.AssetSelection.assets(*RAW_KEYS, *DOWNSTREAM_MULTI),
        description="Raw tables through session bars, features and the matrix for (date, root) partitions.",
    )


@dataclass
class Automation:
    jobs: list
    sensors: list
    schedules: list


def build_sensors_and_schedules() -> Automation:
    """The jobs, sensors and schedule to add to the Definitions (plus ``automation_sensor()``)."""
    raw_job = raw_ingest_job()
    policy_job = policy_features_job()
    refresh_job = session_refresh_job()
    return Automation(
        jobs=[raw_job, policy_job, refresh_job],
        sensors=[landing_sensor_factory([raw_job, policy_job]), api_sensor_factory([raw_job, policy_job])],
        schedules=[safety_net_factory(refresh_job)],
    )
