"""``column_schema_change`` (WARN) on every table asset: added, removed and retyped columns since the
previous run.

Kept custom rather than Dagster's ``build_column_schema_change_checks`` (same check name, same
severity), for two reasons: the built-in reads ``dagster/column_schema`` from the two latest
materializations, but chimera's materializations record the compact ``chimera/columns`` text instead
(the nested TableSchema cost ~0.55 ms per partition event; ``io_manager.columns_text``), so the built-in
would see no schema at all; and the two latest materializations of a range run are two partitions of
the SAME run, so even with the schema it would never compare against the previous run.
"""

import json
from typing import Any

import dagster as dg

from chimera_assets.lib.asset_keys import asset_key
from chimera_assets.lib.checks.evaluation import check_output, evaluation
from chimera_assets.quality.registry import CheckOutcome, Severity
from chimera_assets.schemas import ALL_TABLES, training_table
from chimera_assets.universe import get_universe

CHECK_NAME = "column_schema_change"


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
    materialization of an EARLIER run."""
    name, sev = CHECK_NAME, Severity.WARN
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
        dg.AssetCheckSpec(CHECK_NAME, asset=k, description="Column schema unchanged since the "
                          "previous run (added/removed/retyped columns).")
        for k in keys
    ]

    @dg.multi_asset_check(name="column_schema_change_checks", specs=specs, can_subset=True)
    def _schema_checks(context: dg.AssetCheckExecutionContext):
        for ck in sorted(context.selected_asset_check_keys, key=lambda k: k.asset_key.to_user_string()):
            yield evaluation(ck.asset_key, schema_change_outcome(context.instance, ck.asset_key), None, False)
            yield check_output(context, ck.asset_key, ck.name)

    return [_schema_checks]
