"""The pure load planner (chimera_assets/ingest/plan.py): every rule on hand-made coverage and state."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from chimera_assets.dbn.header import DbnInfo
from chimera_assets.ingest.coverage import FileCoverage, _spoken_for
from chimera_assets.ingest.plan import (
    ALREADY_LOADED,
    NO_SESSION,
    NO_SOURCE,
    LoadedRect,
    loaded_rects,
    plan_loads,
    rectangles,
)

D = [date(2024, 3, d) for d in (4, 5, 6, 7, 8)]


def _file(name: str, keys, mtime: int = 1) -> FileCoverage:
    info = DbnInfo(Path(name), "GLBX.MDP3", "ohlcv-1h", 1, "continuous", "instrument_id", [], None, None)
    parts = frozenset(keys)
    return FileCoverage(Path(name), info, f"sha-{name}", mtime, parts, _spoken_for(set(parts)), 10, None, None)


def _rect(f: FileCoverage, roots, d0, d1) -> dict[str, list[LoadedRect]]:
    return {f.sha256: [LoadedRect(f.sha256, frozenset(roots), d0, d1)]}


def test_nothing_loaded_loads_every_covered_partition_and_leaves_the_rest():
    f = _file("a", [(d, "ZL") for d in D[:3]])
    plan = plan_loads([(d, "ZL") for d in D], [f], {}, {}, set())
    assert plan.load == [(d, "ZL") for d in D[:3]]
    assert plan.skipped == {(D[3], "ZL"): NO_SOURCE, (D[4], "ZL"): NO_SOURCE}
    assert plan.files == [f] and plan.without_source == [(D[3], "ZL"), (D[4], "ZL")]


def test_a_file_loaded_for_some_dates_and_roots_loads_the_rest_only():
    f = _file("a", [(d, r) for d in D for r in ("ZL", "MES")])
    keys = [(d, r) for d in D for r in ("ZL", "MES")]
    ids = {(d, "ZL"): {"L1"} for d in D[:2]}
    plan = plan_loads(keys, [f], _rect(f, ["ZL"], D[0], D[1]), ids, {"L1"})
    assert set(plan.load) == set(keys) - {(D[0], "ZL"), (D[1], "ZL")}
    assert plan.skipped == {(D[0], "ZL"): ALREADY_LOADED, (D[1], "ZL"): ALREADY_LOADED}


def test_same_content_everywhere_is_skipped_and_the_file_is_unchanged():
    f = _file("a", [(d, "ZL") for d in D])
    ids = {(d, "ZL"): {"L1"} for d in D}
    plan = plan_loads([(d, "ZL") for d in D], [f], _rect(f, ["ZL"], D[0], D[-1]), ids, {"L1"})
    assert plan.load == [] and plan.unchanged == [f] and plan.with_data == [(d, "ZL") for d in D]


def test_rows_with_a_load_id_the_ledger_does_not_know_are_reloaded():
    f = _file("a", [(d, "ZL") for d in D])
    ids = {(d, "ZL"): {"L1"} for d in D}
    ids[(D[2], "ZL")] = {"L1", "LOST"}
    plan = plan_loads([(d, "ZL") for d in D], [f], _rect(f, ["ZL"], D[0], D[-1]), ids, {"L1"})
    assert plan.load == [(D[2], "ZL")] and "LOST" in plan.reasons[(D[2], "ZL")]


def test_loaded_per_ledger_but_empty_table_is_reloaded():
    f = _file("a", [(D[0], "ZL")])
    plan = plan_loads([(D[0], "ZL")], [f], _rect(f, ["ZL"], D[0], D[0]), {}, set())
    assert plan.load == [(D[0], "ZL")] and "no row" in plan.reasons[(D[0], "ZL")]


def test_a_new_file_for_a_loaded_partition_reloads_it_from_every_file_covering_it():
    old = _file("old", [(d, "ZL") for d in D], mtime=1)
    new = _file("new", [(D[4], "ZL")], mtime=2)
    ids = {(d, "ZL"): {"L1"} for d in D}
    plan = plan_loads([(d, "ZL") for d in D], [new, old], _rect(old, ["ZL"], D[0], D[-1]), ids, {"L1"})
    assert plan.load == [(D[4], "ZL")]
    assert plan.files == [old, new]  # oldest first: the newest file wins per key


def test_a_day_without_records_inside_a_file_is_spoken_for_not_missing():
    f = _file("a", [(D[0], "ZL"), (D[2], "ZL")])
    plan = plan_loads([(d, "ZL") for d in D[:4]], [f], {}, {}, set())
    assert plan.skipped[(D[1], "ZL")] == NO_SESSION and plan.skipped[(D[3], "ZL")] == NO_SOURCE
    assert (D[1], "ZL") in plan.with_data and (D[3], "ZL") not in plan.with_data


def test_ledger_rows_become_rectangles_and_rectangles_are_few():
    led = pl.DataFrame({
        "status": ["loaded", "loaded", "failed", "loaded"],
        "schema": ["ohlcv-1h"] * 4,
        "content_sha256": ["s1", "s2", "s3", "s4"],
        "rows_written": [10, 0, None, None],  # s4: an API fetch row (no rows_written): claims nothing
        "series": ["ZL.v.0,MES.v.0", "ZL.v.0", "ZL.v.0", "ZL.v.0"],
        "period_start": [datetime(2024, 3, 4, tzinfo=UTC)] * 4,
        "period_end": [datetime(2024, 3, 9, tzinfo=UTC)] * 4,
    })
    rects = loaded_rects(led, "ohlcv-1h", lambda s: s.split(".")[0])
    assert set(rects) == {"s1", "s2"}
    assert rects["s1"][0].roots == {"ZL", "MES"} and rects["s1"][0].last == D[4]
    assert rectangles([(d, r) for d in D for r in ("ZL", "MES")]) == [(frozenset({"ZL", "MES"}), D[0], D[4])]
    assert len(rectangles([(D[0], "ZL"), (D[1], "ZL"), (D[3], "ZL")])) == 2
