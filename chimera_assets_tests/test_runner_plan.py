"""``runner.plan_stages``: the order of the Dagster runs of ``chimera run`` (no run is executed here)."""

import warnings
from datetime import date

import dagster as dg
import pytest

from chimera_assets.lib.runner import plan_stages
from chimera_assets.universe import get_universe

RAW_1H = dg.AssetKey(["market_data", "databento_futures_ohlcv_1h"])


@pytest.fixture(scope="module")
def defs():
    from chimera_assets.definitions import build_definitions

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_definitions()


def test_roots_group_into_blocks_of_neighbours_in_universe_order():
    universe = get_universe()
    order = universe.root_names
    picked = [order[3], order[0], order[1]]  # two neighbours and one apart, given out of order
    assert universe.root_blocks(picked) == [[order[0], order[1]], [order[3]]]


def test_stages_run_reference_policy_then_raw_and_chain_per_block_then_training_and_reports(defs):
    universe = get_universe()
    order = universe.root_names
    roots = [order[0], order[1], order[3]]
    dates = [date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6)]
    stages = plan_stages(defs, dates, roots, universe, include_training=True, skipped={RAW_1H})
    names = [s.name for s in stages]
    b1, b2 = f"{order[0]},{order[1]}", order[3]
    assert names == [
        "reference tables",
        "policy features 2024-03-04..2024-03-06",
        f"market data 2024-03-04..2024-03-06 x {b1}",
        f"session bars -> features -> matrix 2024-03-04..2024-03-06 x {b1}",
        f"market data 2024-03-04..2024-03-06 x {b2}",
        f"session bars -> features -> matrix 2024-03-04..2024-03-06 x {b2}",
        "training tables",
        "load ledger and data quality report",
    ]
    by_name = {s.name: s for s in stages}
    raw = by_name[f"market data 2024-03-04..2024-03-06 x {b1}"]
    assert raw.selection and all(k.path[0] == "market_data" for k in raw.selection)
    assert RAW_1H not in raw.selection  # nothing to load: left out
    assert raw.partitions == 6
    assert raw.tags == {"dagster/asset_partition_range_start": f"2024-03-04|{order[0]}",
                        "dagster/asset_partition_range_end": f"2024-03-06|{order[1]}"}
    chain = by_name[f"session bars -> features -> matrix 2024-03-04..2024-03-06 x {b1}"]
    assert dg.AssetKey(["features", "daily_ml_matrix"]) in chain.selection
    assert not {k for k in chain.selection if k.path[0] == "market_data"}
    training = by_name["training tables"].selection
    assert training == {dg.AssetKey(["training", f"{r.lower()}_training_daily"]) for r in roots}
    assert by_name["policy features 2024-03-04..2024-03-06"].selection == {dg.AssetKey(["features", "policy_features"])}
    # every materializable asset is in exactly one kind of stage (raw assets in every block)
    graph = defs.resolve_asset_graph()
    covered = set().union(*(s.selection for s in stages))
    materializable = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    all_training = {k for k in materializable if k.path[0] == "training" and k.path[1].endswith("_daily")}
    assert covered == materializable - {RAW_1H} - (all_training - training)


def test_no_training_stage_without_training(defs):
    universe = get_universe()
    stages = plan_stages(defs, [date(2024, 3, 4)], [universe.root_names[0]], universe, include_training=False)
    assert "training tables" not in [s.name for s in stages]
