"""The check factory: one multi-asset check per checked table, evaluating every rule of the table.

Per-partition results: every rule is evaluated per partition. By default each run records one
evaluation per rule with the failing partitions and offending keys in its metadata. With
``CHIMERA_PARTITIONED_CHECKS=1`` the check specs carry the asset's partitions: one evaluation per
partition (runs of up to ``QualityConfig.per_partition_limit`` partitions) or a summary plus one per
failing partition (longer runs). It is opt-in because Dagster 1.13 plans partitioned checks in
O(partitions^2) per check for a range run. See docs/data_quality.md.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg

from chimera_assets.lib.asset_keys import asset_key
from chimera_assets.lib.checks.evaluation import MAX_FAILED_PARTITION_EVENTS, check_output, evaluation
from chimera_assets.lib.checks.scope import calendars_and_starts
from chimera_assets.lib.io_manager import WarehouseResource
from chimera_assets.lib.partitions import date_symbol_partitions, parse_partition_keys, trade_date_partitions
from chimera_assets.quality.evaluation import evaluate_rule, rules_for
from chimera_assets.quality.registry import RULES, CheckOutcome, QualityConfig
from chimera_assets.schemas import TableSpec
from chimera_assets.warehouse.base import Slice


def _partitions_def(spec: TableSpec) -> dg.PartitionsDefinition | None:
    """The partitions of ``spec``'s asset (None: unpartitioned or date-less tables)."""
    if spec.date_column is None or spec.schema == "training":
        return None
    if spec.symbol_column is None:
        return trade_date_partitions()
    return date_symbol_partitions()


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
    if per_partition is None:
        # The check history lists evaluations without a partition as "Partition -": name what was checked.
        meta = {**summary.metadata, "checked": checked}
        summary = CheckOutcome(rule, summary.passed, summary.severity, meta, summary.description)
        yield evaluation(key, summary, None, blocking)
    elif len(per_partition) <= config.per_partition_limit:
        for pk, oc in per_partition.items():
            yield evaluation(key, oc, pk, blocking)
    else:
        meta = dict(summary.metadata)
        meta["per_partition_results"] = "failing partitions only (the range is longer than per_partition_limit)"
        meta["per_partition_limit"] = config.per_partition_limit
        yield evaluation(key, CheckOutcome(rule, summary.passed, summary.severity, meta, summary.description),
                         None, blocking)
        failing = [(pk, oc) for pk, oc in per_partition.items() if not oc.passed][:MAX_FAILED_PARTITION_EVENTS]
        for pk, oc in failing:
            yield evaluation(key, oc, pk, blocking)
    yield check_output(context, key, rule)


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
