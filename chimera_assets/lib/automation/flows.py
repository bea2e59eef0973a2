"""The automation condition of every automated asset, and ``with_automation`` which sets them.

Why not ``AutomationCondition.eager()``: it only looks at the latest time window (the landing
sensor loads OLD dates too), and its ``~any_deps_missing`` never holds here: session bars depend
on every raw bar table (1m, 1h, 1d, statistics) while a root loads only some of them, and the
feature assets read LOOKBACK windows (``market_features`` reads 300 prior trade dates of
``session_bars``) that always contain partitions which will never exist (before the data starts,
holidays).

The condition of every date x root asset below the raw tables (``partition_flow``) is::

    within_lookback(n, deps_updated).since(handled)
                      # a parent partition (D, root) was updated by a run that did not also target
                      # this asset, or is requested in this same tick; true for (D..D+n, root)
    & same_partition_present(primary)
                      # ... and THIS (date, root) has a session: the same key of the primary
                      # parent is materialized or requested now (raw bars for session bars)
    & ~in_progress & ~any_deps_in_progress & ~policy_running & ~whole_graph_run_active

``n`` is the asset's lookback in trade-date partitions (``chimera/lookback_trade_dates`` metadata,
e.g. 300 for ``market_features``): a LATE partition D also reaches the later sessions whose rolling
features read D, while the gate keeps that to sessions that exist, so no empty partition is ever
computed for a holiday or a date before the data starts. A daily update (D = the newest session)
therefore requests exactly (D, root) for every asset up to the matrix, in one run, in one tick.

``consolidated_features`` additionally waits for ``policy_features`` of its date (a date-only asset
that cannot share a run with date x root assets); ``policy_features`` is requested as soon as raw
data of its date starts loading, for the current date at 16:05 CT (after its 16:00 CT cutoff), for
recent dates still missing, and for every date when the policy events table changes. The training
tables (unpartitioned) rebuild after the matrix updates.

``whole_graph_run_active`` holds every condition while a run of the whole-graph job
(``defs/ops/whole_graph.py``, the UI's path for "materialize everything") is queued or in progress: that run
produces its range stage after stage, and automation requesting the same partitions between two of
its stages would compute them twice, piecemeal.
"""

from collections.abc import Iterable, Sequence
from datetime import timedelta

import dagster as dg

from chimera_assets.lib.asset_keys import (
    CONSOLIDATED,
    DAILY_ML_MATRIX,
    GOLDEN_ZONE,
    LOAD_STATE,
    MARKET_FEATURES,
    PIVOTS,
    POLICY_FEATURES,
    RAW_BARS,
    SESSION_BARS,
)
from chimera_assets.lib.automation.conditions import (
    DepsUpdated,
    WholeGraphRunActive,
    WithinLookback,
    since_last_handled,
)
from chimera_assets.lib.automation.sensor import CHICAGO

# policy features of date D use events before 16:00 CT on D: compute the current date after that.
POLICY_CRON = "5 16 * * 1-5"
LOOKBACK_METADATA = "chimera/lookback_trade_dates"
# Used when an asset does not declare LOOKBACK_METADATA (the trade dates each one reads back).
DEFAULT_LOOKBACKS = {SESSION_BARS: 35, MARKET_FEATURES: 300, PIVOTS: 15, GOLDEN_ZONE: 130}
AC = dg.AutomationCondition


def _all(*parts: dg.AutomationCondition) -> dg.AutomationCondition:
    cond = parts[0]
    for p in parts[1:]:
        cond = cond & p
    return cond


def same_partition_present(primary: Sequence[dg.AssetKey]) -> dg.AutomationCondition:
    """The same (date, root) of one of ``primary`` (parents with identity mapping) is materialized
    or requested in this tick: "this session exists", even where the asset reads a lookback window."""
    names = "|".join(k.to_user_string() for k in primary)
    return (
        AC.any_deps_match(~AC.missing() | AC.will_be_requested())
        .allow(dg.AssetSelection.assets(*primary))
        .with_label(f"same_partition_present({names})")
    )


def partition_flow(
    primary: Sequence[dg.AssetKey],
    *,
    lookback: int = 0,
    ignore: Iterable[dg.AssetKey] = (),
    extra: dg.AutomationCondition | None = None,
) -> dg.AutomationCondition:
    """The condition of a date x root asset reading ``lookback`` earlier trade dates, whose session
    exists when ``primary`` has the same key."""
    trigger: dg.AutomationCondition = DepsUpdated(ignore)
    if lookback > 0:
        trigger = WithinLookback(trigger, lookback)
    parts = [since_last_handled(trigger), same_partition_present(primary)]
    if extra is not None:
        parts.append(extra)
    parts += [~AC.in_progress(), ~AC.any_deps_in_progress(), ~policy_running(), ~WholeGraphRunActive()]
    return _all(*parts).with_label("chimera_partition_flow")


def policy_ready() -> dg.AutomationCondition:
    """``policy_features`` of the row's date is materialized (it runs in its own, date-only run)."""
    return (~AC.any_deps_match(AC.missing()).allow(dg.AssetSelection.assets(POLICY_FEATURES))).with_label(
        "policy_features_ready"
    )


def policy_running() -> dg.AutomationCondition:
    """``policy_features`` of the date is being computed (a sensor starts it beside a raw load): the
    whole chain of that date waits a moment, so that it runs once, matrix included, instead of
    features now and ``consolidated_features``/matrix in a later run."""
    return DepsUpdated(operand=AC.in_progress(), keys=[POLICY_FEATURES], label="policy_features_of_date_running")


def raw_activity() -> dg.AutomationCondition:
    """Some root's raw bars of the date are being loaded or were just loaded (for a date-only asset:
    the raw tables are not its parents; (D, root) maps to date D)."""
    return DepsUpdated(
        operand=AC.newly_updated() | AC.run_in_progress(), keys=RAW_BARS, label="raw_bars_loading_or_loaded"
    )


def policy_condition() -> dg.AutomationCondition:
    """``policy_features`` (date-only, cheap) is computed ahead of the matrix rows that need it:

    * a date whose raw bars start loading while its policy row is missing (the raw run and this
      one run side by side, so ``consolidated_features`` rarely has to wait);
    * the current trade date after its 16:00 CT cutoff (16:05 CT, Mon-Fri);
    * a recent past date (two weeks) still missing, e.g. when Dagster was down at 16:05;
    * every date already computed when the policy events table changes.
    History is not backfilled on its own: ``chimera run`` or a UI backfill does that.
    """
    trigger = (
        (AC.in_latest_time_window() & AC.cron_tick_passed(POLICY_CRON, CHICAGO)).with_label("daily_after_cutoff")
        # existing dates only: a changed events table recomputes what was computed, it does not
        # backfill 2010.. (chimera run / the whole-graph job does that)
        | (AC.any_deps_updated() & ~AC.missing()).with_label("policy_events_changed")
        | (AC.missing() & raw_activity()).newly_true().with_label("new_trade_date_with_data")
    )
    recent_missing = (
        AC.missing() & AC.in_latest_time_window(timedelta(days=14)) & ~AC.in_latest_time_window()
    ).newly_true().with_label("recent_date_missing")
    return _all(
        since_last_handled(trigger) | recent_missing, ~AC.in_progress(), ~AC.any_deps_in_progress(),
        ~WholeGraphRunActive(),
    ).with_label("chimera_policy_flow")


def training_condition() -> dg.AutomationCondition:
    """Training tables (unpartitioned) rebuild once the matrix updated and nothing upstream runs."""
    return _all(
        AC.any_deps_updated().allow(dg.AssetSelection.assets(DAILY_ML_MATRIX)).since_last_handled(),
        ~AC.in_progress(), ~AC.any_deps_in_progress(), ~WholeGraphRunActive(),
    ).with_label("chimera_training_flow")


def ledger_condition() -> dg.AutomationCondition:
    """``ops.databento_load_state`` (the ledger summary) refreshes after raw loads have finished."""
    return _all(
        AC.any_deps_updated().since_last_handled(), ~AC.in_progress(), ~AC.any_deps_in_progress(),
        ~WholeGraphRunActive(),
    ).with_label("chimera_ledger_flow")


def conditions_by_key(lookbacks: dict[dg.AssetKey, int] | None = None) -> dict[dg.AssetKey, dg.AutomationCondition]:
    """The automation condition of every automated asset except the per-root training tables.

    ``lookbacks``: trade dates each asset reads back (default: ``DEFAULT_LOOKBACKS``)."""
    lb = {**DEFAULT_LOOKBACKS, **(lookbacks or {})}
    return {
        SESSION_BARS: partition_flow(RAW_BARS, lookback=lb.get(SESSION_BARS, 0)),
        MARKET_FEATURES: partition_flow([SESSION_BARS], lookback=lb.get(MARKET_FEATURES, 0)),
        PIVOTS: partition_flow([SESSION_BARS], lookback=lb.get(PIVOTS, 0)),
        GOLDEN_ZONE: partition_flow([SESSION_BARS], lookback=lb.get(GOLDEN_ZONE, 0)),
        POLICY_FEATURES: policy_condition(),
        CONSOLIDATED: partition_flow([SESSION_BARS], extra=policy_ready()),
        # pivots reach the matrix through consolidated_features: wait for that one
        DAILY_ML_MATRIX: partition_flow([CONSOLIDATED], ignore=[PIVOTS]),
        LOAD_STATE: ledger_condition(),
    }


def condition_for(key: dg.AssetKey, lookback: int | None = None) -> dg.AutomationCondition | None:
    """The condition for ``key`` (None for raw and reference assets: sensors/users drive those)."""
    found = conditions_by_key({key: lookback} if lookback is not None else None).get(key)
    if found is not None:
        return found
    if key.path[0] == "training" and key.path[-1].endswith("_training_daily"):
        return training_condition()
    return None


def _declared_lookback(spec: dg.AssetSpec) -> int | None:
    value = (spec.metadata or {}).get(LOOKBACK_METADATA)
    value = getattr(value, "value", value)
    return int(value) if value is not None else None


def with_automation(assets: Iterable) -> list:
    """``assets`` with the automation condition of every downstream asset set (others unchanged).

    Raw ``market_data.*`` assets get none (the sensors request them), nor do the reference tables
    (materialize them by hand, or with ``chimera run``)."""
    out = []
    for a in assets:
        if isinstance(a, dg.AssetsDefinition) and any(condition_for(k) is not None for k in a.keys):

            def _apply(spec: dg.AssetSpec) -> dg.AssetSpec:
                cond = condition_for(spec.key, _declared_lookback(spec))
                return spec if cond is None else spec.replace_attributes(automation_condition=cond)

            a = a.map_asset_specs(_apply)
        out.append(a)
    return out
