"""What ``chimera prune`` removes downstream of the raw rows it re-derives: no derived row outlives its source.

Every date x root table downstream of the raw tables (session bars -> market features, pivots, golden
zone -> consolidated features -> the daily ML matrix -> the training tables) holds, for a partition
(trade date D, root R), rows built from the raw rows of (D, R). When prune re-derives a stale raw
partition (its source files are gone or changed), the derived rows of that partition were built from
data that no longer exists: prune lists them in its preview and ``--apply`` deletes them, BEFORE it
rewrites the raw rows (if it is interrupted between the two, the raw rows are still there and the
derived ones are rebuilt by the next run; never the other way round). Rerunning the pipeline for those
dates rebuilds them from the files present (or leaves them empty when no file covers them).

Rows of LATER dates whose look-back windows reached into a pruned date (e.g. a 21-day return) are not
deleted: they are listed as ``later rows to refresh`` so the user can rerun those dates too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl

from chimera_assets.schemas import PARTITIONED_FEATURE_TABLES, TableSpec, training_table
from chimera_assets.universe import Universe
from chimera_assets.warehouse.base import Slice, Warehouse

PartitionKey = tuple[date, str]


def derived_tables(universe: Universe) -> list[TableSpec]:
    """The date x root tables built from raw rows, upstream first (the order of deletion)."""
    return [*PARTITIONED_FEATURE_TABLES, *(training_table(r) for r in universe.root_names)]


@dataclass
class DerivedPrune:
    """Rows of one derived table in the pruned partitions (``rows``) and later rows to refresh."""

    table: str
    spec: TableSpec
    rows: dict[PartitionKey, int] = field(default_factory=dict)
    later: int = 0


def plan_derived(wh: Warehouse, universe: Universe, keys: set[PartitionKey]) -> list[DerivedPrune]:
    """Per derived table that holds rows in ``keys``: how many per partition (one narrow read each)."""
    if not keys:
        return []
    out = []
    roots = {r for _, r in keys}
    last = max(d for d, _ in keys)
    for spec in derived_tables(universe):
        if not wh.table_exists(spec):
            continue
        cols = [spec.date_column, spec.symbol_column]
        got = wh.read(spec, Slice.from_keys(sorted(keys)), columns=cols)
        wanted = pl.DataFrame([(d, r) for d, r in keys], schema={cols[0]: pl.Date, cols[1]: pl.Utf8}, orient="row")
        hits = got.join(wanted, on=cols, how="semi")
        if hits.is_empty():
            continue
        dp = DerivedPrune(spec.fqn, spec, {(d, r): n for d, r, n in hits.group_by(cols).len().rows()})
        later = wh.read(spec, columns=cols).filter(
            (pl.col(cols[0]) > last) & pl.col(cols[1]).is_in(sorted(roots))
        )
        dp.later = later.height
        out.append(dp)
    return out


def apply_derived(wh: Warehouse, plans: list[DerivedPrune]) -> int:
    """Delete the derived rows of the pruned partitions (a slice-scoped write of no rows per table);
    returns the rows deleted."""
    deleted = 0
    for dp in plans:
        wh.merge(dp.spec, dp.spec.empty_frame(), Slice.from_keys(sorted(dp.rows)))
        deleted += sum(dp.rows.values())
    return deleted


def format_derived(plans: list[DerivedPrune], applied: bool) -> list[str]:
    if not plans:
        return []
    verb = "deleted" if applied else "would delete"
    lines = ["derived rows built from the pruned raw partitions (no derived row outlives its source):"]
    for dp in plans:
        keys = sorted(dp.rows)
        shown = ", ".join(f"{d.isoformat()}|{r}" for d, r in keys[:8]) + (", ..." if len(keys) > 8 else "")
        lines.append(f"  {dp.table}: {verb} {sum(dp.rows.values())} row(s) in {len(keys)} partition(s): {shown}")
    all_keys = sorted({k for dp in plans for k in dp.rows})
    d0, d1 = all_keys[0][0], all_keys[-1][0]
    roots = ",".join(sorted({r for _, r in all_keys}))
    later = max(dp.later for dp in plans)
    lines.append(f"  rebuild them from the files present: chimera run --start {d0} --end {d1} --roots {roots}"
                 + (f" (and refresh the {later} later row(s) whose look-backs reach these dates)" if later else ""))
    return lines
