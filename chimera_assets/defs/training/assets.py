"""``training.<root>_training_daily``: one unpartitioned table per root, rebuilt from the matrix.

Targets look ahead by design (up to 252 sessions), so each new session changes older rows' targets:
the table is rebuilt whole from the root's matrix history (thousands of rows, well under a second).

Each materialization records the training-set card (``training_set_card``, markdown: rows kept per
split x horizon, feature coverage, target distribution, roll crossings) and the blocking
``no_target_leakage`` check (its numbers as metadata). The write audit (``lib.checks.audits.audit_for``)
runs the hard rules and the leakage check on the staged rows: a leaked feature publishes nothing.
"""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl

from chimera_assets.features.versions import TRAINING_CODE_VERSION
from chimera_assets.lib import asset_keys as keys
from chimera_assets.lib.asset_common import WRITER_POOL
from chimera_assets.lib.checks.audits import audit_for
from chimera_assets.lib.checks.evaluation import dagster_metadata
from chimera_assets.lib.io_manager import WarehouseResource, job_metadata, written_metadata
from chimera_assets.lib.partitions import FIRST_TRADE_DATE
from chimera_assets.schemas import (
    DAILY_ML_MATRIX,
    OHLCV_1H,
    OHLCV_1M,
    SESSION_BARS,
    TableSpec,
    training_table,
)
from chimera_assets.settings import get_settings, roll_adjustment
from chimera_assets.training.card import kept_rows, training_card
from chimera_assets.training.leakage import CHECK_NAME, DESCRIPTION, LeakageReport, leakage_report
from chimera_assets.training.targets import build_training_table, switch_prices_from_bars, switches_of
from chimera_assets.universe import get_universe
from chimera_assets.warehouse.base import Slice

MATRIX_KEY = keys.DAILY_ML_MATRIX
SESSION_BARS_KEY = keys.SESSION_BARS
# Raw bars of both contracts around each roll price the roll adjustment (read only on the switch days).
RAW_KEYS = (keys.RAW_1M, keys.RAW_1H)


def _symbol_slice(root: str) -> Slice:
    """Every trade date a partition can have (first partition .. tomorrow): a bounded date filter, so
    BigQuery prunes partitions instead of scanning an open range."""
    return Slice(((root, date.fromisoformat(FIRST_TRADE_DATE), date.today() + timedelta(days=1)),))


class TrainingTablesFailed(RuntimeError):
    """One or more roots' training tables could not be rebuilt (the others were written)."""


class RootNotPublished(RuntimeError):
    """A root's rebuilt rows were not published; ``report`` is their leakage report."""

    def __init__(self, message: str, report: LeakageReport):
        super().__init__(message)
        self.report = report


def _replace_outdated_table(wh, spec: TableSpec, audit) -> None:
    """Drop a stored table that predates a column of ``spec`` (e.g. the per-horizon ``purged_<h>``), so
    the merge recreates it. The table is rebuilt whole from the matrix every time, so nothing is lost;
    the caller runs the audit on the new rows first, so a rejected rebuild leaves the old table."""
    if not wh.table_exists(spec):
        return
    nothing = Slice(((None, date(1800, 1, 1), date(1800, 1, 1)),))  # selects no row: only the columns bind
    wh.read(spec, nothing, columns=["data_date"])  # the table is readable: a failure below is a missing column
    try:
        wh.read(spec, nothing, columns=spec.column_names)
    except Exception:  # noqa: BLE001 - the backends raise different errors for an unknown column
        audit()
        wh.drop_table(spec)


def _switch_prices(wh, root: str, matrix: pl.DataFrame, bars: pl.DataFrame) -> pl.DataFrame | None:
    """Price pairs of the old and new contract at each of ``root``'s instrument switches, from the raw
    1-minute bars where they price a switch, else the 1-hour bars (only the two sessions around each
    switch are read, so BigQuery prunes to those partitions). Switches neither prices fall back to the
    sessions' own prices inside ``build_training_table``."""
    switches = switches_of(matrix, bars, root)
    if switches.is_empty():
        return None
    days = Slice(tuple((root, d0, d1) for d0, d1 in switches.select("prev_date", "data_date").rows()))
    found = []
    for spec, source in ((OHLCV_1M, "1m"), (OHLCV_1H, "1h")):
        if not wh.table_exists(spec):
            continue
        raw = wh.read(spec, days, columns=["ts_event", "trade_date", "instrument_id", "open", "close", "is_spread"])
        if raw.height:
            found.append(switch_prices_from_bars(switches, raw, source))
    if not found:
        return None
    merged = pl.concat(found)  # 1m first: the finer bars win where both price a switch
    return merged.unique("data_date", keep="first", maintain_order=True)


def _rebuild(wh, root: str) -> tuple[dict, LeakageReport]:
    """Rebuild ``training.<root>_training_daily`` whole from the root's matrix and session bars.
    Returns the materialization metadata and the leakage report of the rows; raises
    ``RootNotPublished`` (carrying the report) when they could not be published."""
    spec = training_table(root)
    matrix = wh.read(DAILY_ML_MATRIX, _symbol_slice(root))
    bars = wh.read(SESSION_BARS, _symbol_slice(root))
    prices = _switch_prices(wh, root, matrix, bars)
    mode = roll_adjustment()
    frame = build_training_table(matrix, root, bars, datetime.now(UTC), switch_prices=prices, adjustment=mode)
    report = leakage_report(frame)
    audit = audit_for(spec)
    try:
        _replace_outdated_table(wh, spec, lambda: audit(frame) if audit else None)
        result = wh.merge(spec, frame, Slice.whole_table(), audit=audit)
    except Exception as exc:
        raise RootNotPublished(str(exc), report) from exc
    kept = kept_rows(frame)
    metadata = {
        "dagster/row_count": result.rows_written,
        **written_metadata(spec, wh),
        **job_metadata(result),  # BigQuery: job ids, bytes billed, slot ms
        "splits": dg.MetadataValue.json(
            {k: int(v) for k, v in frame.group_by("split").len().rows()} if frame.height else {}
        ),
        "kept_rows": dg.MetadataValue.json(
            {f"{s}/{h}": k for s, h, k in kept.select("split", "horizon", "kept").rows()}
        ),
        "training_set_card": dg.MetadataValue.md(
            training_card(frame, spec.fqn, policy_time=get_settings().policy_time, roll_adjustment=mode)),
        # How the targets bridge rolls: the method and, per source, how many switches it priced (the
        # rest fell back to the sessions' own close/open; docs/matrix.md section 3).
        "roll_adjustment": dg.MetadataValue.text(mode),
        "roll_prices": dg.MetadataValue.json(
            dict(prices["price_source"].value_counts().rows()) if prices is not None else {}),
    }
    return metadata, report


def leakage_check_result(key: dg.AssetKey, report: LeakageReport, published: bool) -> dg.AssetCheckResult:
    meta = dict(report.metadata())
    meta["published"] = published
    per_split = dagster_metadata(meta)
    rows = ["| split | worst feature | target | rho | threshold | pairs |", "|---|---|---|---|---|---|"]
    for s, e in meta["per_split"].items():
        rows.append(f"| {s} | {e.get('worst_feature', e.get('note', ''))} | {e.get('target', '')} | "
                    f"{e.get('rho', '')} | {e.get('threshold', '')} | {e['pairs_max']} |")
    per_split["per_split_table"] = dg.MetadataValue.md("\n".join(rows))
    return dg.AssetCheckResult(
        asset_key=key, check_name=CHECK_NAME, passed=report.passed, severity=dg.AssetCheckSeverity.ERROR,
        metadata=per_split, description=report.summary(),
    )


def training_assets() -> list[dg.AssetsDefinition]:
    """One subsettable multi-asset for every root's training table.

    One step instead of one per root: Dagster resolves the provenance of the two partitioned upstream
    assets (every partition key of the matrix and the session bars, ~30,000 keys, 0.2-0.35 s each
    time) once per step, so seven single assets paid it fourteen times per run.
    """
    roots = {keys.training_key(r): r for r in get_universe().root_names}
    specs = [
        dg.AssetSpec(
            key, deps=[MATRIX_KEY, SESSION_BARS_KEY, *RAW_KEYS], group_name="training", kinds={"polars"},
            skippable=True, code_version=TRAINING_CODE_VERSION,
            description=f"{root} training rows: matrix columns flattened, roll-adjusted forward targets "
                        "(raw kept), roll flags, split/purge, weight. Hindsight columns are flagged in the "
                        "column schema; see docs/matrix.md.",
        )
        for key, root in roots.items()
    ]
    check_specs = [dg.AssetCheckSpec(CHECK_NAME, asset=key, blocking=True, description=DESCRIPTION) for key in roots]

    @dg.multi_asset(name="training_tables", specs=specs, check_specs=check_specs, can_subset=True, pool=WRITER_POOL)
    def training_tables(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        wh = warehouse.get()
        failed: list[str] = []
        checked = {k.asset_key for k in context.selected_asset_check_keys if k.name == CHECK_NAME}
        for key in sorted(context.selected_asset_keys, key=lambda k: roots[k]):
            root = roots[key]
            try:
                metadata, report = _rebuild(wh, root)
            except Exception as exc:  # one root's bad rows must not keep the other roots' tables stale
                context.log.error(f"training table of {root} not rebuilt: {exc}")
                failed.append(f"{root}: {exc}")
                report = getattr(exc, "report", None)
                if report is not None and key in checked:
                    yield leakage_check_result(key, report, published=False)
                continue
            checks = [leakage_check_result(key, report, published=True)] if key in checked else []
            yield dg.MaterializeResult(asset_key=key, metadata=metadata, check_results=checks)
        # A check run on its own (UI: "Execute check") judges the published rows.
        for key in sorted(checked - set(context.selected_asset_keys), key=lambda k: roots[k]):
            stored = wh.read(training_table(roots[key]))
            yield leakage_check_result(key, leakage_report(stored), published=True)
        if failed:
            raise TrainingTablesFailed("training tables not rebuilt (the other roots' were): " + "; ".join(failed))

    return [training_tables]
