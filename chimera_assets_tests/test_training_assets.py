"""The training tables are one subsettable multi-asset: one failing root does not keep the others stale."""

import dagster as dg
import polars as pl
import pytest

from chimera_assets.defs.training import assets as training
from chimera_assets.lib.io_manager import WarehouseResource
from chimera_assets.lib.runner import root_cause
from chimera_assets.schemas import training_table
from chimera_assets.warehouse import get_warehouse
from chimera_assets_tests.training_frames import sessions_per_split


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


# --- the training-set card and the blocking leakage check, in Dagster ----------------------------------------
def _store_multi_year_matrix():
    from chimera_assets.schemas import DAILY_ML_MATRIX, SESSION_BARS
    from chimera_assets.warehouse import Slice
    from chimera_assets_tests.training_frames import multi_year_parts

    matrix, bars = multi_year_parts()
    wh = get_warehouse()
    wh.merge(DAILY_ML_MATRIX, matrix, Slice.whole_table())
    wh.merge(SESSION_BARS, bars, Slice.whole_table())
    return wh


def _check_evaluations(res, name="no_target_leakage"):
    return [e for e in res.get_asset_check_evaluations() if e.check_name == name]


def test_materialization_records_the_card_and_a_passing_leakage_check():
    wh = _store_multi_year_matrix()
    (asset,) = training.training_assets()
    res = dg.materialize([asset], selection=[_key("ZL")], resources={"warehouse": WarehouseResource()})
    assert res.success
    (mat,) = res.get_asset_materialization_events()
    md = mat.materialization.metadata
    card = md["training_set_card"]
    assert isinstance(card, dg.MarkdownMetadataValue)
    n = sessions_per_split()
    # 1d: val's last row looks into test (purged; kept = labelled = n - 1); test's last row has no next
    # session (kept, not labelled).
    v, t = n["val"], n["test"]
    assert f"| val | {v} | {v - 1} / {v - 1} ({100 * (v - 1) / v:.1f}%)" in card.value, card.value
    assert f"| test | {t} | {t} / {t - 1} (100.0%)" in card.value, card.value
    assert md["kept_rows"].value["val/1d"] == v - 1
    (ev,) = _check_evaluations(res)
    assert ev.passed and ev.asset_key == _key("ZL")
    meta = ev.metadata
    assert meta["thresholds"].value == {"target_1d": 0.4, "target_1w": 0.6} and meta["published"].value is True
    per_split = meta["per_split"].value
    assert set(per_split) == {"train", "val", "test"}
    assert all(abs(e["rho"]) <= e["threshold"] for e in per_split.values())
    assert "| val |" in meta["per_split_table"].value
    assert wh.read(training_table("ZL")).height == sum(n.values())


def test_a_leaked_feature_fails_the_check_and_publishes_nothing(monkeypatch):
    from chimera_assets_tests.frames import frame_hash
    from chimera_assets_tests.training_frames import inject_next_close_leak

    wh = _store_multi_year_matrix()
    (asset,) = training.training_assets()
    spec = training_table("ZL")
    assert dg.materialize([asset], selection=[_key("ZL")], resources={"warehouse": WarehouseResource()}).success
    before = frame_hash(wh.read(spec))
    real = training.build_training_table
    monkeypatch.setattr(training, "build_training_table",
                        lambda *a, **k: inject_next_close_leak(real(*a, **k)))
    res = dg.materialize([asset], selection=[_key("ZL")], resources={"warehouse": WarehouseResource()},
                         raise_on_error=False)
    assert not res.success and not res.get_asset_materialization_events()
    failure = next(e for e in res.all_events if e.is_step_failure)
    assert "target leakage" in root_cause(failure.step_failure_data.error)
    (ev,) = _check_evaluations(res)
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR
    assert ev.metadata["worst_feature"].value == "distance_to_P" and ev.metadata["published"].value is False
    assert abs(ev.metadata["worst_rho"].value) > 0.4
    assert frame_hash(wh.read(spec)) == before  # the table is unchanged


def _store_old_schema_table(wh):
    """The ZL training table as stored before the per-horizon purge columns existed."""
    import dataclasses

    from chimera_assets.warehouse import Slice
    from chimera_assets_tests.training_frames import multi_year_training

    spec = training_table("ZL")
    old = dataclasses.replace(spec, columns=tuple(c for c in spec.columns if not c.name.startswith("purged_")))
    wh.merge(old, multi_year_training().select(old.column_names), Slice.whole_table())
    with pytest.raises(Exception, match="purged_1d"):
        wh.read(spec)
    return old


def test_a_table_from_before_the_purge_columns_is_replaced_by_the_rebuild():
    wh = _store_multi_year_matrix()
    _store_old_schema_table(wh)
    (asset,) = training.training_assets()
    assert dg.materialize([asset], selection=[_key("ZL")], resources={"warehouse": WarehouseResource()}).success
    back = wh.read(training_table("ZL"))
    # 1d purges exactly the last session before each of the two split boundaries.
    assert back.height == sum(sessions_per_split().values()) and back["purged_1d"].sum() == 2
    last_of = back.group_by(pl.col("data_date").dt.year()).agg(pl.col("data_date").max().alias("last"))
    last = sorted(dict(last_of.rows())[y] for y in (2022, 2023))
    assert sorted(back.filter("purged_1d")["data_date"].to_list()) == last


def test_an_old_table_stays_when_the_rebuilt_rows_fail_the_audit(monkeypatch):
    from chimera_assets_tests.training_frames import inject_next_close_leak

    wh = _store_multi_year_matrix()
    old = _store_old_schema_table(wh)
    real = training.build_training_table
    monkeypatch.setattr(training, "build_training_table", lambda *a, **k: inject_next_close_leak(real(*a, **k)))
    (asset,) = training.training_assets()
    res = dg.materialize([asset], selection=[_key("ZL")], resources={"warehouse": WarehouseResource()},
                         raise_on_error=False)
    assert not res.success
    # Not dropped: the audit ran before the old table was replaced.
    assert wh.read(old).height == sum(sessions_per_split().values())


def test_the_leakage_check_alone_judges_the_published_rows():
    from chimera_assets.warehouse import Slice
    from chimera_assets_tests.training_frames import inject_next_close_leak, multi_year_training

    # Rows published without the audit (e.g. by an older version): the check run on its own flags them.
    get_warehouse().merge(training_table("ZL"), inject_next_close_leak(multi_year_training()), Slice.whole_table())
    (asset,) = training.training_assets()
    check = dg.AssetCheckKey(_key("ZL"), "no_target_leakage")
    res = dg.materialize([asset], selection=dg.AssetSelection.checks(check),
                         resources={"warehouse": WarehouseResource()}, raise_on_error=False)
    assert not res.get_asset_materialization_events()
    (ev,) = _check_evaluations(res)
    assert not ev.passed and ev.metadata["worst_feature"].value == "distance_to_P"


# --- roll adjustment in the asset: raw bars price the switches, the setting picks the method -----------------
def _store_raw_bars_at_the_first_switch(wh):
    """1h bars of the two contracts around the synthetic ZL's first switch: the old one last trades at
    50.0 at the end of session s-1, the new one opens session s at 55.0 (a 10% gap)."""
    from datetime import UTC, datetime

    from chimera_assets.schemas import OHLCV_1H, SESSION_BARS
    from chimera_assets.warehouse import Slice
    from chimera_assets_tests.frames import rows_for

    bars = wh.read(SESSION_BARS).filter(pl.col("symbol") == "ZL").sort("trade_date")
    i = bars.with_row_index("i").filter(pl.col("roll_flag") | (pl.col("instrument_id") != pl.col("instrument_id").shift(1)))
    i = i.filter(pl.col("i") > 0)["i"][0]
    prev, cur = bars.row(i - 1, named=True), bars.row(i, named=True)
    rows = [
        {"ts_event": datetime(prev["trade_date"].year, prev["trade_date"].month, prev["trade_date"].day, 18, tzinfo=UTC),
         "trade_date": prev["trade_date"], "symbol": "ZL", "instrument_id": prev["instrument_id"],
         "open": 50.0, "high": 50.0, "low": 50.0, "close": 50.0, "volume": 1, "is_spread": False},
        {"ts_event": datetime(cur["trade_date"].year, cur["trade_date"].month, cur["trade_date"].day, 1, tzinfo=UTC),
         "trade_date": cur["trade_date"], "symbol": "ZL", "instrument_id": cur["instrument_id"],
         "open": 55.0, "high": 55.0, "low": 55.0, "close": 55.0, "volume": 1, "is_spread": False},
    ]
    wh.merge(OHLCV_1H, rows_for(OHLCV_1H, rows), Slice.from_keys([(prev["trade_date"], "ZL"), (cur["trade_date"], "ZL")]))
    return prev["trade_date"]


@pytest.mark.parametrize("mode", ["ratio", "none"])
def test_the_asset_prices_switches_from_raw_bars_and_follows_the_roll_adjustment_setting(monkeypatch, mode):
    wh = _store_multi_year_matrix()
    roll_row = _store_raw_bars_at_the_first_switch(wh)
    monkeypatch.setenv("CHIMERA_ROLL_ADJUSTMENT", mode)
    (asset,) = training.training_assets()
    res = dg.materialize([asset], selection=[_key("ZL")], resources={"warehouse": WarehouseResource()})
    (mat,) = res.get_asset_materialization_events()
    md = mat.materialization.metadata
    assert md["roll_adjustment"].value == mode and md["roll_prices"].value == {"1h adjacent": 1}
    row = wh.read(training_table("ZL")).filter(pl.col("data_date") == roll_row).row(0, named=True)
    assert row["target_crosses_roll_1d"] is True
    if mode == "ratio":  # the 1h pair (50.0 -> 55.0) prices the switch: ratio 1.1
        assert (1 + row["target_1d_raw"]) / (1 + row["target_1d"]) == pytest.approx(1.1)
    else:
        assert row["target_1d"] == row["target_1d_raw"]


def test_a_bad_roll_adjustment_setting_names_the_variable(monkeypatch):
    from chimera_assets.settings import SettingsError, roll_adjustment

    assert roll_adjustment({}) == "ratio" and roll_adjustment({"CHIMERA_ROLL_ADJUSTMENT": " Difference "}) == "difference"
    with pytest.raises(SettingsError, match="CHIMERA_ROLL_ADJUSTMENT='log'"):
        roll_adjustment({"CHIMERA_ROLL_ADJUSTMENT": "log"})
