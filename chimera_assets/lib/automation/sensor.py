"""The automation condition sensor and the newest
trade-date partition at a given time (sensors and the lookback fan-out stop there)."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import dagster as dg

from chimera_assets.settings import sensor_interval_s
from chimera_assets.trade_calendar import on_or_before_weekday

CHICAGO = "America/Chicago"
AUTOMATION_SENSOR_NAME = "chimera_automation"
DEFAULT_AUTOMATION_INTERVAL_S = 30


def last_partition_date(now: datetime | None = None) -> date:
    """The newest trade-date partition at ``now``: the trade-date partitions are the America/Chicago
    weekdays and include the current one (``end_offset=1``)."""
    return on_or_before_weekday((now or datetime.now(UTC)).astimezone(ZoneInfo(CHICAGO)).date())


def automation_sensor(
    target: dg.AssetSelection | None = None, minimum_interval_seconds: int | None = None
) -> dg.AutomationConditionSensorDefinition:
    """The automation condition sensor, RUNNING by default (Dagster's implicit one starts STOPPED).

    The custom conditions (``conditions.py``) are not serializable built-ins, so it evaluates in the
    code server (``use_user_code_server=True``)."""
    from chimera_assets.lib.dagster_warnings import silence_known_notices

    silence_known_notices()  # use_user_code_server is a beta parameter in 1.13 (named, not all warnings)
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR_NAME,
        target=target or dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=minimum_interval_seconds or sensor_interval_s(DEFAULT_AUTOMATION_INTERVAL_S),
        use_user_code_server=True,
        description=(
            "Declarative automation: new raw partitions flow to session bars, features, the matrix "
            "and the training tables (see chimera_assets/lib/automation/)."
        ),
    )
