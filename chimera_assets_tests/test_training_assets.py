"""The training tables are one subsettable multi-asset: one failing root does not keep the others stale."""

import dagster as dg

from chimera_assets.assets import training
from chimera_assets.io_manager import WarehouseResource
from chimera_assets.runner import root_cause
from chimera_assets.schemas import training_table
from chimera_assets.warehouse import get_warehouse


def _key(root: str) -> dg.AssetKey:
    return dg.AssetKey(["training", training_table(root).name])


def test_subset_materializes_only_the_selected_roots():
    (asset,) = training.training_assets()
    res = dg.materialize([asset], selection=[_key("ZL"), _key("MES")], resources={"warehouse": WarehouseResource()})
    assert res.success
    assert {e.materialization.asset_key for e in res.get_asset_materialization_events()} == {_key("ZL"), _key("MES")}
    wh = get_warehouse()
    assert wh.table_exists(training_table("ZL")) and not wh.table_exists(training_table("ES"))


def test_one_failing_root_fails_the_step_naming_it_and_the_others_are_written(monkeypatch):
    real = training._rebuild

    def rebuild(wh, root):
        if root == "ES":
            raise ValueError("injected: ES matrix rows rejected")
        return real(wh, root)

    monkeypatch.setattr(training, "_rebuild", rebuild)
    (asset,) = training.training_assets()
    res = dg.materialize([asset], selection=[_key(r) for r in ("ZL", "ES", "MES")],
                         resources={"warehouse": WarehouseResource()}, raise_on_error=False)
    assert not res.success
    written = {e.materialization.asset_key for e in res.get_asset_materialization_events()}
    assert written == {_key("ZL"), _key("MES")}
    failure = next(e for e in res.all_events if e.is_step_failure)
    assert "ES: injected" in root_cause(failure.step_failure_data.error)
    assert not get_warehouse().table_exists(training_table("ES"))
