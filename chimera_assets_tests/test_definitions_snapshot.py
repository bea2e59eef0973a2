"""Definitions snapshot: the whole ``build_definitions()`` (every asset with its group, partitions,
dependencies and automation condition; every check; every sensor, schedule and job) against the
reviewed file ``snapshots/definitions.json``, as dagster-open-platform does.

A refactor that moves code must leave this file unchanged; a change to the graph shows up as a diff
in review. To accept an intended change, regenerate it::

    CHIMERA_UPDATE_SNAPSHOT=1 PYTHONPATH=$PWD .venv/bin/python -m pytest chimera_assets_tests/test_definitions_snapshot.py
"""

import difflib
import json
import os
import warnings
from pathlib import Path

import dagster as dg

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"
UPDATE_ENV = "CHIMERA_UPDATE_SNAPSHOT"


def _partitions(pdef) -> str | None:
    """A stable description of a partitions definition (not its keys: the roots come from the universe)."""
    if pdef is None:
        return None
    if isinstance(pdef, dg.MultiPartitionsDefinition):
        return "multi(" + ", ".join(f"{d.name}={_partitions(d.partitions_def)}" for d in pdef.partitions_defs) + ")"
    if isinstance(pdef, dg.TimeWindowPartitionsDefinition):
        return f"time_window({pdef.cron_schedule}, {pdef.timezone}, start={pdef.start:%Y-%m-%d}, end_offset={pdef.end_offset})"
    if isinstance(pdef, dg.StaticPartitionsDefinition):
        return "static"
    return type(pdef).__name__


def _condition_tree(cond: dg.AutomationCondition, depth: int = 0) -> list[str]:
    """One line per node: its name, with its label when it has one, children indented."""
    label = cond.get_label()
    line = "  " * depth + (f"{label} = {cond.name}" if label and label != cond.name else cond.name)
    return [line] + [ln for child in cond.children for ln in _condition_tree(child, depth + 1)]


def _condition(cond: dg.AutomationCondition | None) -> dict | None:
    if cond is None:
        return None
    return {"label": cond.get_label() or cond.name, "description": cond.description, "tree": _condition_tree(cond)}


def definitions_snapshot(defs: dg.Definitions) -> dict:
    """The reviewed surface of ``defs`` as plain, sorted JSON data."""
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        deps = []
        for parent in sorted(node.parent_keys, key=lambda k: k.to_user_string()):
            mapping = node.partition_mappings.get(parent)
            deps.append(parent.to_user_string() + (f" ({type(mapping).__name__})" if mapping is not None else ""))
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": _partitions(node.partitions_def),
            "deps": deps,
            "automation_condition": _condition(node.automation_condition),
        }
    checks = [
        {"asset": ck.asset_key.to_user_string(), "name": ck.name, "blocking": graph.get(ck).blocking}
        for ck in sorted(graph.asset_check_keys, key=lambda c: (c.asset_key.to_user_string(), c.name))
    ]
    repo = defs.get_repository_def()
    return {
        "assets": assets,
        "checks": checks,
        "sensors": sorted(
            ({"name": s.name, "default_status": s.default_status.value} for s in repo.sensor_defs),
            key=lambda s: s["name"],
        ),
        "schedules": sorted(
            ({"name": s.name, "cron": s.cron_schedule, "timezone": s.execution_timezone,
              "default_status": s.default_status.value} for s in repo.schedule_defs),
            key=lambda s: s["name"],
        ),
        "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
    }


def test_definitions_match_the_reviewed_snapshot():
    from chimera_assets.definitions import build_definitions

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = json.dumps(definitions_snapshot(build_definitions()), indent=1, sort_keys=True) + "\n"
    if os.environ.get(UPDATE_ENV):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(got)
    want = SNAPSHOT.read_text() if SNAPSHOT.exists() else ""
    if got != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True), str(SNAPSHOT), "build_definitions()"))
        raise AssertionError(
            f"The definitions differ from {SNAPSHOT.name} (first 200 diff lines below). If the change is "
            f"intended, regenerate it with\n  {UPDATE_ENV}=1 PYTHONPATH=$PWD .venv/bin/python -m pytest "
            f"chimera_assets_tests/test_definitions_snapshot.py\nand review the diff.\n"
            + "\n".join(diff.splitlines()[:200])
        )


def test_snapshot_names_every_asset_check_and_automated_asset():
    """The snapshot file is not empty or partial: it holds the graph's assets, checks and the sensors."""
    snap = json.loads(SNAPSHOT.read_text())
    assert len(snap["assets"]) >= 20 and len(snap["checks"]) >= 20
    assert snap["assets"]["features/daily_ml_matrix"]["automation_condition"]["label"] == "chimera_partition_flow"
    assert any("within_lookback(300)" in ln for ln in snap["assets"]["features/market_features"]["automation_condition"]["tree"])
    assert "chimera_automation" in {s["name"] for s in snap["sensors"]}
    assert "chimera_whole_graph" in snap["jobs"]
