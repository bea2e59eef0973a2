"""Declarative automation: new raw partitions flow by themselves to session bars, features, the matrix
and the training tables.

Why not ``AutomationCondition.eager()``: it only looks at the latest time window (the landing
sensor loads OLD dates too), and its ``~any_deps_missing`` never holds here because the feature
assets read LOOKBACK windows (``market_features`` reads 300 prior date partitions of
``session_bars``) that always contain partitions which will never exist (before the data starts,
holidays). Dagster's ``will_be_requested`` also refuses to look through a lookback
``MultiPartitionMapping``, so with built-in pieces only, a new raw partition would need one tick per
graph level to reach the matrix.

The condition used for every date x root asset below the raw tables (``partition_flow``) is::

    deps_updated.since_last_handled()      # a parent partition was updated by another run, or is
                                           # requested in this same tick (any partition mapping)
    & same_partition_present(primary)      # ... and THIS (date, root) has a session: the same key
                                           # of the primary parent is materialized or requested now
    & ~in_progress & ~any_deps_in_progress

``deps_updated`` maps an updated parent partition through the lookback mapping, so a late
partition D also reaches the later sessions whose rolling features read D (D+1..D+300 for
``market_features``); the gate keeps that to sessions that exist, so no empty partition is ever
computed for a holiday or a date before the data starts. A daily update (D = the newest session)
therefore requests exactly (D, root) for every asset, in one run per tick.

``consolidated_features`` additionally waits for ``policy_features`` of its date (a date-only asset
that cannot share a run with date x root assets); ``policy_features`` is requested when raw data
for its date starts loading, daily at 16:05 CT for the current date, and for every date when the
policy events table changes. The training tables (unpartitioned) rebuild after the matrix updates.

The custom pieces (``SamePartitionPresent``, ``RequestedThisTick``) are not serializable built-ins,
so the automation sensor evaluates in the code server (``use_user_code_server=True``).
"""

import os
import warnings
from collections.abc import Iterable, Sequence

import dagster as dg

from chimera_assets.partitions import DATE_DIM, SYMBOL_DIM

RAW_1M = dg.AssetKey(["market_data", "databento_futures_ohlcv_1m"])
RAW_1H = dg.AssetKey(["market_data", "databento_futures_ohlcv_1h"])
RAW_1D = dg.AssetKey(["market_data", "databento_futures_ohlcv_1d"])
RAW_BARS = (RAW_1M, RAW_1H, RAW_1D)
SESSION_BARS = dg.AssetKey(["features", "session_bars"])
MARKET_FEATURES = dg.AssetKey(["features", "market_features"])
PIVOTS = dg.AssetKey(["features", "pivots"])
GOLDEN_ZONE = dg.AssetKey(["features", "golden_zone"])
POLICY_FEATURES = dg.AssetKey(["features", "policy_features"])
CONSOLIDATED = dg.AssetKey(["features", "consolidated_features"])
DAILY_ML_MATRIX = dg.AssetKey(["features", "daily_ml_matrix"])

# policy features of date D use events before 16:00 CT on D: compute the current date after that.
POLICY_CRON = "5 16 * * 1-5"
CHICAGO = "America/Chicago"
AUTOMATION_SENSOR_NAME = "chimera_automation"
DEFAULT_AUTOMATION_INTERVAL_S = 30


# --------------------------------------------------------------------------------------------------
# Custom condition pieces
# --------------------------------------------------------------------------------------------------


def _partition_keys_of(subset) -> set[str]:
    return set(subset.expensively_compute_partition_keys())


class SamePartitionPresent(dg.AutomationCondition):
    """True for a candidate partition when the SAME partition of one of ``keys`` is materialized
    (or requested in this tick; or, with ``in_progress``, being materialized right now).

    Unlike ``AutomationCondition.any_deps_match`` it ignores the graph's partition mapping: it looks
    at the identical (date, root) key, which is what "this session exists" means even where the
    asset reads a lookback window of that parent. A date-only target maps date D to (D, every root)
    of a date x root key and is true when any root has it.
    """

    def __init__(self, keys: Sequence[dg.AssetKey], *, requested: bool = True, in_progress: bool = False):
        self.keys = tuple(keys)
        self.requested = requested
        self.in_progress = in_progress

    @property
    def name(self) -> str:
        extra = "".join([",requested" if self.requested else "", ",in_progress" if self.in_progress else ""])
        return f"same_partition_present({'|'.join(k.to_user_string() for k in self.keys)}{extra})"

    @property
    def description(self) -> str:
        return "The same partition of " + " or ".join(k.to_user_string() for k in self.keys) + " exists"

    @property
    def requires_cursor(self) -> bool:
        return False

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        candidate = context.candidate_subset
        target_def = context.partitions_def
        if candidate.is_empty or target_def is None:
            return dg.AutomationResult(context, context.get_empty_subset())
        view = context.asset_graph_view
        wanted = _partition_keys_of(candidate)
        present: set[str] = set()
        for key in self.keys:
            node = context.asset_graph.get(key) if context.asset_graph.has(key) else None
            if node is None or node.partitions_def is None:
                continue
            key_def = node.partitions_def
            if key_def == target_def:
                up_keys = wanted
                back = {k: k for k in wanted}
            elif isinstance(key_def, dg.MultiPartitionsDefinition) and not isinstance(
                target_def, dg.MultiPartitionsDefinition
            ):
                symbols = key_def.get_partitions_def_for_dimension(SYMBOL_DIM).get_partition_keys()
                back = {
                    dg.MultiPartitionKey({DATE_DIM: d, SYMBOL_DIM: s}): d for d in wanted for s in symbols
                }
                up_keys = set(back)
            else:
                continue
            up = view.get_subset_from_partition_keys(key, key_def, up_keys)
            missing = await view.compute_missing_subset(key=key, from_subset=up)
            found = up.compute_difference(missing)
            if self.requested:
                requested = context.request_subsets_by_key.get(key)
                if requested is not None and not requested.is_empty:
                    found = found.compute_union(requested.compute_intersection(up))
            if self.in_progress:
                found = found.compute_union(await view.compute_run_in_progress_subset(key=key, from_subset=up))
            present |= {back[k] for k in _partition_keys_of(found) if k in back}
        true_subset = view.get_subset_from_partition_keys(context.key, target_def, present & wanted)
        return dg.AutomationResult(context, candidate.compute_intersection(true_subset))


class RequestedThisTick(dg.AutomationCondition):
    """Evaluated on a parent: the parent partitions requested in this tick, when the parent can share
    a run with the asset being evaluated (same partitions definition, any partition mapping).

    ``AutomationCondition.will_be_requested()`` is the same but only for identity/time-window
    mappings, which would stop a tick's requests at the first lookback edge.
    """

    @property
    def name(self) -> str:
        return "requested_this_tick"

    @property
    def requires_cursor(self) -> bool:
        return False

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        requested = context.request_subsets_by_key.get(context.key)
        root_key = context.root_context.key
        if (
            requested is None
            or requested.is_empty
            or not isinstance(context.key, dg.AssetKey)
            or context.key == root_key
            or not context.asset_graph.get(context.key).is_materializable
            or context.asset_graph.get(context.key).partitions_def != context.asset_graph.get(root_key).partitions_def
        ):
            return dg.AutomationResult(context, context.get_empty_subset())
        return dg.AutomationResult(context, context.candidate_subset.compute_intersection(requested))


# --------------------------------------------------------------------------------------------------
# Conditions
# --------------------------------------------------------------------------------------------------

AC = dg.AutomationCondition


def deps_updated(ignore: Iterable[dg.AssetKey] = ()) -> dg.AutomationCondition:
    """A parent partition was updated by a run that did not also target this asset, or is
    requested in this tick (through any partition mapping)."""
    cond = AC.any_deps_match(
        (AC.newly_updated() & ~AC.executed_with_root_target()).with_label("newly_updated_without_root")
        | RequestedThisTick()
    )
    ignore = list(ignore)
    if ignore:
        cond = cond.ignore(dg.AssetSelection.assets(*ignore))
    return cond.with_label("any_deps_updated_or_requested")


def partition_flow(
    primary: Sequence[dg.AssetKey], *, ignore: Iterable[dg.AssetKey] = (), extra: dg.AutomationCondition | None = None
) -> dg.AutomationCondition:
    """The condition of a date x root asset whose session exists when ``primary`` has the same key."""
    parts = [
        deps_updated(ignore).since_last_handled(),
        SamePartitionPresent(primary),
    ]
    if extra is not None:
        parts.append(extra)
    parts += [~AC.in_progress(), ~AC.any_deps_in_progress()]
    cond = parts[0]
    for p in parts[1:]:
        cond = cond & p
    return cond.with_label("chimera_partition_flow")


def policy_ready() -> dg.AutomationCondition:
    """``policy_features`` of the row's date is materialized (it runs in its own, date-only run)."""
    return (~AC.any_deps_match(AC.missing()).allow(dg.AssetSelection.assets(POLICY_FEATURES))).with_label(
        "policy_features_ready"
    )


def policy_condition() -> dg.AutomationCondition:
    """``policy_features`` (date-only): a date whose raw data starts loading, the current date after
    the 16:00 CT cutoff, or every date when the policy events change."""
    trigger = (
        (AC.in_latest_time_window() & AC.cron_tick_passed(POLICY_CRON, CHICAGO)).with_label("daily_after_cutoff")
        | AC.any_deps_updated()
        | (AC.missing() & SamePartitionPresent(RAW_BARS, in_progress=True)).newly_true().with_label(
            "new_trade_date_with_data"
        )
    )
    return (trigger.since_last_handled() & ~AC.in_progress() & ~AC.any_deps_in_progress()).with_label(
        "chimera_policy_flow"
    )


def training_condition() -> dg.AutomationCondition:
    """Training tables (unpartitioned) rebuild once the matrix updated and nothing upstream runs."""
    return (
        AC.any_deps_updated().allow(dg.AssetSelection.assets(DAILY_ML_MATRIX)).since_last_handled()
        & ~AC.in_progress()
        & ~AC.any_deps_in_progress()
    ).with_label("chimera_training_flow")


def conditions_by_key() -> dict[dg.AssetKey, dg.AutomationCondition]:
    """The automation condition of every automated asset except the per-root training tables."""
    return {
        SESSION_BARS: partition_flow(RAW_BARS),
        MARKET_FEATURES: partition_flow([SESSION_BARS]),
        PIVOTS: partition_flow([SESSION_BARS]),
        GOLDEN_ZONE: partition_flow([SESSION_BARS]),
        POLICY_FEATURES: policy_condition(),
        CONSOLIDATED: partition_flow([SESSION_BARS], extra=policy_ready()),
        # pivots reach the matrix through consolidated_features: wait for that one
        DAILY_ML_MATRIX: partition_flow([CONSOLIDATED], ignore=[PIVOTS]),
    }


def condition_for(key: dg.AssetKey) -> dg.AutomationCondition | None:
    """The condition for ``key`` (None for raw and reference assets: sensors/users drive those)."""
    found = conditions_by_key().get(key)
    if found is not None:
        return found
    if key.path[0] == "training" and key.path[-1].endswith("_training_daily"):
        return training_condition()
    return None


def with_automation(assets: Iterable) -> list:
    """``assets`` with the automation condition of every downstream asset set (others unchanged).

    Raw ``market_data.*`` assets get none (the sensors request them), nor do the reference tables
    (materialize them by hand, or with ``chimera run``)."""
    out = []
    for a in assets:
        if isinstance(a, dg.AssetsDefinition) and any(condition_for(k) is not None for k in a.keys):

            def _apply(spec: dg.AssetSpec) -> dg.AssetSpec:
                cond = condition_for(spec.key)
                return spec if cond is None else spec.replace_attributes(automation_condition=cond)

            a = a.map_asset_specs(_apply)
        out.append(a)
    return out


def sensor_interval_s(default: int) -> int:
    """``CHIMERA_SENSOR_INTERVAL_S`` (tests shorten every sensor tick with it), else ``default``."""
    raw = os.environ.get("CHIMERA_SENSOR_INTERVAL_S", "").strip()
    if not raw:
        return default
    try:
        value = int(float(raw))
    except ValueError as exc:
        raise ValueError(f"CHIMERA_SENSOR_INTERVAL_S={raw!r} is not a number of seconds") from exc
    return max(1, value)


def automation_sensor(
    target: dg.AssetSelection | None = None, minimum_interval_seconds: int | None = None
) -> dg.AutomationConditionSensorDefinition:
    """The automation condition sensor, RUNNING by default (Dagster's implicit one starts STOPPED)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # use_user_code_server is a beta parameter in 1.13
        return dg.AutomationConditionSensorDefinition(
            AUTOMATION_SENSOR_NAME,
            target=target or dg.AssetSelection.all(),
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=minimum_interval_seconds or sensor_interval_s(DEFAULT_AUTOMATION_INTERVAL_S),
            use_user_code_server=True,
            description=(
                "Declarative automation: new raw partitions flow to session bars, features, the matrix "
                "and the training tables (see chimera_assets/automation.py)."
            ),
        )
