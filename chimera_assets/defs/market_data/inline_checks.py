"""The raw asset's checks, evaluated by the raw asset itself when Dagster would skip them.

A raw asset in a run of raw assets only records one materialization per partition that has data and
none for partitions without a source file (so those never show as materialized). It then yields no
Output, and Dagster skips every step that depends on the asset, its three check steps included
(``<table>__quality``, ``column_schema_change``, ``source_files_present``): the run "passed 0 checks"
and looked green. In that case the asset evaluates the same checks in its own step and yields their
``AssetCheckEvaluation`` events (same check keys, same metadata), so every raw materialization is
checked whatever mix of partitions with and without files a run holds. The skipped check steps are
then harmless duplicates that never run.
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg

from chimera_assets.defs.market_data.checks import CHECK_NAME as SOURCE_CHECK
from chimera_assets.defs.market_data.checks import source_files_results
from chimera_assets.lib.checks.evaluation import evaluation
from chimera_assets.lib.checks.schema_change import CHECK_NAME as SCHEMA_CHECK
from chimera_assets.lib.checks.schema_change import schema_change_outcome
from chimera_assets.lib.checks.scope import calendars_and_starts
from chimera_assets.lib.checks.table_checks import checked_label
from chimera_assets.lib.resources import DatabentoSource
from chimera_assets.quality.evaluation import evaluate_rule, rules_for
from chimera_assets.quality.registry import RULES, QualityConfig
from chimera_assets.schemas import TableSpec
from chimera_assets.warehouse.base import Slice, Warehouse


def _checks_in_run(context: dg.AssetExecutionContext) -> set[dg.AssetCheckKey]:
    """The checks of this asset the run planned (all of them unless the run selected checks)."""
    graph = context.job_def.asset_layer.asset_graph
    mine = {ck for ck in graph.asset_check_keys if ck.asset_key == context.asset_key}
    selection = context.run.asset_check_selection
    return mine if selection is None else mine & set(selection)


def _as_evaluation(result: dg.AssetCheckResult) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=result.asset_key, check_name=result.check_name, passed=result.passed,
        metadata=dict(result.metadata or {}), severity=result.severity, description=result.description,
        blocking=False,
    )


def raw_check_evaluations(
    context: dg.AssetExecutionContext, spec: TableSpec, schema: str, wh: Warehouse, source: DatabentoSource,
    keys: list,
) -> Iterator[dg.AssetCheckEvaluation]:
    """The evaluations of the raw asset's checks over the run's partition ``keys``."""
    names = {ck.name for ck in _checks_in_run(context)}
    key = context.asset_key
    rules = [r for r in rules_for(spec) if r in names]
    if rules:
        config = QualityConfig.from_env()
        calendars, starts = calendars_and_starts()
        frame = wh.read(spec, Slice.from_keys(keys)) if wh.table_exists(spec) else spec.empty_frame()
        for rule in rules:
            ev = evaluate_rule(wh, spec, rule, keys, config, calendars, starts, frame=frame)
            oc = ev.summary()
            oc.metadata["checked"] = checked_label(keys)
            oc.metadata["evaluated_by"] = "the raw asset's step (Dagster skips the check step in this run)"
            yield evaluation(key, oc, None, RULES[rule].blocking)
    if SCHEMA_CHECK in names:
        yield evaluation(key, schema_change_outcome(context.instance, key), None, False)
    if SOURCE_CHECK in names:
        for result in source_files_results(wh, source, [schema]):
            yield _as_evaluation(result)
