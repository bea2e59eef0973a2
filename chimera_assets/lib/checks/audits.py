"""The write audits (write -> audit -> publish) that gate publication of every checked table.

``audit_for(spec)`` is a pure function of the table spec: the IO manager asks it for the audit of each
write, and the assets that call ``warehouse.merge`` themselves (raw loads, training tables) pass its
result as ``audit=``. The warehouse stages the frame, runs the audit on the staged rows and MERGEs them
only if it passes; a failing hard rule raises ``AuditFailed`` and the published table is unchanged.
"""

import dagster as dg
import polars as pl

from chimera_assets.lib.asset_keys import asset_key
from chimera_assets.lib.checks.evaluation import MAX_FAILED_PARTITION_EVENTS, evaluation
from chimera_assets.lib.checks.scope import audited_tables
from chimera_assets.quality.evaluation import audit_offenders, partition_row_counts
from chimera_assets.quality.outcomes import outcome, outcomes_by_partition
from chimera_assets.quality.registry import PARTITION
from chimera_assets.schemas import TableSpec
from chimera_assets.training.leakage import with_leakage_check
from chimera_assets.warehouse.base import Audit, AuditFailed


def _running_check_spec(ctx: dg.OpExecutionContext, key: dg.AssetCheckKey) -> dg.AssetCheckSpec | None:
    """The spec of check ``key`` when the running job has it, else None.

    Read from the job's asset graph (``job_def.asset_layer``: public attributes, no ``dagster._`` import).
    ``ctx.repository_def`` would be the documented route but raises for a job executed in process
    outside a code location, as the tests and ``chimera run`` do."""
    graph = ctx.job_def.asset_layer.asset_graph
    if key not in graph.asset_check_keys:
        return None
    return graph.get_check_spec(key)


def report_gate_failure(spec: TableSpec, failing: dict[str, pl.DataFrame], frame: pl.DataFrame) -> int:
    """Record a failed blocking evaluation per (rule, partition) in the running Dagster step, if any.

    The IO manager cannot emit check evaluations itself; the current step's context can, and the
    events are stored even though the step then fails. Returns the number of evaluations logged."""
    try:
        ctx = dg.OpExecutionContext.get()
    except Exception:  # noqa: BLE001 - not inside a Dagster step (plain warehouse use)
        return 0
    key = asset_key(spec)
    note = "write audit: the staged rows failed this rule, nothing was published"
    logged = 0
    for rule, off in failing.items():
        try:  # only checks the running job knows; partitioned like the job's check spec
            check_spec = _running_check_spec(ctx, dg.AssetCheckKey(key, rule))
            if check_spec is None:
                continue
            partitioned = check_spec.partitions_def is not None
        except Exception:  # noqa: BLE001 - an older/newer Dagster layout: report unpartitioned
            partitioned = False
        staged_rows = frame.height
        extra = {"table": spec.fqn, "stage": "write audit (staged rows, not published)", "staged_rows": staged_rows}
        parts = [p for p in off[PARTITION].unique().sort().to_list() if p is not None] if partitioned else []
        if parts:
            counts = {k: v for k, v in partition_row_counts(frame, spec).items() if k is not None}
            results = outcomes_by_partition(rule, off, parts, counts, extra)
        else:  # one result for the write (metadata lists the failing partitions)
            n_parts = len([p for p in partition_row_counts(frame, spec) if p is not None]) or None
            results = {None: outcome(rule, off, staged_rows, extra, partitions_checked=n_parts)}
        for pk, oc in list(results.items())[:MAX_FAILED_PARTITION_EVENTS]:
            ctx.log_event(evaluation(key, oc, pk, blocking=True, description=note))
            logged += 1
    return logged


def make_audit(spec: TableSpec) -> Audit:
    """The blocking audit of ``spec``: raises ``AuditFailed`` (with per-rule metadata) when the staged
    rows break a hard rule of the table."""

    def audit(frame: pl.DataFrame) -> None:
        failing = audit_offenders(spec, frame)
        if not failing:
            return
        summaries = {
            rule: outcome(rule, off, frame.height, {"table": spec.fqn}, partitions_checked=None)
            for rule, off in failing.items()
        }
        report_gate_failure(spec, failing, frame)
        detail = "; ".join(
            f"{rule}: {oc.metadata['offending_rows']} offending row(s), e.g. {oc.offending_keys[:3]}"
            for rule, oc in summaries.items()
        )
        raise AuditFailed(
            f"{spec.fqn}: the write audit rejected {frame.height} staged row(s), nothing was published ({detail})",
            metadata={rule: oc.metadata for rule, oc in summaries.items()},
        )

    return audit


def audit_for(spec: TableSpec) -> Audit | None:
    """The write audit of ``spec``, None for a table without one (reference and ops tables).

    Training tables: the hard rules, then the blocking target-leakage check (``chimera_assets.training.leakage``)."""
    if spec.fqn not in {s.fqn for s in audited_tables()}:
        return None
    return with_leakage_check(make_audit)(spec) if spec.schema == "training" else make_audit(spec)
