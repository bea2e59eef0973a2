"""Offending rows -> ``CheckOutcome``s: one summary over a set of rows, or one per partition.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

from chimera_assets.quality.frames import (
    _jsonable,
    rows_as_dicts,
)
from chimera_assets.quality.registry import (
    MAX_OFFENDING_KEYS,
    PARTITION,
    RULES,
    CheckOutcome,
)


def outcome(
    rule: str,
    offenders: pl.DataFrame,
    rows_checked: int,
    extra: Mapping[str, Any] | None = None,
    partitions_checked: int | None = None,
) -> CheckOutcome:
    """Summary outcome of ``rule`` over a set of rows: passes when ``offenders`` is empty."""
    r = RULES[rule]
    meta: dict[str, Any] = {"rows_checked": int(rows_checked), "offending_rows": offenders.height}
    if partitions_checked is not None:
        failed = offenders[PARTITION].drop_nulls().unique().sort() if PARTITION in offenders.columns else pl.Series([])
        meta["partitions_checked"] = int(partitions_checked)
        meta["partitions_failed"] = failed.len()
        meta["failed_partitions"] = failed.head(MAX_OFFENDING_KEYS).to_list()
    meta.update(_jsonable(dict(extra or {})))
    meta["offending_keys"] = rows_as_dicts(offenders)
    return CheckOutcome(rule, offenders.height == 0, r.severity, meta, r.description)


def outcomes_by_partition(
    rule: str,
    offenders: pl.DataFrame,
    partitions: Iterable[str],
    row_counts: Mapping[str, int],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, CheckOutcome]:
    """One outcome per partition key. Offenders with a NULL partition (a NULL date/symbol) count in
    every partition, so they are never lost."""
    parts = list(dict.fromkeys(partitions))
    grouped: dict[str | None, pl.DataFrame] = {}
    if offenders.height:
        for (pk,), sub in offenders.group_by(PARTITION, maintain_order=True):
            grouped[pk] = sub
    orphans = grouped.get(None)
    out = {}
    for pk in parts:
        sub = grouped.get(pk)
        if orphans is not None:
            sub = orphans if sub is None else pl.concat([sub, orphans], how="vertical_relaxed")
        if sub is None:
            sub = offenders.clear()
        out[pk] = outcome(rule, sub, row_counts.get(pk, 0), extra)
    return out
