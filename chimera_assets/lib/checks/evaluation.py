"""Quality outcomes as Dagster check evaluations: metadata values, severities, the step output, the run summary.

Evaluations are ``dg.AssetCheckEvaluation`` (public) rather than ``dg.AssetCheckResult`` because a result
cannot name its partition: a range run's per-partition results, and the write audit's failures logged
from the asset's step, need one. They carry no target materialization: its type is private in Dagster
1.13, and without it Dagster judges whether an evaluation is current for the asset's latest
materialization by time (the evaluation came after it), which every check here does.
"""

from typing import Any

import dagster as dg

from chimera_assets.quality.registry import CheckOutcome, Severity

# Cap on the per-partition failure evaluations of one summary (range) result or one rejected write.
MAX_FAILED_PARTITION_EVENTS = 500


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


def dg_severity(sev: Severity) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.WARN if sev == Severity.WARN else dg.AssetCheckSeverity.ERROR


def evaluation(
    key: dg.AssetKey, oc: CheckOutcome, partition: str | None, blocking: bool, description: str = ""
) -> dg.AssetCheckEvaluation:
    """The evaluation of check ``oc.rule`` on ``key`` (``partition`` None: the run or the whole table)."""
    return dg.AssetCheckEvaluation(
        asset_key=key,
        check_name=oc.rule,
        passed=oc.passed,
        metadata=dagster_metadata(oc.metadata),
        severity=dg_severity(oc.severity),
        description=description or oc.description,
        blocking=blocking,
        partition=partition,
    )


def check_output(context: dg.AssetCheckExecutionContext, key: dg.AssetKey, name: str) -> dg.Output:
    """The check step's output for ``name``: evaluations are yielded directly (with their partition),
    so the output that marks the check as executed is yielded by hand."""
    output = context.op_execution_context.assets_def.get_output_name_for_asset_check_key(dg.AssetCheckKey(key, name))
    return dg.Output(None, output_name=output)


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
