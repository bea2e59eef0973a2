"""``training.<root>_training_daily``: one unpartitioned table per root, rebuilt from the matrix.

Targets look ahead by design (up to 252 sessions), so each new session changes older rows' targets:
the table is rebuilt whole from the root's matrix history (thousands of rows, well under a second).
"""

from datetime import UTC, datetime

import dagster as dg

from chimera_assets.assets.common import WAREHOUSE_IO, WRITER_POOL
from chimera_assets.checks import audit_for
from chimera_assets.io_manager import WarehouseResource, column_schema
from chimera_assets.matrix import build_training_table
from chimera_assets.schemas import DAILY_ML_MATRIX, SESSION_BARS, training_table
from chimera_assets.universe import get_universe
from chimera_assets.warehouse.base import Slice

MATRIX_KEY = dg.AssetKey(["features", "daily_ml_matrix"])


def _symbol_slice(root: str) -> Slice:
    from datetime import date

    return Slice(((root, date(1900, 1, 1), date(2999, 12, 31)),))


def training_asset(root: str) -> dg.AssetsDefinition:
    spec = training_table(root)

    @dg.asset(
        key=dg.AssetKey([spec.schema, spec.name]),
        deps=[MATRIX_KEY, dg.AssetKey(["features", "session_bars"])],
        io_manager_key=WAREHOUSE_IO,
        group_name="training",
        pool=WRITER_POOL,
        kinds={"polars"},
        description=f"{root} training rows: matrix columns flattened, forward targets, split/purge, weight.",
    )
    def _training(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        wh = warehouse.get()
        matrix = wh.read(DAILY_ML_MATRIX, _symbol_slice(root))
        bars = wh.read(SESSION_BARS, _symbol_slice(root))
        frame = build_training_table(matrix, root, bars, datetime.now(UTC))
        result = wh.merge(spec, frame, Slice.whole_table(), audit=audit_for(spec))
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": result.rows_written,
                "dagster/table_name": f"{wh.kind}:{spec.fqn}",
                "dagster/column_schema": column_schema(spec),
                "splits": dg.MetadataValue.json(
                    {k: int(v) for k, v in frame.group_by("split").len().rows()} if frame.height else {}
                ),
            }
        )

    return _training


def training_assets() -> list[dg.AssetsDefinition]:
    return [training_asset(root) for root in get_universe().root_names]
