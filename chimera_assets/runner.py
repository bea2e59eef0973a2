"""Run the whole graph for a date range and roots without the UI (used by ``chimera run``).

Dagster runs hold one partitions definition each, so the graph goes in a few runs: reference
tables, the date-only policy features, then one range run per contiguous block of roots for every
date x root asset (raw -> session bars -> features -> matrix, one vectorised pass per asset), then
the training tables. Each run is a real Dagster run (recorded in the instance when DAGSTER_HOME is
set), so the UI shows the same history as a UI-launched materialization.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import dagster as dg
import polars as pl

from chimera_assets.asset_keys import training_key
from chimera_assets.partitions import FIRST_TRADE_DATE, weekday_dates
from chimera_assets.schemas import ALL_TABLES, training_table
from chimera_assets.universe import Universe, UniverseConfigError, get_universe
from chimera_assets.warehouse.base import Warehouse

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class RunInputError(ValueError):
    """A user-supplied run argument is invalid; the message names it."""


@dataclass
class StageResult:
    name: str
    seconds: float
    success: bool
    partitions: int = 0
    checks_passed: int = 0
    checks_failed: list[str] = field(default_factory=list)
    checks_warned: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class RunSummary:
    stages: list[StageResult]
    rows_per_table: dict[str, int]
    warehouse: str

    @property
    def success(self) -> bool:
        return all(s.success for s in self.stages)

    @property
    def checks_passed(self) -> int:
        return sum(s.checks_passed for s in self.stages)

    @property
    def checks_failed(self) -> list[str]:
        return [c for s in self.stages for c in s.checks_failed]

    @property
    def checks_warned(self) -> list[str]:
        return [c for s in self.stages for c in s.checks_warned]


def validate_range(start: date, end: date) -> list[date]:
    first = date.fromisoformat(FIRST_TRADE_DATE)
    if start > end:
        raise RunInputError(f"--start {start} is after --end {end}")
    if start < first:
        raise RunInputError(f"--start {start} is before the first trade date partition {first}")
    if end > date.today():
        raise RunInputError(f"--end {end} is in the future (today is {date.today()})")
    dates = weekday_dates(start, end)
    if not dates:
        raise RunInputError(f"--start {start} .. --end {end} holds no trade date (Mon-Fri)")
    return dates


def root_blocks(roots: list[str], universe: Universe) -> list[list[str]]:
    """Group roots into runs of neighbours in universe order (a Dagster range is a rectangle)."""
    order = universe.root_names
    idx = sorted(order.index(r) for r in roots)
    blocks: list[list[int]] = []
    for i in idx:
        if blocks and i == blocks[-1][-1] + 1:
            blocks[-1].append(i)
        else:
            blocks.append([i])
    return [[order[i] for i in b] for b in blocks]


def _check_results(result: dg.ExecuteInProcessResult) -> tuple[int, list[str], list[str]]:
    """(passed, failed ERROR checks, failed WARN checks): warnings are reported, not failures."""
    from chimera_assets.lib.checks.evaluation import summarise_evaluations

    return summarise_evaluations(result.get_asset_check_evaluations())


def run_graph(
    defs: dg.Definitions,
    start: date,
    end: date,
    roots: list[str],
    instance: dg.DagsterInstance,
    warehouse: Warehouse,
    progress: Callable[[str], None] = print,
    include_training: bool = True,
    run_config: dict | None = None,
    extra_tags: dict[str, str] | None = None,
) -> RunSummary:
    """Materialize every asset for [start, end] x roots; returns per-stage results and row counts.

    ``extra_tags`` go on every run (the whole-graph job tags its child runs with its own run id)."""
    universe = get_universe()
    try:
        roots = universe.require_roots(roots)
    except UniverseConfigError as exc:
        raise RunInputError(str(exc)) from exc
    if not roots:
        raise RunInputError("--roots is empty")
    dates = validate_range(start, end)
    d0, d1 = dates[0].isoformat(), dates[-1].isoformat()
    job = defs.resolve_implicit_global_asset_job_def()
    graph = defs.resolve_asset_graph()
    keys_by_kind: dict[str, list[dg.AssetKey]] = {"none": [], "date": [], "multi": []}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        pdef = node.partitions_def
        if node.is_external or not node.is_materializable:
            continue
        kind = "none" if pdef is None else "multi" if isinstance(pdef, dg.MultiPartitionsDefinition) else "date"
        keys_by_kind[kind].append(key)
    skipped = _nothing_to_load(defs, dates, roots)
    for key, reason in skipped.items():
        progress(f"skipping {key.to_user_string()}: {reason}")
    keys_by_kind["multi"] = [k for k in keys_by_kind["multi"] if k not in skipped]
    training = {k for k in keys_by_kind["none"] if k.path[0] == "training" and k.path[1].endswith("_daily")}
    reports = {k for k in keys_by_kind["none"] if k.path[0] == "ops"}
    stages: list[tuple[str, set[dg.AssetKey], dict[str, str], int]] = [
        ("reference tables", set(keys_by_kind["none"]) - training - reports, {}, 0),
        (f"policy features {d0}..{d1}", set(keys_by_kind["date"]),
         {"dagster/asset_partition_range_start": d0, "dagster/asset_partition_range_end": d1}, len(dates)),
    ]
    # Raw market data goes in its own run: a run of raw assets only records a materialization just for
    # the partitions a source really loaded (a raw asset in a mixed run must yield its output, or Dagster
    # skips every step downstream of it), so a partition without a source never shows as materialized.
    raw = {k for k in keys_by_kind["multi"] if k.path[0] == "market_data"}
    for block in root_blocks(roots, universe):
        block_tags = {"dagster/asset_partition_range_start": f"{d0}|{block[0]}",
                      "dagster/asset_partition_range_end": f"{d1}|{block[-1]}"}
        stages.append((f"market data {d0}..{d1} x {','.join(block)}", raw, block_tags, len(dates) * len(block)))
        stages.append((
            f"session bars -> features -> matrix {d0}..{d1} x {','.join(block)}",
            set(keys_by_kind["multi"]) - raw, block_tags, len(dates) * len(block),
        ))
    if include_training:
        wanted = {training_key(r) for r in roots}
        stages.append(("training tables", training & wanted, {}, 0))
    if reports:
        stages.append(("load ledger and data quality report", reports, {}, 0))
    results: list[StageResult] = []
    for i, (name, selection, tags, n_parts) in enumerate(stages, 1):
        if not selection:
            continue
        progress(f"[{i}/{len(stages)}] {name} ({len(selection)} asset(s){f', {n_parts} partition(s)' if n_parts else ''})")
        t0 = time.perf_counter()
        sub = job.get_subset(asset_selection=selection)
        res = sub.execute_in_process(
            instance=instance, tags={**tags, **(extra_tags or {})}, raise_on_error=False,
            run_config=run_config or QUIET,
        )
        passed, failed, warned = _check_results(res)
        err = None
        if not res.success:
            failures = [ev for ev in res.all_events if ev.is_step_failure]
            err = "; ".join(f"{ev.step_key}: {root_cause(ev.step_failure_data.error)}" for ev in failures)
            err = err or "run failed"
        stage = StageResult(name, time.perf_counter() - t0, res.success, n_parts, passed, failed, warned, err)
        results.append(stage)
        status = "ok" if res.success else "FAILED"
        progress(
            f"      {status} in {stage.seconds:.1f}s; checks passed {passed}, failed {len(failed)}, "
            f"warnings {len(warned)}"
        )
        if not res.success:
            progress(f"      error: {err}")
            break
    rows = table_row_counts(warehouse, roots)
    return RunSummary(results, rows, repr(warehouse))


def _nothing_to_load(defs: dg.Definitions, dates: list[date], roots: list[str]) -> dict[dg.AssetKey, str]:
    """Raw assets with no landing file for the range: left out of the run instead of recording an
    empty materialization per partition."""
    from chimera_assets.assets.market_data import raw_assets_with_nothing_to_load
    from chimera_assets.resources import DatabentoSource

    source = (defs.resources or {}).get("databento")
    return raw_assets_with_nothing_to_load(source, dates, roots) if isinstance(source, DatabentoSource) else {}


def root_cause(error) -> str:
    """The first message in a Dagster error chain that is not a Dagster wrapper: the project's own
    error (which names the input) rather than "error occurred while handling output"."""
    chain = []
    while error is not None:
        chain.append(error)
        error = getattr(error, "cause", None)
    for err in chain:
        if not (err.cls_name or "").startswith("Dagster"):
            return err.message.strip()
    return chain[-1].message.strip() if chain else "unknown error"


def table_row_counts(warehouse: Warehouse, roots: list[str]) -> dict[str, int]:
    tables = list(ALL_TABLES.values()) + [training_table(r) for r in roots]
    out = {}
    for spec in tables:
        if warehouse.table_exists(spec):
            out[spec.fqn] = warehouse.row_count(spec)
    return out


def format_summary(summary: RunSummary) -> str:
    lines = ["", "Summary", "-------"]
    width = max((len(t) for t in summary.rows_per_table), default=10)
    for table, n in summary.rows_per_table.items():
        lines.append(f"  {table:<{width}}  {n:>10,} rows")
    lines.append(
        f"  checks: {summary.checks_passed} passed, {len(summary.checks_failed)} failed, "
        f"{len(summary.checks_warned)} warnings"
    )
    for c in summary.checks_failed[:20]:
        lines.append(f"    failed: {c}")
    for c in summary.checks_warned[:20]:
        lines.append(f"    warning: {c}")
    lines.append(f"  warehouse: {summary.warehouse}")
    lines.append(f"  result: {'SUCCESS' if summary.success else 'FAILED'}")
    return "\n".join(lines)


def frame_hash(frame: pl.DataFrame, exclude: tuple[str, ...] = ()) -> str:
    """Order-independent content hash of a frame (used to prove re-runs change nothing).

    Rows are hashed one by one (polars ``hash_rows``, stable within one process) and the sorted row
    hashes digested, so neither row order nor memory layout (chunks) changes the result.
    """
    import hashlib

    cols = [c for c in frame.columns if c not in exclude]
    if not cols or frame.height == 0:
        return hashlib.sha256(repr(cols).encode()).hexdigest()
    rows = frame.select(cols).rechunk().hash_rows(seed=0).sort()
    return hashlib.sha256(repr(cols).encode() + rows.to_numpy().tobytes()).hexdigest()
