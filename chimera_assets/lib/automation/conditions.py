"""The custom ``AutomationCondition`` pieces: what no composition of Dagster's public operators does.

- ``WithinLookback``: an update of (D, root) also matters to the next ``n`` trade dates of that root
  (their rolling features read D). The lookbacks are read straight from the warehouse, so the graph
  edges are identity and no partition mapping carries this fan-out.
- ``DepsUpdated``: ``any_deps_match(operand)`` computed from each parent's own (few, fresh) true
  partitions mapped DOWN instead of this asset's full subset (tens of thousands of keys, every tick)
  mapped UP; it also reads assets that are not parents (``keys``) and keeps the update times.
- ``Handled``: ``since_last_handled``'s reset, but with the time each partition was handled.
- ``WholeGraphRunActive``: a run of the whole-graph job is queued or in progress.

Why the timing: in Dagster 1.13 ``SinceCondition`` decides "trigger after reset?" from the timing
metadata of both sides when both fire in the same tick, but the boolean operators (``&``, ``|``) drop
that metadata, so ``any_deps_updated().since_last_handled()`` lets the reset win even when the parent
updated after this asset. ``AutomationResult`` takes timing as a ``TimingMetadata`` record that
Dagster does not export; ``_timing`` is the one place that builds it.
"""

import time
from collections.abc import Iterable, Sequence
from datetime import date, timedelta

import dagster as dg
from dagster._core.asset_graph_view.timing_metadata import TimingMetadata  # no public equivalent in 1.13

from chimera_assets.lib.automation.sensor import last_partition_date
from chimera_assets.lib.job_names import WHOLE_GRAPH_JOB
from chimera_assets.lib.partitions import DATE_DIM, SYMBOL_DIM, parse_partition_key
from chimera_assets.trade_calendar import weekday_dates

AC = dg.AutomationCondition
# Every dg.DagsterRunStatus of a run that has not finished (queued runs included).
UNFINISHED_RUN_STATUSES = (
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.SUSPENDED,
    dg.DagsterRunStatus.CANCELING,
)


def _timing(timestamps: dict) -> TimingMetadata | None:
    """``{epoch seconds: subset}`` as Dagster's timing metadata (None when empty)."""
    return TimingMetadata(timestamps=timestamps) if timestamps else None


def _add(timestamps: dict, ts: float, subset) -> None:
    timestamps[ts] = timestamps[ts].compute_union(subset) if ts in timestamps else subset


def next_trade_dates(d: date, n: int, last: date) -> list[date]:
    """The ``n`` trade-date partitions (Mon-Fri) after ``d``, not beyond ``last``."""
    # n weekdays fit in n // 5 + 1 weeks
    return weekday_dates(d + timedelta(days=1), min(last, d + timedelta(weeks=n // 5 + 1)))[:n]


class _OverOperand(dg.AutomationCondition):
    """A condition evaluated over one child condition, ``self.operand``, keeping no cursor."""

    operand: dg.AutomationCondition

    @property
    def children(self) -> Sequence[dg.AutomationCondition]:
        return [self.operand]

    @property
    def requires_cursor(self) -> bool:
        return False


class WithinLookback(_OverOperand):
    """True for (D', root) when ``operand`` is true for (D, root) with D among the ``n`` trade-date
    partitions up to D': an update of D matters to every later partition whose lookback reads it."""

    def __init__(self, operand: dg.AutomationCondition, n: int):
        self.operand = operand
        self.n = int(n)

    @property
    def name(self) -> str:
        return f"within_lookback({self.n})"

    @property
    def description(self) -> str:
        return f"Any of the {self.n} earlier trade dates (or this one) matches"


    def _expand(self, view, subset, pdef, last: date):
        """``subset`` plus, for each (D, root) in it, the next ``n`` trade dates of the root."""
        later: set[dg.MultiPartitionKey] = set()
        for key in subset.expensively_compute_partition_keys():
            d, root = parse_partition_key(key)
            for nd in next_trade_dates(d, self.n, last):
                later.add(dg.MultiPartitionKey({DATE_DIM: nd.isoformat(), SYMBOL_DIM: root}))
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
        view = context.asset_graph_view
        expanded = candidate.compute_intersection(self._expand(view, child.true_subset, pdef, last))
        # an update at time t of D counts at time t for D..D+n
        timing = _timing({
            ts: candidate.compute_intersection(self._expand(view, sub, pdef, last))
            for ts, sub in (child.timing_metadata.timestamps.items() if child.timing_metadata else ())
        })
        return dg.AutomationResult(context, expanded, child_results=[child], timing_metadata=timing)


class DepsUpdated(_OverOperand):
    """``operand`` (default: ``any_deps_updated``'s: newly updated by a run that did not target this
    asset, or requested in this tick) on any parent (or on ``keys``), mapped down to this asset.

    ``keys`` may name assets that are not parents (Dagster infers the mapping: same partitions ->
    identity, date x root -> date by the date dimension)."""

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
            | AC.will_be_requested()
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
            for ts, sub in (await self._timing(context, full, result, len(sources) + i)).items():
                _add(timestamps, ts, candidate.compute_intersection(sub.compute_mapped_subset(context.key, direction="down")))
        return dg.AutomationResult(context, true_subset, child_results=results, timing_metadata=_timing(timestamps))

    async def _timing(self, context, full, result, index: int) -> dict:
        """When each of the parent's true partitions changed: its materialization time, or now for a
        partition requested in this tick (the ``|`` of the operand dropped ``newly_updated``'s)."""
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
    own update in the same tick still triggers a re-run."""

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
                _add(timestamps, ts, sub)
                rest = rest.compute_difference(sub)
            if not rest.is_empty:  # no known time (initial evaluation): handled now
                _add(timestamps, time.time(), rest)
        return dg.AutomationResult(context, true_subset, child_results=results, timing_metadata=_timing(timestamps))


def since_last_handled(trigger: dg.AutomationCondition) -> dg.AutomationCondition:
    """``trigger.since_last_handled()`` with timestamp-precise resolution (see ``Handled``)."""
    return trigger.since(Handled())


class WholeGraphRunActive(dg.AutomationCondition):
    """True for every candidate while a run of the whole-graph job (``defs/ops/whole_graph.py``) is queued or
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
        active = context.asset_graph_view.instance.get_run_records(
            filters=dg.RunsFilter(job_name=WHOLE_GRAPH_JOB, statuses=list(UNFINISHED_RUN_STATUSES)), limit=1
        )
        return dg.AutomationResult(context, context.candidate_subset if active else context.get_empty_subset())
