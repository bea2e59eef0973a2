"""Load planning for raw partitions: which (trade date, root) partitions to load from which files.

Pure (no Dagster, no warehouse): the raw assets (CLI and UI) and the landing sensor call the same
:func:`plan_loads` with

* the landing files with their record coverage (:class:`~chimera_assets.ingest.coverage.FileCoverage`),
* the ledger's ``loaded`` rows as per-file rectangles (:func:`loaded_rects`): "the file with this
  sha256 was loaded into every partition it covers for these roots over these trade dates",
* the tables' own ``load_id`` values per partition, and the load ids the ledger records as loaded.

Rules (spec 6.2): a partition no file covers is skipped and left as it is (a missing source never
deletes). A covered partition is loaded when one of its files was never loaded into it with the same
content, when the table holds no row for it although the ledger says loaded, or when its rows carry a
load_id the ledger does not record as ``loaded`` (a MERGE whose ledger write was lost): the tables'
load_ids are the truth. Otherwise it is skipped as already loaded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import polars as pl

from chimera_assets.ingest.coverage import FileCoverage, PartitionKey
from chimera_assets.trade_calendar import weekday_runs

NO_SOURCE = "no source file holds records for it (table left as it is)"
NO_SESSION = "the source covers the day but holds no record for it (no session): 0 rows"
ALREADY_LOADED = "already loaded from the same content (sha256 match)"


@dataclass(frozen=True)
class LoadedRect:
    """A ledger ``loaded`` row: ``sha256`` was loaded into the partitions it covers among ``roots``
    x trade dates [first, last]."""

    sha256: str
    roots: frozenset[str]
    first: date
    last: date

    def holds(self, key: PartitionKey) -> bool:
        return key[1] in self.roots and self.first <= key[0] <= self.last


@dataclass
class Plan:
    """What one load of ``keys`` does. ``load``: partitions to (re)load, with ``reasons``; ``skipped``:
    partition -> reason; ``files``: the files giving rows to ``load`` (oldest first: newest wins per
    key); ``unchanged``: files of the request with nothing left to load (recorded skipped_unchanged)."""

    keys: list[PartitionKey]
    load: list[PartitionKey] = field(default_factory=list)
    reasons: dict[PartitionKey, str] = field(default_factory=dict)
    skipped: dict[PartitionKey, str] = field(default_factory=dict)
    files: list[FileCoverage] = field(default_factory=list)
    unchanged: list[FileCoverage] = field(default_factory=list)

    @property
    def with_data(self) -> list[PartitionKey]:
        """Partitions that hold the source's data after this load (loaded, already loaded, or a
        no-session day the source speaks for): the ones a run may show as materialized."""
        return sorted([*self.load, *(k for k, why in self.skipped.items() if why != NO_SOURCE)])

    @property
    def without_source(self) -> list[PartitionKey]:
        return sorted(k for k, why in self.skipped.items() if why == NO_SOURCE)

    def summary(self) -> str:
        """One line: counts per reason, with an example partition each."""
        by: dict[str, list[PartitionKey]] = defaultdict(list)
        for k in self.load:
            by["load: " + self.reasons[k].split(":")[0]].append(k)
        for k, why in self.skipped.items():
            by["skip: " + why].append(k)
        if not by:
            return "nothing requested"
        parts = []
        for why, ks in sorted(by.items()):
            d, r = min(ks)
            parts.append(f"{len(ks)} partition(s) {why} (e.g. {d.isoformat()}|{r})")
        return "; ".join(parts)


def loaded_rects(ledger: pl.DataFrame, schema: str, root_of_series) -> dict[str, list[LoadedRect]]:
    """Per sha256, the rectangles the ledger's ``loaded`` file rows of ``schema`` claim.

    Only rows of loads INTO a table count (they carry ``rows_written``; an API chunk's fetch row says
    nothing about the table) and only rows naming their series and trade-date span. ``period_end`` is
    exclusive (the day after the last trade date). ``root_of_series`` maps a series to its root (None
    for a series of no root).
    """
    if ledger.is_empty():
        return {}
    rows = ledger.filter(
        (pl.col("status") == "loaded") & (pl.col("schema") == schema) & pl.col("content_sha256").is_not_null()
        & pl.col("rows_written").is_not_null() & pl.col("series").is_not_null()
        & pl.col("period_start").is_not_null() & pl.col("period_end").is_not_null()
    ).select("content_sha256", "series", "period_start", "period_end")
    out: dict[str, list[LoadedRect]] = defaultdict(list)
    for sha, series, p0, p1 in rows.unique().rows():
        roots = frozenset(r for r in (root_of_series(s) for s in series.split(",") if s) if r)
        last = (p1 - timedelta(microseconds=1)).date()
        if roots and last >= p0.date():
            out[sha].append(LoadedRect(sha, roots, p0.date(), last))
    return dict(out)


def known_load_ids(ledger: pl.DataFrame) -> set[str]:
    """Load ids the ledger records as ``loaded`` (any schema)."""
    if ledger.is_empty():
        return set()
    return set(ledger.filter(pl.col("status") == "loaded")["load_id"].drop_nulls().to_list())


def plan_loads(
    keys: Iterable[PartitionKey],
    files: list[FileCoverage],
    rects: Mapping[str, list[LoadedRect]],
    table_load_ids: Mapping[PartitionKey, set[str]],
    known_ids: set[str],
) -> Plan:
    """The plan for loading ``keys`` (see the module docstring for the rules).

    ``files`` must be the readable, non-quarantined files of one schema, in any order (the plan
    orders them oldest first by mtime); ``table_load_ids``: the distinct load_ids of the table's rows
    per partition (partitions without rows may be absent).
    """
    keys = sorted(set(keys))
    files = sorted(files, key=lambda f: (f.mtime_ns, str(f.path)))
    covering: dict[PartitionKey, list[FileCoverage]] = defaultdict(list)
    spoken: set[PartitionKey] = set()
    wanted = set(keys)
    for f in files:
        for k in f.partitions & wanted:
            covering[k].append(f)
        spoken.update(f.spoken_for & wanted)
    plan = Plan(keys=keys)
    for k in keys:
        fs = covering.get(k)
        if not fs:
            plan.skipped[k] = NO_SESSION if k in spoken else NO_SOURCE
            continue
        new = [f for f in fs if not any(r.holds(k) for r in rects.get(f.sha256, ()))]
        ids = table_load_ids.get(k) or set()
        if new:
            plan.reasons[k] = f"new content: {', '.join(f.path.name for f in new[:3])}"
        elif not ids:
            plan.reasons[k] = "reload: the ledger records it loaded but the table holds no row of it"
        elif ids - known_ids:
            plan.reasons[k] = (f"repair: rows carry load_id(s) the ledger does not record as loaded "
                               f"({', '.join(sorted(ids - known_ids)[:3])})")
        else:
            plan.skipped[k] = ALREADY_LOADED
            continue
        plan.load.append(k)
    load = set(plan.load)
    plan.files = [f for f in files if f.partitions & load]
    plan.unchanged = [f for f in files if f.partitions & wanted and not f.partitions & load]
    return plan


def rectangles(keys: Iterable[PartitionKey]) -> list[tuple[frozenset[str], date, date]]:
    """``keys`` as few (roots, first date, last date) rectangles: roots with the same dates share one,
    each run of consecutive weekdays is one (a ledger row per rectangle records a load)."""
    dates_by_root: dict[str, set[date]] = defaultdict(set)
    for d, r in keys:
        dates_by_root[r].add(d)
    roots_by_dates: dict[frozenset[date], set[str]] = defaultdict(set)
    for r, ds in dates_by_root.items():
        roots_by_dates[frozenset(ds)].add(r)
    out = []
    for ds, roots in roots_by_dates.items():
        out.extend((frozenset(roots), first, last) for first, last in weekday_runs(ds))
    return sorted(out, key=lambda x: (x[1], sorted(x[0])))


def table_load_ids(frame: pl.DataFrame) -> dict[PartitionKey, set[str]]:
    """``{(partition date, root): {load_id, ...}}`` from a frame with columns d, r, load_id."""
    if frame.is_empty():
        return {}
    grouped = frame.group_by("d", "r").agg(pl.col("load_id").drop_nulls().unique())
    return {(d, r): set(ids) for d, r, ids in grouped.rows()}

