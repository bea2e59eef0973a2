"""Dagster wiring of the data quality rules (``chimera_assets.quality``): asset checks and write audits.

Two layers guard every warehouse table (SPEC 7):

* **Write audit** (write -> audit -> publish). ``register_audits()`` puts one audit per table into
  ``io_manager.AUDITS``; the warehouse stages the frame, runs the audit on the staged rows and only
  MERGEs them if it passes. A failing hard rule (keys, duplicates, OHLC, regime coverage) raises
  ``AuditFailed``: nothing is published, the step fails, downstream steps are skipped. Before raising,
  the audit records a failed blocking evaluation of the same asset check for each offending partition
  (with the offending keys), so the UI shows which check and which partition stopped the run.
* **Asset checks**. One multi-asset check per table evaluates its rules on the published partitions
  of the run: hard rules are ``blocking`` (ERROR), the others WARN (or ERROR, non-blocking, for the
  STRUCT members). Plus ``matrix_freshness`` on the matrix and Dagster's column-schema change checks.

Per-partition results: every rule is evaluated per partition. By default each run records one
evaluation per rule with the failing partitions and offending keys in its metadata. With
``CHIMERA_PARTITIONED_CHECKS=1`` the check specs carry the asset's partitions: one evaluation per
partition (runs of up to ``QualityConfig.per_partition_limit`` partitions) or a summary plus one per
failing partition (longer runs). It is opt-in because Dagster 1.13 plans partitioned checks in
O(partitions^2) per check for a range run. See docs/data_quality.md.

Wiring (definitions.py): ``asset_checks=build_checks()`` (or ``ALL_CHECKS``), ``assets=[..., *QUALITY_ASSETS]``
and a call to ``register_audits()`` before the definitions are used.
"""

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg
import polars as pl

from chimera_assets.asset_keys import asset_key
from chimera_assets.io_manager import AUDITS, WarehouseResource
from chimera_assets.leakage import with_leakage_check
from chimera_assets.partitions import date_symbol_partitions, parse_partition_keys, trade_date_partitions
from chimera_assets.quality.evaluation import (
    CHECKED_TABLES,
    audit_offenders,
    evaluate_rule,
    partition_row_counts,
    rules_for,
)
from chimera_assets.quality.frames import rows_as_dicts
from chimera_assets.quality.outcomes import outcome, outcomes_by_partition
from chimera_assets.quality.registry import PARTITION, RULES, CheckOutcome, QualityConfig, Severity
from chimera_assets.quality.soft_rules import freshness_outcome
from chimera_assets.schemas import ALL_TABLES, DAILY_ML_MATRIX, TableSpec, training_table
from chimera_assets.settings import partitioned_checks
from chimera_assets.universe import get_universe
from chimera_assets.warehouse.base import Audit, AuditFailed, Slice

# Cap on the per-partition failure evaluations of one summary (range) result.
MAX_FAILED_PARTITION_EVENTS = 500


def partitioned_checks_enabled() -> bool:
    """``CHIMERA_PARTITIONED_CHECKS=1``: build the checks of partitioned tables as partitioned checks."""
    return partitioned_checks()


def _partitions_def(spec: TableSpec) -> dg.PartitionsDefinition | None:
    """The partitions of ``spec``'s asset (None: unpartitioned or date-less tables)."""
    if spec.date_column is None or spec.schema == "training":
        return None
    if spec.symbol_column is None:
        return trade_date_partitions()
    return date_symbol_partitions()


def calendars_and_starts() -> tuple[dict[str, str], dict[str, date]]:
    universe = get_universe()
    return ({r: c.calendar for r, c in universe.roots.items()}, {r: c.start for r, c in universe.roots.items()})


# --- metadata ----------------------------------------------------------------------------------------
def _md_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(none)"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += [
        "| " + " | ".join("" if r.get(c) is None else str(r.get(c)).replace("|", "\\|") for c in cols) + " |"
        for r in rows
    ]
    return "\n".join(lines)


def dagster_metadata(meta: dict[str, Any]) -> dict[str, dg.MetadataValue]:
    """A quality metadata dict as Dagster metadata values (numbers stay numbers, lists/dicts JSON)."""
    out: dict[str, dg.MetadataValue] = {}
    for k, v in meta.items():
        if isinstance(v, bool):
            out[k] = dg.MetadataValue.bool(v)
        elif isinstance(v, int):
            out[k] = dg.MetadataValue.int(v)
        elif isinstance(v, float):
            out[k] = dg.MetadataValue.float(v)
        elif isinstance(v, str):
            out[k] = dg.MetadataValue.text(v)
        elif v is None:
            out[k] = dg.MetadataValue.null()
        else:
            out[k] = dg.MetadataValue.json(v)
    if meta.get("offending_keys"):
        out["offending_keys_table"] = dg.MetadataValue.md(_md_table(meta["offending_keys"]))
    return out


def _dg_severity(sev: Severity) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.WARN if sev == Severity.WARN else dg.AssetCheckSeverity.ERROR


def _targets(instance: dg.DagsterInstance, key: dg.AssetKey, partitions: list[str] | None) -> dict:
    """Pointers to the materializations the evaluations judged, per partition (None: unpartitioned),
    from one query; empty when unavailable (the pointer is informative only)."""
    try:
        from dagster._core.definitions.asset_checks.asset_check_evaluation import (
            AssetCheckEvaluationTargetMaterializationData as Target,
        )

        recs = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions or None),
            limit=max(1, len(partitions or [])),
        ).records
    except Exception:  # noqa: BLE001
        return {}
    out: dict = {}
    for r in recs:  # newest first
        pk = r.partition_key if partitions else None
        if pk not in out:
            out[pk] = Target(storage_id=r.storage_id, run_id=r.run_id, timestamp=r.timestamp)
    return out


def evaluation(
    key: dg.AssetKey, oc: CheckOutcome, partition: str | None, blocking: bool, target=None, description: str = ""
) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=key,
        check_name=oc.rule,
        passed=oc.passed,
        metadata=dagster_metadata(oc.metadata),
        severity=_dg_severity(oc.severity),
        description=description or oc.description,
        blocking=blocking,
        partition=partition,
        target_materialization_data=target,
    )


# --- the write audit (write -> audit -> publish) --------------------------------------------------------
def _report_gate_failure(spec: TableSpec, failing: dict[str, pl.DataFrame], frame: pl.DataFrame) -> int:
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
            graph = ctx.job_def.asset_layer.asset_graph
            ck = dg.AssetCheckKey(key, rule)
            if ck not in graph.asset_check_keys:
                continue
            partitioned = graph.get_check_spec(ck).partitions_def is not None
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
        _report_gate_failure(spec, failing, frame)
        detail = "; ".join(
            f"{rule}: {oc.metadata['offending_rows']} offending row(s), e.g. {oc.offending_keys[:3]}"
            for rule, oc in summaries.items()
        )
        raise AuditFailed(
            f"{spec.fqn}: the write audit rejected {frame.height} staged row(s), nothing was published ({detail})",
            metadata={rule: oc.metadata for rule, oc in summaries.items()},
        )

    return audit


def audited_tables() -> list[TableSpec]:
    return [*CHECKED_TABLES, *(training_table(r) for r in get_universe().root_names)]


def register_audits() -> None:
    """Register the write audit of every checked table in ``io_manager.AUDITS`` (idempotent)."""
    for spec in audited_tables():
        # Training tables: the hard rules, then the blocking target-leakage check (chimera_assets.leakage).
        AUDITS[spec.fqn] = with_leakage_check(make_audit) if spec.schema == "training" else make_audit


def audit_for(spec: TableSpec) -> Audit | None:
    """The registered audit for ``spec`` (for code that calls ``warehouse.merge`` itself), else None."""
    factory = AUDITS.get(spec.fqn)
    return factory(spec) if factory else None


# --- asset checks --------------------------------------------------------------------------------------
def _check_output(context: dg.AssetCheckExecutionContext, key: dg.AssetKey, name: str) -> dg.Output:
    """The check step's output for ``name``: evaluations are yielded directly (with their partition),
    so the output that marks the check as executed is yielded by hand."""
    output = context.op_execution_context.assets_def.get_output_name_for_asset_check_key(dg.AssetCheckKey(key, name))
    return dg.Output(None, output_name=output)


def _emit(
    context: dg.AssetCheckExecutionContext,
    key: dg.AssetKey,
    rule: str,
    summary: CheckOutcome,
    per_partition: dict[str, CheckOutcome] | None,
    config: QualityConfig,
    checked: str = "whole table",
) -> Iterator[Any]:
    """Evaluations of one rule: unpartitioned -> one; up to ``per_partition_limit`` partitions -> one per
    partition; more -> a summary (partition None) plus one per failing partition."""
    blocking = RULES[rule].blocking
    instance = context.instance
    if per_partition is None:
        # The check history lists evaluations without a partition as "Partition -": name what was checked.
        meta = {**summary.metadata, "checked": checked}
        summary = CheckOutcome(rule, summary.passed, summary.severity, meta, summary.description)
        yield evaluation(key, summary, None, blocking, _targets(instance, key, None).get(None))
    elif len(per_partition) <= config.per_partition_limit:
        targets = _targets(instance, key, list(per_partition))
        for pk, oc in per_partition.items():
            yield evaluation(key, oc, pk, blocking, targets.get(pk))
    else:
        meta = dict(summary.metadata)
        meta["per_partition_results"] = "failing partitions only (the range is longer than per_partition_limit)"
        meta["per_partition_limit"] = config.per_partition_limit
        yield evaluation(key, CheckOutcome(rule, summary.passed, summary.severity, meta, summary.description),
                         None, blocking)
        failing = [(pk, oc) for pk, oc in per_partition.items() if not oc.passed][:MAX_FAILED_PARTITION_EVENTS]
        targets = _targets(instance, key, [pk for pk, _ in failing]) if failing else {}
        for pk, oc in failing:
            yield evaluation(key, oc, pk, blocking, targets.get(pk))
    yield _check_output(context, key, rule)


def checked_label(keys: list | None) -> str:
    """What a run's check evaluated, for the check history: ``"2024-01-02..2024-02-29 x ES,MES (84
    partitions)"``, or ``"whole table"`` when the run targets no partition."""
    if not keys:
        return "whole table"
    dates = sorted({d for d, _ in keys})
    roots = sorted({r for _, r in keys if r})
    span = dates[0].isoformat() if len(dates) == 1 else f"{dates[0].isoformat()}..{dates[-1].isoformat()}"
    return f"{span}{' x ' + ','.join(roots) if roots else ''} ({len(keys)} partition{'s' if len(keys) != 1 else ''})"


def _run_keys(context: dg.AssetCheckExecutionContext) -> list | None:
    """The run's partition keys as (date, root); None when the run targets no partition (a check
    executed on its own from the UI), which checks the whole table."""
    try:
        keys = context.partition_keys
    except Exception:  # noqa: BLE001 - Dagster raises when the run has no partition
        return None
    return parse_partition_keys(keys) if keys else None


def table_checks(spec: TableSpec, partitioned: bool = False) -> dg.AssetChecksDefinition:
    """One multi-asset check (one step, one read) for every rule of ``spec``.

    ``partitioned``: give the check specs the asset's partitions (per-partition results in the UI). Off by
    default: Dagster 1.13 stores a planned row per partition and check, each holding the serialized
    partition subset of the run, so a range run costs O(partitions^2) per check (~11 s per check at
    1,500 partitions, hours for a full 2010-2025 backfill)."""
    key = asset_key(spec)
    asset_pdef = _partitions_def(spec)
    pdef = asset_pdef if partitioned else None
    rules = rules_for(spec)
    specs = [
        dg.AssetCheckSpec(
            rule, asset=key, blocking=RULES[rule].blocking, description=RULES[rule].description,
            partitions_def=pdef,
        )
        for rule in rules
    ]

    @dg.multi_asset_check(
        name=f"{spec.schema}__{spec.name}__quality",
        specs=specs,
        can_subset=True,
        description=f"Data quality rules of {spec.fqn}: {', '.join(rules)}.",
    )
    def _checks(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
        config = QualityConfig.from_env()
        wh = warehouse.get()
        calendars, starts = calendars_and_starts()
        selected = {k.name for k in context.selected_asset_check_keys if k.asset_key == key}
        keys = _run_keys(context) if asset_pdef is not None else None  # None: the whole table
        if keys is not None and spec.symbol_column is None:
            keys = [(d, None) for d, _ in keys]
        frame = wh.read(spec, Slice.from_keys(keys) if keys else None)
        for rule in rules:
            if rule not in selected:
                continue
            ev = evaluate_rule(wh, spec, rule, keys, config, calendars, starts, frame=frame)
            per_partition = ev.by_partition() if pdef is not None else None
            context.log.info(
                f"{spec.fqn}:{rule}: {ev.offenders.height} offending row(s) in {len(ev.partitions)} partition(s)"
            )
            yield from _emit(context, key, rule, ev.summary(), per_partition, config, checked_label(keys))

    return _checks


MATRIX_KEY = asset_key(DAILY_ML_MATRIX)


@dg.asset_check(
    asset=MATRIX_KEY,
    name="matrix_freshness",
    blocking=False,
    description=RULES["matrix_freshness"].description,
)
def matrix_freshness(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    config = QualityConfig.from_env()
    calendars, _ = calendars_and_starts()
    keys = warehouse.get().read(DAILY_ML_MATRIX, columns=["symbol", "data_date"])
    latest = {s: d for s, d in keys.group_by("symbol").agg(pl.col("data_date").max()).iter_rows()}
    as_of = config.as_of or datetime.now(UTC)
    oc = freshness_outcome(latest, calendars, as_of, config.freshness_max_lag)
    if not latest:
        oc.metadata["note"] = "the matrix has no rows yet"
    # Yielded as an evaluation: an AssetCheckResult of an unpartitioned check in a partitioned run makes
    # Dagster enumerate every partition key of the asset (~11 s here) to find its target.
    yield evaluation(MATRIX_KEY, oc, None, False, _targets(context.instance, MATRIX_KEY, None).get(None))
    yield _check_output(context, MATRIX_KEY, "matrix_freshness")


def _column_types(mat: dg.AssetMaterialization | None) -> dict[str, str] | None:
    md = (mat.metadata or {}) if mat is not None else {}
    text = md.get("chimera/columns")
    if text is not None:
        return dict(json.loads(getattr(text, "value", text)))
    # Materializations recorded before the compact text carried the whole TableSchema.
    value = md.get("dagster/column_schema")
    schema = getattr(value, "schema", value)
    if not isinstance(schema, dg.TableSchema):
        return None
    return {c.name: c.type for c in schema.columns}


def schema_change_outcome(instance: dg.DagsterInstance, key: dg.AssetKey) -> CheckOutcome:
    """Compare the column schema of the asset's latest materialization with that of the latest
    materialization of an EARLIER run. (Dagster's ``build_column_schema_change_checks`` compares the
    two latest materializations, which for a range run are two partitions of the same run.)"""
    name, sev = "column_schema_change", Severity.WARN
    desc = "The column schema equals the previous run's (added, removed and retyped columns are reported)."
    latest = instance.fetch_materializations(key, limit=1).records
    if not latest:
        return CheckOutcome(name, True, sev, {"note": "never materialized"}, desc)
    now = _column_types(latest[0].asset_materialization)
    meta: dict[str, Any] = {"latest_run_id": latest[0].run_id}
    if now is None:
        return CheckOutcome(name, True, sev, {**meta, "note": "the latest materialization records no column schema "
                                               "(it wrote no rows)"}, desc)
    run = instance.get_run_record_by_id(latest[0].run_id)
    started = (run.start_time or run.create_timestamp.timestamp()) if run else latest[0].timestamp
    earlier = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, before_timestamp=started), limit=20
    ).records
    before = next((t for t in (_column_types(r.asset_materialization) for r in earlier) if t is not None), None)
    if before is None:
        return CheckOutcome(name, True, sev, {**meta, "note": "no earlier run recorded a column schema",
                                              "columns": len(now)}, desc)
    added = [c for c in now if c not in before]
    removed = [c for c in before if c not in now]
    retyped = {c: f"{before[c]} -> {now[c]}" for c in now if c in before and before[c] != now[c]}
    meta.update({"columns": len(now), "added_columns": added, "removed_columns": removed,
                 "retyped_columns": retyped,
                 "offending_keys": [{"column": c, "change": "added"} for c in added]
                 + [{"column": c, "change": "removed"} for c in removed]
                 + [{"column": c, "change": t} for c, t in retyped.items()]})
    meta["offending_keys"] = meta["offending_keys"][:20]
    return CheckOutcome(name, not (added or removed or retyped), sev, meta, desc)


def schema_change_checks() -> list[dg.AssetChecksDefinition]:
    """``column_schema_change`` (WARN) on every table asset. The IO manager and the raw and training
    assets record the columns (``chimera/columns``) on each materialization."""
    keys = [asset_key(s) for s in ALL_TABLES.values() if s.schema != "ops"]
    keys += [asset_key(training_table(r)) for r in get_universe().root_names]
    specs = [
        dg.AssetCheckSpec("column_schema_change", asset=k, description="Column schema unchanged since the "
                          "previous run (added/removed/retyped columns).")
        for k in keys
    ]

    @dg.multi_asset_check(name="column_schema_change_checks", specs=specs, can_subset=True)
    def _schema_checks(context: dg.AssetCheckExecutionContext):
        for ck in sorted(context.selected_asset_check_keys, key=lambda k: k.asset_key.to_user_string()):
            oc = schema_change_outcome(context.instance, ck.asset_key)
            target = _targets(context.instance, ck.asset_key, None).get(None)
            yield evaluation(ck.asset_key, oc, None, False, target)
            yield _check_output(context, ck.asset_key, ck.name)

    return [_schema_checks]


def build_checks(partitioned: bool | None = None) -> list[dg.AssetChecksDefinition]:
    """Every quality check: one per checked table, matrix freshness, column-schema changes.
    ``partitioned`` defaults to ``CHIMERA_PARTITIONED_CHECKS`` (see ``table_checks``)."""
    part = partitioned_checks_enabled() if partitioned is None else partitioned
    from chimera_assets.stale_sources_check import stale_source_checks

    return [*(table_checks(s, part) for s in audited_tables()), matrix_freshness, *schema_change_checks(),
            *stale_source_checks()]


def summarise_evaluations(evaluations) -> tuple[int, list[str], list[str]]:
    """(passed, failed ERROR checks, failed WARN checks) as ``asset:check[partition]`` strings, for the
    run summary: WARN results are warnings, not failures."""
    passed, errors, warnings = 0, [], []
    for ev in evaluations:
        label = f"{ev.asset_key.to_user_string()}:{ev.check_name}" + (f"[{ev.partition}]" if ev.partition else "")
        if ev.passed:
            passed += 1
        elif ev.severity == dg.AssetCheckSeverity.WARN:
            warnings.append(label)
        else:
            errors.append(label)
    return passed, errors, warnings


ALL_CHECKS = build_checks()


def __getattr__(name: str):
    # QUALITY_ASSETS is resolved lazily: the dashboard module imports this one.
    if name == "QUALITY_ASSETS":
        from chimera_assets.assets.quality_report import QUALITY_ASSETS

        return QUALITY_ASSETS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ALL_CHECKS",
    "QUALITY_ASSETS",  # noqa: F822 - provided by __getattr__
    "audit_for",
    "build_checks",
    "make_audit",
    "register_audits",
    "rows_as_dicts",
    "summarise_evaluations",
    "table_checks",
]
