"""Declarative automation: new raw partitions flow by themselves to session bars, features, the matrix
and the training tables.

Why not ``AutomationCondition.eager()``: it only looks at the latest time window (the landing
sensor loads OLD dates too), and its ``~any_deps_missing`` never holds here: session bars depend
on every raw bar table (1m, 1h, 1d, statistics) while a root loads only some of them, and the
feature assets read LOOKBACK windows (``market_features`` reads 300 prior trade dates of
``session_bars``) that always contain partitions which will never exist (before the data starts,
holidays). Dagster's ``will_be_requested`` also stops at any non-identity partition mapping.

The condition of every date x root asset below the raw tables (``partition_flow``) is::

    within_lookback(n, deps_updated).since_last_handled()
                      # a parent partition (D, root) was updated by a run that did not also target
                      # this asset, or is requested in this same tick; true for (D..D+n, root)
    & same_partition_present(primary)
                      # ... and THIS (date, root) has a session: the same key of the primary
                      # parent is materialized or requested now (raw bars for session bars)
    & ~in_progress & ~any_deps_in_progress & ~whole_graph_run_active

``n`` is the asset's lookback in trade-date partitions (``chimera/lookback_trade_dates`` metadata,
e.g. 300 for ``market_features``): a LATE partition D also reaches the later sessions whose rolling
features read D, while the gate keeps that to sessions that exist, so no empty partition is ever
computed for a holiday or a date before the data starts. A daily update (D = the newest session)
therefore requests exactly (D, root) for every asset up to the matrix, in one run, in one tick.

``consolidated_features`` additionally waits for ``policy_features`` of its date (a date-only asset
that cannot share a run with date x root assets); ``policy_features`` is requested as soon as raw
data of its date starts loading, for the current date at 16:05 CT (after its 16:00 CT cutoff), for
recent dates still missing, and for every date when the policy events table changes. The training tables (unpartitioned) rebuild after the matrix updates.

``whole_graph_run_active`` holds every condition while a run of the whole-graph job
(``whole_graph.py``, the UI's path for "materialize everything") is queued or in progress: that run
produces its range stage after stage, and automation requesting the same partitions between two of
its stages would compute them twice, piecemeal.

The custom pieces (``SamePartitionPresent``, ``RequestedThisTick``, ``WithinLookback``) are not
serializable built-ins, so the automation sensor evaluates in the code server
(``use_user_code_server=True``).
"""

import os
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
from dagster._core.asset_graph_view.timing_metadata import TimingMetadata

from chimera_assets.asset_keys import (
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
from chimera_assets.lib.job_names import WHOLE_GRAPH_JOB
from chimera_assets.partitions import DATE_DIM, SYMBOL_DIM
from chimera_assets.trade_calendar import on_or_before_weekday

# policy features of date D use events before 16:00 CT on D: compute the current date after that.
POLICY_CRON = "5 16 * * 1-5"
CHICAGO = "America/Chicago"
AUTOMATION_SENSOR_NAME = "chimera_automation"
LOOKBACK_METADATA = "chimera/lookback_trade_dates"
# Used when an asset does not declare LOOKBACK_METADATA (the trade dates each one reads back).
DEFAULT_LOOKBACKS = {SESSION_BARS: 35, MARKET_FEATURES: 300, PIVOTS: 15, GOLDEN_ZONE: 130}
DEFAULT_AUTOMATION_INTERVAL_S = 30
AC = dg.AutomationCondition


# --------------------------------------------------------------------------------------------------
# Custom condition pieces
# --------------------------------------------------------------------------------------------------


def _partition_keys_of(subset) -> set[str]:
    return set(subset.expensively_compute_partition_keys())


def last_partition_date(now: datetime | None = None) -> date:
    """The newest trade-date partition at ``now``: the trade-date partitions are the America/Chicago
    weekdays and include the current one (``end_offset=1``)."""
    return on_or_before_weekday((now or datetime.now(UTC)).astimezone(ZoneInfo(CHICAGO)).date())


def next_trade_dates(d: date, n: int, last: date) -> list[date]:
    """The ``n`` trade-date partitions (Mon-Fri) after ``d``, not beyond ``last``."""
    out = []
    while len(out) < n:
        d += timedelta(days=1)
        if d > last:
            break
        if d.weekday() < 5:
            out.append(d)
    return out


class WithinLookback(dg.AutomationCondition):
    """True for (D', root) when ``operand`` is true for (D, root) with D among the ``n`` trade-date
    partitions up to D': an update of D matters to every later partition whose lookback reads it.

    The lookbacks are read straight from the warehouse (not through Dagster partition mappings, which
    cost too much bookkeeping for 300-date windows), so the graph edges are identity and this piece
    puts the lookback back into the automation.
    """

    def __init__(self, operand: dg.AutomationCondition, n: int):
        self.operand = operand
        self.n = int(n)

    @property
    def name(self) -> str:
        return f"within_lookback({self.n})"

    @property
    def description(self) -> str:
        return f"Any of the {self.n} earlier trade dates (or this one) matches"

    @property
    def children(self) -> Sequence[dg.AutomationCondition]:
        return [self.operand]

    @property
    def requires_cursor(self) -> bool:
        return False

    def _expand(self, view, subset, pdef, last: date):
        """``subset`` plus, for each (D, root) in it, the next ``n`` trade dates of the root."""
        later: set[str] = set()
        for key in _partition_keys_of(subset):
            dims = key.keys_by_dimension if isinstance(key, dg.MultiPartitionKey) else dict(
                zip((DATE_DIM, SYMBOL_DIM), str(key).split("|"), strict=True)
            )
            for d in next_trade_dates(date.fromisoformat(dims[DATE_DIM]), self.n, last):
                later.add(dg.MultiPartitionKey({DATE_DIM: d.isoformat(), SYMBOL_DIM: dims[SYMBOL_DIM]}))
        if not later:
            return subset
        return subset.compute_union(view.get_subset_from_partition_keys(subset.key, pdef, later))

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        child = await context.for_child_condition(
            self.operand, child_indices=[0], candidate_subset=context.candidate_subset
        ).evaluate_async()
        pdef = context.partitions_def
        if child.true_subset.is_empty or self.n <= 0 or not isinstance(pdef, dg.MultiPartitionsDefinition):
            return dg.AutomationResult(
                context, child.true_subset, child_results=[child], timing_metadata=child.timing_metadata
            )
        last = last_partition_date(context.evaluation_time)
        candidate = context.candidate_subset
        expanded = candidate.compute_intersection(self._expand(context.asset_graph_view, child.true_subset, pdef, last))
        timing = None
        if child.timing_metadata:  # an update at time t of D counts at time t for D..D+n
            timing = TimingMetadata(
                timestamps={
                    ts: candidate.compute_intersection(self._expand(context.asset_graph_view, sub, pdef, last))
                    for ts, sub in child.timing_metadata.timestamps.items()
                }
            )
        return dg.AutomationResult(context, expanded, child_results=[child], timing_metadata=timing)


class DepsUpdated(dg.AutomationCondition):
    """``operand`` (default: newly updated by a run that did not target this asset, or requested in
    this tick) on any parent (or on ``keys``), mapped down to this asset.

    Same result as ``AutomationCondition.any_deps_match(operand)``, computed from each parent's own
    subsets (a few fresh partitions) mapped DOWN, instead of mapping this asset's full candidate
    subset (tens of thousands of (date, root) keys) UP on every tick: that costs seconds per tick.
    ``keys`` may name assets that are not parents (Dagster infers the mapping: same partitions ->
    identity, date x root -> date by the date dimension).
    """

    def __init__(
        self,
        ignore: Iterable[dg.AssetKey] = (),
        operand: dg.AutomationCondition | None = None,
        keys: Sequence[dg.AssetKey] | None = None,
        label: str | None = None,
    ):
        self.ignore = tuple(sorted(set(ignore), key=lambda k: k.to_user_string()))
        self.keys = tuple(keys) if keys is not None else None
        self.label = label
        self.operand = operand or (
            (AC.newly_updated() & ~AC.executed_with_root_target()).with_label("newly_updated_without_root")
            | RequestedThisTick()
        )

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        ignored = ",".join(k.to_user_string() for k in self.ignore)
        return "any_deps_updated_or_requested" + (f"(ignore={ignored})" if ignored else "")

    @property
    def description(self) -> str:
        if self.label:
            return f"{self.label}: {self.operand.get_label() or self.operand.name} on " + ", ".join(
                k.to_user_string() for k in (self.keys or ())
            )
        return "A parent partition was updated by another run, or is requested in this tick"

    @property
    def children(self) -> Sequence[dg.AutomationCondition]:
        return [self.operand]

    @property
    def requires_cursor(self) -> bool:
        return False

    def _sources(self, context: dg.AutomationContext) -> list[dg.AssetKey]:
        if self.keys is not None:
            return [k for k in self.keys if context.asset_graph.has(k)]
        parents = context.asset_graph.get(context.key).parent_entity_keys
        return sorted(
            (k for k in parents if isinstance(k, dg.AssetKey) and k not in self.ignore),
            key=lambda k: k.to_user_string(),
        )

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        view = context.asset_graph_view
        candidate = context.candidate_subset
        true_subset = context.get_empty_subset()
        timestamps: dict = {}
        results = []
        sources = self._sources(context)
        for i, parent in enumerate(sources):
            full = view.get_full_subset(key=parent)
            result = await context.for_child_condition(
                self.operand, child_indices=[i], candidate_subset=full
            ).evaluate_async()
            results.append(result)
            if result.true_subset.is_empty:
                continue
            true_subset = true_subset.compute_union(
                candidate.compute_intersection(result.true_subset.compute_mapped_subset(context.key, direction="down"))
            )
            for ts, sub in (await self._timing(context, parent, full, result, len(sources) + i)).items():
                mapped = candidate.compute_intersection(sub.compute_mapped_subset(context.key, direction="down"))
                timestamps[ts] = timestamps[ts].compute_union(mapped) if ts in timestamps else mapped
        return dg.AutomationResult(
            context, true_subset, child_results=results,
            timing_metadata=TimingMetadata(timestamps=timestamps) if timestamps else None,
        )

    async def _timing(self, context, parent, full, result, index: int) -> dict:
        """When each of the parent's true partitions changed: its materialization time, or now for a
        partition requested in this tick. Boolean operators drop Dagster's timing metadata, and
        without it a tick where both the parent and this asset updated counts as handled even when
        the parent updated last."""
        if result.timing_metadata:
            return dict(result.timing_metadata.timestamps)
        updated = await context.for_child_condition(
            AC.newly_updated(), child_indices=[index], candidate_subset=full
        ).evaluate_async()
        out: dict = {}
        rest = result.true_subset
        for ts, sub in (updated.timing_metadata.timestamps.items() if updated.timing_metadata else ()):
            part = sub.compute_intersection(result.true_subset)
            if not part.is_empty:
                out[ts] = part
                rest = rest.compute_difference(part)
        if not rest.is_empty:  # requested in this tick (or no timestamp known): counts as now
            out[time.time()] = rest
        return out


class Handled(dg.AutomationCondition):
    """``newly_requested | newly_updated | initial_evaluation`` (the reset of ``since_last_handled``)
    WITH the time each partition was handled, so that a parent update that lands after this asset's
    own update in the same tick still triggers a re-run (Dagster's boolean operators drop timing, and
    a ``SINCE`` without reset timing lets the reset win)."""

    def __init__(self):
        self.parts = [AC.newly_requested(), AC.newly_updated(), AC.initial_evaluation()]

    @property
    def name(self) -> str:
        return "handled"

    @property
    def children(self) -> Sequence[dg.AutomationCondition]:
        return self.parts

    @property
    def requires_cursor(self) -> bool:
        return False

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        results = [
            await context.for_child_condition(part, child_indices=[i], candidate_subset=context.candidate_subset)
            .evaluate_async()
            for i, part in enumerate(self.parts)
        ]
        true_subset = context.get_empty_subset()
        timestamps: dict = {}
        for r in results:
            true_subset = true_subset.compute_union(r.true_subset)
            rest = r.true_subset
            for ts, sub in (r.timing_metadata.timestamps.items() if r.timing_metadata else ()):
                timestamps[ts] = timestamps[ts].compute_union(sub) if ts in timestamps else sub
                rest = rest.compute_difference(sub)
            if not rest.is_empty:  # no known time (initial evaluation): handled now
                now = time.time()
                timestamps[now] = timestamps[now].compute_union(rest) if now in timestamps else rest
        return dg.AutomationResult(
            context, true_subset, child_results=results,
            timing_metadata=TimingMetadata(timestamps=timestamps) if timestamps else None,
        )


def since_last_handled(trigger: dg.AutomationCondition) -> dg.AutomationCondition:
    """``trigger.since_last_handled()`` with timestamp-precise resolution (see ``Handled``)."""
    return trigger.since(Handled())


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


class WholeGraphRunActive(dg.AutomationCondition):
    """True for every candidate while a run of the whole-graph job (``whole_graph.py``) is queued or
    in progress: it is about to produce the partitions of its range itself, stage after stage
    (policy features before the matrix, training tables last). Between two of its stages no run is in
    progress, so ``in_progress`` alone would let automation request the same partitions again,
    piecemeal; with this gate it waits for the whole job, whose runs then count as handled."""

    @property
    def name(self) -> str:
        return "whole_graph_run_active"

    @property
    def description(self) -> str:
        return f"A run of {WHOLE_GRAPH_JOB} is queued or in progress"

    @property
    def requires_cursor(self) -> bool:
        return False

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES  # queued included

        active = context.asset_graph_view.instance.get_run_records(
            filters=dg.RunsFilter(job_name=WHOLE_GRAPH_JOB, statuses=NOT_FINISHED_STATUSES), limit=1
        )
        return dg.AutomationResult(context, context.candidate_subset if active else context.get_empty_subset())


# --------------------------------------------------------------------------------------------------
# Conditions
# --------------------------------------------------------------------------------------------------


def deps_updated(ignore: Iterable[dg.AssetKey] = ()) -> dg.AutomationCondition:
    """A parent partition was updated by a run that did not also target this asset, or is
    requested in this tick (through any partition mapping)."""
    return DepsUpdated(ignore)


def partition_flow(
    primary: Sequence[dg.AssetKey],
    *,
    lookback: int = 0,
    ignore: Iterable[dg.AssetKey] = (),
    extra: dg.AutomationCondition | None = None,
) -> dg.AutomationCondition:
    """The condition of a date x root asset reading ``lookback`` earlier trade dates, whose session
    exists when ``primary`` has the same key."""
    trigger = deps_updated(ignore)
    if lookback > 0:
        trigger = WithinLookback(trigger, lookback)
    parts = [since_last_handled(trigger), SamePartitionPresent(primary)]
    if extra is not None:
        parts.append(extra)
    parts += [~AC.in_progress(), ~AC.any_deps_in_progress(), ~policy_running(), ~WholeGraphRunActive()]
    cond = parts[0]
    for p in parts[1:]:
        cond = cond & p
    return cond.with_label("chimera_partition_flow")


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
    return (
        (since_last_handled(trigger) | recent_missing)
        & ~AC.in_progress()
        & ~AC.any_deps_in_progress()
        & ~WholeGraphRunActive()
    ).with_label("chimera_policy_flow")


def training_condition() -> dg.AutomationCondition:
    """Training tables (unpartitioned) rebuild once the matrix updated and nothing upstream runs."""
    return (
        AC.any_deps_updated().allow(dg.AssetSelection.assets(DAILY_ML_MATRIX)).since_last_handled()
        & ~AC.in_progress()
        & ~AC.any_deps_in_progress()
        & ~WholeGraphRunActive()
    ).with_label("chimera_training_flow")


def ledger_condition() -> dg.AutomationCondition:
    """``ops.databento_load_state`` (the ledger summary) refreshes after raw loads have finished."""
    return (
        AC.any_deps_updated().since_last_handled()
        & ~AC.in_progress()
        & ~AC.any_deps_in_progress()
        & ~WholeGraphRunActive()
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
    from chimera_assets.dagster_warnings import silence_known_notices

    silence_known_notices()  # use_user_code_server is a beta parameter in 1.13 (named, not all warnings)
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
