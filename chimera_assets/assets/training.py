"""``training.<root>_training_daily``: one unpartitioned table per root, rebuilt from the matrix.

Targets look ahead by design (up to 252 sessions), so each new session changes older rows' targets:
the table is rebuilt whole from the root's matrix history (thousands of rows, well under a second).
"""

from datetime import UTC, datetime

import dagster as dg

from chimera_assets.assets.common import WRITER_POOL
from chimera_assets.checks import audit_for
from chimera_assets.io_manager import WarehouseResource, written_metadata
from chimera_assets.matrix import build_training_table
from chimera_assets.schemas import DAILY_ML_MATRIX, SESSION_BARS, training_table
from chimera_assets.universe import get_universe
from chimera_assets.warehouse.base import Slice

MATRIX_KEY = dg.AssetKey(["features", "daily_ml_matrix"])
SESSION_BARS_KEY = dg.AssetKey(["features", "session_bars"])


def _symbol_slice(root: str) -> Slice:
    from datetime import date

    return Slice(((root, date(1900, 1, 1), date(2999, 12, 31)),))


class TrainingTablesFailed(RuntimeError):
    """One or more roots' training tables could not be rebuilt (the others were written)."""


def _rebuild(wh, root: str) -> dict:
    """Rebuild ``training.<root>_training_daily`` whole from the root's matrix and session bars."""
    spec = training_table(root)
    matrix = wh.read(DAILY_ML_MATRIX, _symbol_slice(root))
    bars = wh.read(SESSION_BARS, _symbol_slice(root))
    frame = build_training_table(matrix, root, bars, datetime.now(UTC))
    result = wh.merge(spec, frame, Slice.whole_table(), audit=audit_for(spec))
    return {
        "dagster/row_count": result.rows_written,
        **written_metadata(spec, wh),
        "splits": dg.MetadataValue.json(
            {k: int(v) for k, v in frame.group_by("split").len().rows()} if frame.height else {}
        ),
    }


def training_assets() -> list[dg.AssetsDefinition]:
    """One subsettable multi-asset for every root's training table.

    One step instead of one per root: Dagster resolves the provenance of the two partitioned upstream
    assets (every partition key of the matrix and the session bars, ~30,000 keys, 0.2-0.35 s each
    time) once per step, so seven single assets paid it fourteen times per run.
    """
    roots = {dg.AssetKey([training_table(r).schema, training_table(r).name]): r for r in get_universe().root_names}
    specs = [
        dg.AssetSpec(
            key, deps=[MATRIX_KEY, SESSION_BARS_KEY], group_name="training", kinds={"polars"}, skippable=True,
            description=f"{root} training rows: matrix columns flattened, forward targets, split/purge, weight.",
        )
        for key, root in roots.items()
    ]

    @dg.multi_asset(name="training_tables", specs=specs, can_subset=True, pool=WRITER_POOL)
    def training_tables(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        wh = warehouse.get()
        failed: list[str] = []
        for key in sorted(context.selected_asset_keys, key=lambda k: roots[k]):
            root = roots[key]
            try:
                metadata = _rebuild(wh, root)
            except Exception as exc:  # one root's bad rows must not keep the other roots' tables stale
                context.log.error(f"training table of {root} not rebuilt: {exc}")
                failed.append(f"{root}: {exc}")
                continue
            yield dg.MaterializeResult(asset_key=key, metadata=metadata)
        if failed:
            raise TrainingTablesFailed("training tables not rebuilt (the other roots' were): " + "; ".join(failed))

    return [training_tables]
