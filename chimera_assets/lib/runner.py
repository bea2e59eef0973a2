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

from chimera_assets.ingest.landing import SCHEMA_TABLES, list_dbn_files, select_files
from chimera_assets.lib.asset_keys import SESSION_BARS as SESSION_BARS_KEY
from chimera_assets.lib.asset_keys import asset_key, training_key
from chimera_assets.lib.partitions import FIRST_TRADE_DATE, weekday_dates
from chimera_assets.lib.resources import DatabentoSource
from chimera_assets.schemas import ALL_TABLES, training_table
from chimera_assets.universe import Universe, UniverseConfigError, get_universe
from chimera_assets.warehouse.base import Warehouse

MAX_LISTED = 20
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
    #: Days without a publishable session, by status (no_trades, missing, partial, incomplete): the
    #: count and the first partition keys (SPEC 6.3; they never fail the run).
    gap_days: dict[str, tuple[int, list[str]]] = field(default_factory=dict)
    #: Per root, the trade dates of the request after the root's last loaded bar (built as empty).
    beyond_data: dict[str, tuple[date, date, int]] = field(default_factory=dict)

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


@dataclass(frozen=True)
class Stage:
    """One Dagster run of the plan: its title, the assets it selects, the run tags of its range."""

    name: str
    selection: frozenset[dg.AssetKey]
    tags: dict[str, str]
    partitions: int = 0
    roots: tuple[str, ...] = ()


def _range_tags(start: str, end: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


def plan_stages(
    defs: dg.Definitions, dates: list[date], roots: list[str], universe: Universe, include_training: bool,
    skipped: set[dg.AssetKey] = frozenset(),
) -> list[Stage]:
    """The runs of [dates] x roots in order (a Dagster run holds one partitions definition): reference
    tables, the date-only policy features, per block of neighbouring roots the raw market data then
    session bars -> features -> matrix, the training tables of ``roots``, the ops reports.

    ``skipped``: raw assets left out (nothing to load for the range)."""
    d0, d1 = dates[0].isoformat(), dates[-1].isoformat()
    graph = defs.resolve_asset_graph()
    keys_by_kind: dict[str, set[dg.AssetKey]] = {"none": set(), "date": set(), "multi": set()}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        pdef = node.partitions_def
        if node.is_external or not node.is_materializable:
            continue
        kind = "none" if pdef is None else "multi" if isinstance(pdef, dg.MultiPartitionsDefinition) else "date"
        keys_by_kind[kind].add(key)
    multi = keys_by_kind["multi"] - set(skipped)
    training = {k for k in keys_by_kind["none"] if k.path[0] == "training" and k.path[1].endswith("_daily")}
    reports = {k for k in keys_by_kind["none"] if k.path[0] == "ops"}
    stages = [
        Stage("reference tables", frozenset(keys_by_kind["none"] - training - reports), {}),
        Stage(f"policy features {d0}..{d1}", frozenset(keys_by_kind["date"]), _range_tags(d0, d1), len(dates)),
    ]
    # Raw market data goes in its own run: a run of raw assets only records a materialization just for
    # the partitions a source really loaded (a raw asset in a mixed run must yield its output, or Dagster
    # skips every step downstream of it), so a partition without a source never shows as materialized.
    raw = frozenset(k for k in multi if k.path[0] == "market_data")
    for block in universe.root_blocks(roots):
        tags, n = _range_tags(f"{d0}|{block[0]}", f"{d1}|{block[-1]}"), len(dates) * len(block)
        stages.append(Stage(f"market data {d0}..{d1} x {','.join(block)}", raw, tags, n, tuple(block)))
        stages.append(Stage(f"session bars -> features -> matrix {d0}..{d1} x {','.join(block)}",
                            frozenset(multi - raw), tags, n, tuple(block)))
    if include_training:
        stages.append(Stage("training tables", frozenset(training & {training_key(r) for r in roots}), {}))
    if reports:
        stages.append(Stage("load ledger and data quality report", frozenset(reports), {}))
    return stages


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

    Each stage is one ``execute_in_process`` of the implicit asset job's subset; the first failed stage
    stops the plan. ``extra_tags`` go on every run (the whole-graph job tags its child runs with its
    own run id)."""
    from chimera_assets.lib.checks.evaluation import summarise_evaluations

    universe = get_universe()
    try:
        roots = universe.require_roots(roots)
    except UniverseConfigError as exc:
        raise RunInputError(str(exc)) from exc
    if not roots:
        raise RunInputError("--roots is empty")
    dates = validate_range(start, end)
    skipped = _nothing_to_load(defs, dates, roots)
    for key, reason in skipped.items():
        progress(f"skipping {key.to_user_string()}: {reason}")
    stages = plan_stages(defs, dates, roots, universe, include_training, set(skipped))
    job = defs.resolve_implicit_global_asset_job_def()
    results: list[StageResult] = []
    gap_days: dict[str, tuple[int, list[str]]] = {}
    beyond: dict[str, tuple[date, date, int]] = {}
    for i, stage in enumerate(stages, 1):
        if not stage.selection:
            continue
        parts = f", {stage.partitions} partition(s)" if stage.partitions else ""
        progress(f"[{i}/{len(stages)}] {stage.name} ({len(stage.selection)} asset(s){parts})")
        t0 = time.perf_counter()
        res = job.get_subset(asset_selection=set(stage.selection)).execute_in_process(
            instance=instance, tags={**stage.tags, **(extra_tags or {})}, raise_on_error=False,
            run_config=run_config or QUIET,
        )
        passed, failed, warned = summarise_evaluations(res.get_asset_check_evaluations())
        _collect_gap_days(res, gap_days)
        err = None
        if not res.success:
            err = "; ".join(
                f"{ev.step_key}: {root_cause(ev.step_failure_data.error)}" for ev in res.get_step_failure_events()
            ) or "run failed"
        result = StageResult(stage.name, time.perf_counter() - t0, res.success, stage.partitions, passed, failed,
                             warned, err)
        results.append(result)
        progress(
            f"      {'ok' if res.success else 'FAILED'} in {result.seconds:.1f}s; checks passed {passed}, "
            f"failed {len(failed)}, warnings {len(warned)}"
        )
        if not res.success:
            progress(f"      error: {err}")
            break
        if stage.name.startswith("market data "):
            for root, span in dates_beyond_loaded_data(warehouse, dates, stage.roots).items():
                beyond[root] = span
                progress(f"      {root}: {span[0]}..{span[1]} ({span[2]} trade date(s)) are after its last loaded bar: "
                         "they stay empty (listed as missing) until their data is loaded")
    return RunSummary(results, table_row_counts(warehouse, roots), repr(warehouse), gap_days, beyond)


_GAP_KEYS = ("no_trades", "missing", "partial", "incomplete")


def _collect_gap_days(res: dg.ExecuteInProcessResult, out: dict[str, tuple[int, list[str]]]) -> None:
    """Add the session_bars partitions of ``res`` that have no publishable session (from the metadata
    the session gate writes on every materialization of the run) to ``out``."""
    # The gate copies the run's verdict onto every partition's materialization: one event says it all.
    for ev in res.get_asset_materialization_events():
        if ev.asset_key != SESSION_BARS_KEY:
            continue
        meta = ev.materialization.metadata
        for status in _GAP_KEYS:
            entry = meta.get(f"chimera/{status}")
            if entry is None:
                continue
            value = entry.value
            n, keys = out.get(status, (0, []))
            out[status] = (n + int(value["count"]), (keys + list(value["partitions"]))[:MAX_LISTED])
        return


def dates_beyond_loaded_data(warehouse: Warehouse, dates: list[date], roots: list[str]) -> dict[str, tuple[date, date, int]]:
    """Per root of ``roots``, the requested trade dates after its last loaded raw bar (first, last,
    count), read from the raw tables over the request only; roots whose data reaches the last date
    are left out."""
    from chimera_assets.schemas import OHLCV_1D, OHLCV_1H, OHLCV_1M
    from chimera_assets.warehouse.base import Slice

    last: dict[str, date] = {}
    slice_ = Slice(tuple((r, dates[0], dates[-1]) for r in roots))
    for spec in (OHLCV_1M, OHLCV_1H, OHLCV_1D):
        if not warehouse.table_exists(spec):
            continue
        rows = warehouse.read(spec, slice_, columns=[spec.date_column, "symbol"])
        for root, d in rows.group_by("symbol").agg(pl.col(spec.date_column).max()).rows():
            last[root] = max(last.get(root, d), d)
    out = {}
    for root in roots:
        after = [d for d in dates if root not in last or d > last[root]]
        if after:
            out[root] = (after[0], after[-1], len(after))
    return out


def _nothing_to_load(defs: dg.Definitions, dates: list[date], roots: list[str]) -> dict[dg.AssetKey, str]:
    """Raw assets with no landing file for the range: left out of the run instead of recording an
    empty materialization per partition."""

    source = (defs.resources or {}).get("databento")
    return raw_assets_with_nothing_to_load(source, dates, roots) if isinstance(source, DatabentoSource) else {}


def raw_assets_with_nothing_to_load(source: DatabentoSource, dates: list, roots: list[str]) -> dict[dg.AssetKey, str]:
    """Raw assets the landing directory holds no file for in ``dates`` x ``roots``, with the reason.

    A run that includes such an asset would record an empty materialization for each of its
    partitions (Dagster bookkeeping of ~2-6 ms each, for nothing) and show them as materialized.
    Landing mode only (the API mode fetches what it is asked). An asset is kept whenever a file of
    its schema exists for these dates, and every asset is kept while any landing file is unreadable,
    so a bad file always fails its run loudly.
    """
    if source.mode != "landing" or not dates or not roots:
        return {}
    universe = get_universe()
    paths = list_dbn_files(source.landing_path())
    out: dict[dg.AssetKey, str] = {}
    for schema, spec in SCHEMA_TABLES.items():
        sel = select_files(paths, schema, dates, roots, universe)
        if sel.unreadable:
            return {}
        if not (sel.files or sel.foreign):
            out[asset_key(spec)] = f"no {schema} file in {source.landing_path()} for these dates and roots"
    return out


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
    if summary.gap_days:
        total = sum(n for n, _ in summary.gap_days.values())
        lines.append(f"  days without a publishable session: {total} (0 rows each, see check no_missing_sessions)")
        for status, (n, keys) in summary.gap_days.items():
            more = f", ... ({n} in all)" if n > len(keys) else ""
            lines.append(f"    {status}: {', '.join(keys[:8])}{more}")
    for root, (first, last, n) in summary.beyond_data.items():
        lines.append(f"  beyond the loaded data: {root} {first}..{last} ({n} trade date(s), empty)")
    lines.append(f"  warehouse: {summary.warehouse}")
    lines.append(f"  result: {'SUCCESS' if summary.success else 'FAILED'}")
    return "\n".join(lines)

