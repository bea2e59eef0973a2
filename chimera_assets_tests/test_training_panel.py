"""Panel reads (several roots, other roots' features as of each row's own close instant) and
walk-forward folds with per-horizon purge and an embargo (issue 25 item 6)."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from chimera_assets.schemas import TARGET_HORIZONS, training_table
from chimera_assets.training.panel import build_panel, other_column, read_panel, walk_forward_folds
from chimera_assets.training.targets import build_training_table
from chimera_assets.warehouse import Slice
from chimera_assets_tests.training_frames import multi_year_parts

STEPS = dict(TARGET_HORIZONS)


def _two_roots(start=date(2021, 1, 4), end=date(2025, 12, 31)) -> dict[str, pl.DataFrame]:
    """ZL and MES training tables of the synthetic calendar. ZL's close instant is moved 2 h 40 min
    earlier (13:20 CT, the grain close) than MES's (16:00 CT), as per-root close instants will be."""
    matrix, bars = multi_year_parts(start, end)
    mes_matrix = matrix.with_columns(pl.lit("MES").alias("symbol"))
    mes_bars = bars.with_columns(pl.lit("MES").alias("symbol"))
    zl = build_training_table(matrix, "ZL", bars).with_columns(
        (pl.col("timestamp") - timedelta(hours=2, minutes=40)).alias("timestamp"))
    mes = build_training_table(mes_matrix, "MES", mes_bars).with_columns(
        (pl.col("close") * 2).alias("close"))  # tell the roots' features apart
    return {"ZL": zl, "MES": mes}


def test_panel_joins_other_roots_as_of_the_rows_own_close_and_never_later():
    frames = _two_roots(date(2024, 1, 2), date(2024, 3, 29))
    panel = build_panel(frames)
    assert panel.height == frames["ZL"].height + frames["MES"].height
    assert panel.group_by("symbol", "data_date").len()["len"].max() == 1
    # The rule: no other root's feature in a row is from a close instant later than the row's own.
    for r in ("ZL", "MES"):
        other = panel.filter(pl.col("symbol") != r)
        ts = other_column(r, "timestamp")
        assert other[ts].null_count() <= 1  # at most the first row, before the other root's first close
        assert other.filter(pl.col(ts) > pl.col("timestamp")).height == 0
        # NULL in the root's own rows: those are its plain columns.
        assert panel.filter(pl.col("symbol") == r)[ts].null_count() == frames[r].height
    day = date(2024, 2, 14)
    mes_row = panel.filter(pl.col("symbol") == "MES", pl.col("data_date") == day).row(0, named=True)
    zl_row = panel.filter(pl.col("symbol") == "ZL", pl.col("data_date") == day).row(0, named=True)
    # ZL closes first: MES's row holds ZL's same-day close; ZL's row holds MES's previous session.
    assert mes_row["ZL__close"] == zl_row["close"] and mes_row["ZL__timestamp"] == zl_row["timestamp"]
    prev = frames["MES"].filter(pl.col("data_date") < day).sort("data_date").row(-1, named=True)
    assert zl_row["MES__close"] == prev["close"] and zl_row["MES__timestamp"] == prev["timestamp"]
    # Only per-root features come along (policy columns are the same in every root's row).
    assert "ZL__vwap" in panel.columns and "ZL__trump_score" not in panel.columns
    assert "ZL__regime_name" not in panel.columns


def test_read_panel_reads_each_root_from_the_warehouse(duckdb_warehouse):
    frames = _two_roots(date(2023, 10, 2), date(2024, 3, 29))
    for root, f in frames.items():
        duckdb_warehouse.merge(training_table(root), f, Slice.whole_table())
    panel = read_panel(["ZL", "MES"], "1w", split="test", warehouse=duckdb_warehouse)
    assert set(panel["split"].unique()) == {"test"} and "purged_1w" not in panel.columns
    # The first test row of MES still sees ZL's last 2023 session (as-of sources span every split).
    first = panel.filter(pl.col("symbol") == "MES").row(0, named=True)
    assert first["ZL__timestamp"] < first["timestamp"] and first["ZL__timestamp"] is not None
    with pytest.raises(ValueError, match="distinct roots"):
        read_panel(["ZL", "ZL"], "1d", warehouse=duckdb_warehouse)


@pytest.mark.parametrize("horizon", ["1d", "1w", "1m", "3m"])
@pytest.mark.parametrize(("scheme", "years"), [("expanding", None), ("rolling", 1)])
def test_walk_forward_folds_purge_each_horizon_and_keep_the_embargo(horizon, scheme, years):
    frames = _two_roots()
    panel = build_panel(frames)
    embargo = 5
    folds = walk_forward_folds(panel, horizon, scheme=scheme, train_years=years, embargo=embargo)
    assert [f.test_year for f in folds] == [2022, 2023, 2024, 2025]
    h = STEPS[horizon]
    for root in ("ZL", "MES"):
        # Each root's sessions, numbered; the row's label window ends at session i + h.
        sessions = frames[root].sort("data_date").with_row_index("i").select("i", "data_date")
        for fold in folds:
            train = panel[fold.train_rows].filter(pl.col("symbol") == root).join(sessions, on="data_date")
            test = panel[fold.test_rows].filter(pl.col("symbol") == root).join(sessions, on="data_date")
            first_test = test["i"].min()
            # No training target window (t, t+h] reaches into the embargo before the test fold or the fold.
            assert train["i"].max() + h < first_test - embargo
            # ... and nothing more is lost: the last allowed session is there.
            assert train["i"].max() + h == first_test - embargo - 1
            assert train["target_" + horizon].null_count() == 0
            assert (test["data_date"].dt.year() == fold.test_year).all()
            if scheme == "rolling":
                assert train["data_date"].min() >= date(fold.test_year - years, 1, 1)
            else:
                assert train["data_date"].min() == sessions["data_date"].min()


def test_walk_forward_folds_refuse_bad_arguments():
    panel = build_panel(_two_roots(date(2024, 1, 2), date(2024, 3, 29)))
    with pytest.raises(ValueError, match="train_years"):
        walk_forward_folds(panel, "1d", scheme="rolling")
    with pytest.raises(ValueError, match="unknown scheme"):
        walk_forward_folds(panel, "1d", scheme="kfold")
    with pytest.raises(ValueError, match="embargo"):
        walk_forward_folds(panel, "1d", embargo=-1)
