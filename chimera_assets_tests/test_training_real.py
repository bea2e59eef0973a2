"""The training tables of the real batch (ZL and MES, 2024-01..2025-12): the card the materialization
records, the 1d kept share, the leakage check (passes; an injected next-close feature is blocked) and
the export round trip.

The real batch holds 2024-2025 only, so every row is in the test split and val (2023) is empty here;
the >= 95 % rule for all three splits is also tested on a synthetic 2021-2025 frame through the same
function (test_training_set.py::test_1d_horizon_keeps_at_least_95_percent_of_each_split_on_a_multi_year_frame).
"""

from __future__ import annotations

from datetime import date

import dagster as dg
import polars as pl
import pytest

from chimera_assets.cli import main as cli_main
from chimera_assets.definitions import build_definitions
from chimera_assets.lib.checks.audits import audit_for
from chimera_assets.lib.runner import run_graph
from chimera_assets.schemas import OHLCV_1H, training_table
from chimera_assets.training.card import kept_rows
from chimera_assets.training.leakage import THRESHOLDS, leakage_report
from chimera_assets.warehouse import AuditFailed, Slice, get_warehouse
from chimera_assets_tests.conftest import shared_data
from chimera_assets_tests.frames import frame_hash
from chimera_assets_tests.test_training_set import _expected
from chimera_assets_tests.training_frames import inject_next_close_leak

ROOTS = ["ZL", "MES"]
# The default universe: the roll-adjustment acceptance runs on every root of it.
ALL_ROOTS = ["ZL", "MES", "ES", "ZS", "ZM", "ZC", "CL"]


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    batch, policy = shared_data("databento-batch"), shared_data("policy-events")
    home = tmp_path_factory.mktemp("training_real")
    mp = pytest.MonkeyPatch()
    mp.setenv("CHIMERA_HOME", str(home))
    mp.setenv("CHIMERA_LANDING_DIR", str(batch))
    mp.setenv("CHIMERA_POLICY_DIR", str(policy))
    instance = dg.DagsterInstance.ephemeral()
    try:
        wh = get_warehouse()
        lines: list[str] = []
        summary = run_graph(build_definitions(), date(2024, 1, 1), date(2025, 12, 15), ALL_ROOTS, instance, wh,
                            progress=lines.append)
        assert summary.success, "\n".join(lines)
    finally:
        mp.undo()
    return wh, instance, home


def test_real_card_shows_kept_val_and_test_rows_per_horizon_and_1d_keeps_95_percent(real):
    wh, instance, _ = real
    for root in ROOTS:
        spec = training_table(root)
        (rec,) = instance.fetch_materializations(dg.AssetKey(["training", spec.name]), limit=1).records
        card = rec.asset_materialization.metadata["training_set_card"].value
        frame = wh.read(spec)
        n = frame.height
        assert n > 450
        lines = card.splitlines()
        assert "| split | rows | 1d | 1w | 1m | 3m | 6m | 12m |" in lines
        assert "| val | 0 | 0 | 0 | 0 | 0 | 0 | 0 |" in lines  # the batch has no 2023 session
        test_line = next(x for x in lines if x.startswith("| test |"))
        # 2024-2025 is one split: no window crosses a boundary, every row is kept for every horizon.
        assert test_line.startswith(f"| test | {n} | {n} / {n - 1} (100.0%) | {n} / {n - 5} (100.0%) |")
        one_day = kept_rows(frame).filter(pl.col("horizon") == "1d", pl.col("rows") > 0)
        assert one_day["split"].to_list() == ["test"]
        assert (one_day["kept_fraction"] >= 0.95).all()
        assert rec.asset_materialization.metadata["kept_rows"].value["test/1d"] == n


def test_leakage_check_passes_on_real_data_and_blocks_an_injected_next_close_feature(real):
    wh, instance, _ = real
    for root in ROOTS:
        spec = training_table(root)
        key = dg.AssetKey(["training", spec.name])
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(key, "no_target_leakage")])[dg.AssetCheckKey(key, "no_target_leakage")]
        evaluation = record.event.dagster_event.event_specific_data
        assert evaluation.passed and evaluation.metadata["published"].value is True
        frame = wh.read(spec)
        honest = leakage_report(frame)
        assert honest.passed
        worst = honest.metadata()
        # The calibration figures of docs/matrix.md: real features stay well below the thresholds.
        assert abs(worst["worst_rho"]) < THRESHOLDS[worst["worst_target"]] - 0.05, worst

        leaked = leakage_report(inject_next_close_leak(frame))
        assert not leaked.passed
        hit = leaked.offenders.row(0, named=True)
        assert (hit["feature"], hit["target"], hit["split"]) == ("distance_to_P", "target_1d", "test")
        assert abs(hit["rho"]) > 0.5

        before = frame_hash(wh.read(spec))
        with pytest.raises(AuditFailed, match="target leakage"):
            wh.merge(spec, inject_next_close_leak(frame), Slice.whole_table(), audit=audit_for(spec))
        assert frame_hash(wh.read(spec)) == before


def test_real_export_round_trips(real, tmp_path, monkeypatch, capsys):
    wh, _, home = real
    monkeypatch.setenv("CHIMERA_HOME", str(home))
    out = tmp_path / "zl_1m.parquet"
    assert cli_main(["export", "--root", "ZL", "--horizon", "1m", "--split", "test", "--out", str(out)]) == 0
    assert "year 2025 (2/2)" in capsys.readouterr().err
    assert pl.read_parquet(out).equals(_expected(wh.read(training_table("ZL")), "1m", "test"))


def _roll_vs_other(frame: pl.DataFrame, column: str) -> tuple[float, float, float, int]:
    """(mean of roll rows, mean of the other rows, standard error of their difference, roll rows) of
    ``column`` over the rows with a 1d target and a known roll flag."""
    f = frame.filter(pl.col(column).is_not_null() & pl.col("target_crosses_roll_1d").is_not_null())
    roll = f.filter(pl.col("target_crosses_roll_1d"))[column]
    other = f.filter(~pl.col("target_crosses_roll_1d"))[column]
    se = (roll.var() / roll.len() + other.var() / other.len()) ** 0.5
    return roll.mean(), other.mean(), se, roll.len()


def test_roll_adjusted_1d_targets_of_roll_rows_match_the_other_rows_on_every_root(real):
    wh, _, _ = real
    report = {}
    for root in ALL_ROOTS:
        frame = wh.read(training_table(root))
        roll_mean, other_mean, se, n = _roll_vs_other(frame, "target_1d")
        report[root] = (round(roll_mean * 100, 3), round(other_mean * 100, 3), round(se * 100, 3), n)
        assert n >= 5, (root, n)  # ES/MES roll quarterly: 7 switches in 2024-2025
        assert abs(roll_mean - other_mean) < 2 * se, (root, report[root])
        rolls = frame.filter(pl.col("target_crosses_roll_1d").fill_null(False))
        # The adjustment is applied at every roll (the contract gap removed, never zero on real prices)
        # and never leaves a target NULL where the raw one exists: every switch of the batch is priced.
        assert (rolls["target_1d"] != rolls["target_1d_raw"]).all(), root
        assert frame.filter(pl.col("target_1d_raw").is_not_null() & pl.col("target_1d").is_null()).height == 0
    print(report)


def test_ratio_at_each_switch_is_the_two_contracts_adjacent_1h_prices(real):
    """An independent reference for CL and ES: per switch, the old contract's last 1h close before the
    new contract's first 1h bar of the session, and that bar's open (a Python loop over the bars)."""
    wh, _, _ = real
    for root in ("CL", "ES"):
        frame = wh.read(training_table(root)).sort("data_date")
        bars = wh.read(OHLCV_1H, Slice(((root, date(2024, 1, 1), date(2025, 12, 15)),))).sort("ts_event")
        sessions = frame["data_date"].to_list()
        rolls = frame.with_row_index("i").filter(pl.col("target_crosses_roll_1d").fill_null(False))
        assert rolls.height >= 7
        for row in rolls.iter_rows(named=True):
            t, s = sessions[row["i"]], sessions[row["i"] + 1]  # the switch is at session s
            session = bars.filter(pl.col("trade_date") == s)
            new_inst = session["instrument_id"][-1]  # the contract of the session's last bar
            first_new = session.filter(pl.col("instrument_id") == new_inst).row(0, named=True)
            old = bars.filter(pl.col("trade_date").is_between(t, s), pl.col("instrument_id") != new_inst,
                              pl.col("ts_event") < first_new["ts_event"]).row(-1, named=True)
            ratio = (1 + row["target_1d_raw"]) / (1 + row["target_1d"])
            assert ratio == pytest.approx(first_new["open"] / old["close"], rel=1e-9), (root, s)


def test_real_panel_never_joins_a_later_close_and_folds_keep_the_embargo(real):
    from chimera_assets.training.panel import build_panel, other_column, read_panel, walk_forward_folds

    wh, _, _ = real
    panel = read_panel(ALL_ROOTS, "1w", warehouse=wh)
    assert set(panel["symbol"].unique()) == set(ALL_ROOTS)
    for r in ALL_ROOTS:
        ts = other_column(r, "timestamp")
        assert panel.filter(pl.col(ts) > pl.col("timestamp")).height == 0, r
        assert panel.filter(pl.col("symbol") != r)[ts].null_count() <= len(ALL_ROOTS), r  # the first rows only
    # Folds need every session (NULL targets and purged rows included) to count sessions.
    full = build_panel({r: wh.read(training_table(r)) for r in ("ZL", "CL")})
    (fold,) = walk_forward_folds(full, "1w", embargo=5)
    assert fold.test_year == 2025
    for r in ("ZL", "CL"):
        days = full.filter(pl.col("symbol") == r).sort("data_date").with_row_index("i").select("i", "data_date")
        train = full[fold.train_rows].filter(pl.col("symbol") == r).join(days, on="data_date")
        first_test = days.filter(pl.col("data_date") >= date(2025, 1, 1))["i"].min()
        assert train["i"].max() + 5 < first_test - 5
