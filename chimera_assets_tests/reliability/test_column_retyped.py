"""Issue 29 item 11: a column type changed by hand in the warehouse is reported. The materialization
records the stored table's types (``Warehouse.stored_column_types``), so ``column_schema_change``
(WARN) names the retyped column on the next run; without the change it passes."""

from __future__ import annotations

from datetime import date

import dagster as dg

from chimera_assets.demo.data import write_demo_files
from chimera_assets.lib.checks.schema_change import CHECK_NAME
from chimera_assets.schemas import SESSION_BARS
from chimera_assets.settings import get_settings
from chimera_assets.warehouse import get_warehouse
from chimera_assets_tests.dagster_helpers import run_range

CHAIN = ["market_data.databento_futures_ohlcv_1h", "features.session_bars"]
KEY = dg.AssetKey(["features", "session_bars"])


def _schema_check(res: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (ev,) = [e for e in res.get_asset_check_evaluations() if e.asset_key == KEY and e.check_name == CHECK_NAME]
    return ev


def test_a_column_retyped_by_hand_is_named_by_the_schema_change_check(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    write_demo_files(landing, ["ZL"], date(2024, 3, 1), date(2024, 3, 16))
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(landing))
    instance = dg.DagsterInstance.ephemeral()
    run_range(CHAIN, "2024-03-04", "2024-03-08", "ZL", instance=instance)
    wh = get_warehouse(get_settings())
    assert wh.stored_column_types(SESSION_BARS)["volume"] == "INT64"
    # The same run again: nothing changed, the check passes.
    assert _schema_check(run_range(CHAIN, "2024-03-04", "2024-03-08", "ZL", instance=instance)).passed
    con = wh.connect()
    try:
        con.execute("ALTER TABLE features.session_bars ALTER volume TYPE DOUBLE")
    finally:
        con.close()
    assert wh.stored_column_types(SESSION_BARS)["volume"] == "DOUBLE"
    ev = _schema_check(run_range(CHAIN, "2024-03-04", "2024-03-08", "ZL", instance=instance))
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.WARN
    assert ev.metadata["retyped_columns"].value == {"volume": "INT64 -> DOUBLE"}
