"""The main job end to end: the real batch for ZL and MES through every table, idempotency, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
import yaml

from chimera_assets.schemas import (
    DAILY_ML_MATRIX,
    OHLCV_1H,
    SESSION_BARS,
    training_table,
)
from chimera_assets_tests.conftest import shared_data
from chimera_assets_tests.e2e_helpers import data_tables, run_main_job
from chimera_assets_tests.frames import frame_hash

REPO = Path(__file__).resolve().parents[1]
ROOTS = ["ZL", "MES"]


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    batch, policy = shared_data("databento-batch"), shared_data("policy-events")
    home = tmp_path_factory.mktemp("main_job")
    mp = pytest.MonkeyPatch()
    mp.setenv("CHIMERA_HOME", str(home))
    mp.setenv("CHIMERA_LANDING_DIR", str(batch))
    mp.setenv("CHIMERA_POLICY_DIR", str(policy))
    try:
        summary, wh = run_main_job(date(2024, 1, 1), date(2025, 12, 15), ROOTS)
    finally:
        mp.undo()
    return summary, wh


def test_matrix_schema_read_back_equals_the_spec(real_run):
    _, wh = real_run
    back = wh.read(DAILY_ML_MATRIX)
    spec_fields = [(c.name, c.polars_dtype()) for c in DAILY_ML_MATRIX.columns]
    assert list(back.schema.items()) == spec_fields
    # The spec's STRUCT members come first, in order; extras (R3, S3, pivot_roll_flag) only appended.
    pivots = [f.name for f in back.schema["pivots"].fields]
    assert pivots[:9] == ["P", "R1", "R2", "S1", "S2", "distance_to_P", "distance_to_nearest_pivot",
                          "weekly_pivot_distance", "price_above_P"]
    desc = wh.sql("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema='features' "
                  "AND table_name='daily_ml_matrix' ORDER BY ordinal_position")
    assert desc["column_name"].to_list() == DAILY_ML_MATRIX.column_names
    assert desc.filter(pl.col("column_name") == "golden_zone")["data_type"][0].startswith(
        "STRUCT(state BIGINT, swing_high DOUBLE")


def test_one_matrix_row_per_root_and_trade_date_with_bars(real_run):
    summary, wh = real_run
    m = wh.read(DAILY_ML_MATRIX)
    assert m.select("symbol", "data_date").is_duplicated().sum() == 0
    bars = wh.read(OHLCV_1H, columns=["trade_date", "symbol"]).unique()
    assert sorted(m.select("data_date", "symbol").rows()) == sorted(bars.rows())
    assert set(m["symbol"].unique()) == set(ROOTS) and m.height > 900


def test_regime_name_and_weight_equal_the_yaml_for_every_date(real_run):
    _, wh = real_run
    raw = yaml.safe_load((REPO / "chimera_assets" / "config" / "regimes.yaml").read_text())
    regimes = raw["regimes"] if isinstance(raw, dict) and "regimes" in raw else raw
    entries = [(r["name"], r.get("start"), r.get("end"), r["weight"]) for r in regimes]
    baseline_weight = next((w for n, s, e, w in entries if n == "baseline"), 100)
    m = wh.read(DAILY_ML_MATRIX).select("data_date", "regime", "regime_name")
    for d, regime, name in m.rows():
        hit = [(n, w) for n, s, e, w in entries if s and e and s <= d <= e]
        expected = hit[0] if hit else ("baseline", baseline_weight)
        assert (regime["name"], regime["weight"]) == expected, d
        assert name == regime["name"]


def test_close_equals_session_close_and_pivots_use_the_previous_session(real_run):
    _, wh = real_run
    m = wh.read(DAILY_ML_MATRIX)
    sb = wh.read(SESSION_BARS).sort("symbol", "trade_date")
    j = m.select("symbol", pl.col("data_date").alias("trade_date"), "market_data", "pivots").join(
        sb, on=["symbol", "trade_date"]
    )
    assert j.height == m.height
    assert (j["market_data"].struct.field("close") == j["close"]).all()
    prev = sb.with_columns(
        ((pl.col("high") + pl.col("low") + pl.col("close")) / 3).shift(1).over("symbol").alias("P_expected")
    ).select("symbol", "trade_date", "P_expected")
    chk = j.join(prev, on=["symbol", "trade_date"]).filter(pl.col("P_expected").is_not_null())
    assert chk.height > 900
    diff = (chk["pivots"].struct.field("P") - chk["P_expected"]).abs().max()
    assert diff < 1e-9


def test_training_targets_split_and_tail(real_run):
    _, wh = real_run
    for root in ROOTS:
        t = wh.read(training_table(root)).sort("data_date")
        assert t.height > 450
        closes = t["close"].to_list()
        rows = t.with_row_index("i").sample(10, seed=3)
        for r in rows.iter_rows(named=True):
            i = r["i"]
            expected = closes[i + 5] / closes[i] - 1 if i + 5 < len(closes) else None
            if expected is None:
                assert r["target_1w"] is None
            else:
                assert abs(r["target_1w"] - expected) < 1e-12
        assert t.tail(5)["target_1w"].null_count() == 5
        assert t.head(-5)["target_1w"].null_count() == 0
        # Every row of 2024-2025 is in the test split; none of their windows crosses a boundary.
        assert set(t["split"].unique()) == {"test"} and not t["purged"].any()
        assert (t["training_weight"] == t["regime_weight"]).all()


def test_policy_counts_in_the_matrix_equal_an_independent_count_of_the_event_files(real_run):
    """The matrix's policy columns are cut at each root's own session close (SPEC 6.4: ZL 13:20 CT, MES
    16:00 CT) and, for every date of 2024-2025, inside coverage (the social file starts in 2008): no NULL
    counts. Per root and date the two mention counts equal the reference count of the deduplicated
    events (``w1_mention_counts``: plain ``re`` over W1 = (T - 24 h, T], T = the root's close)."""
    from chimera_assets.features.policy import load_policy_events
    from chimera_assets.features.policy_cutoffs import root_cutoffs
    from chimera_assets_tests.features.test_policy_real import w1_mention_counts

    _, wh = real_run
    m = wh.read(DAILY_ML_MATRIX).select("symbol", "data_date", "timestamp", pl.col("policy").struct.unnest())
    counts = ["trump_mentions", "trumpxi_china_mentions"]
    assert m.select(pl.col(counts).null_count()).row(0) == (0, 0)

    ev = load_policy_events(sorted(shared_data("policy-events").glob("*.parquet")))
    total = [0, 0]
    for root in ROOTS:
        rows = m.filter(pl.col("symbol") == root)
        got = {d: (n, x) for d, n, x in rows.select("data_date", *counts).rows()}
        closes = dict(root_cutoffs(sorted(got), roots=[root]).select("trade_date", "cutoff").rows())
        # The row's timestamp is the cut-off its policy values were computed at.
        assert dict(rows.select("data_date", "timestamp").rows()) == closes, root
        want = w1_mention_counts(ev, sorted(got), closes)
        assert got == want, root
        total = [total[0] + sum(n for n, _ in want.values()), total[1] + sum(x for _, x in want.values())]
    # Not a comparison of zeros: the period holds a few mentions (Jan, Aug-Nov 2025), one with China/Xi.
    assert total[0] > 10 and total[1] >= 2
    # ... and the two roots' values differ on some dates (events between 13:20 and 16:00 CT).
    both = m.filter(pl.col("symbol") == "ZL").join(m.filter(pl.col("symbol") == "MES"), on="data_date")
    assert both.filter(pl.col("trump_mentions") != pl.col("trump_mentions_right")).height > 0


def test_running_the_main_job_twice_leaves_every_table_identical(tmp_path, monkeypatch):
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(shared_data("databento-batch")))
    monkeypatch.setenv("CHIMERA_POLICY_DIR", str(shared_data("policy-events")))
    start, end = date(2025, 6, 2), date(2025, 7, 31)
    _, wh = run_main_job(start, end, ROOTS)
    first = {s.fqn: frame_hash(wh.read(s), s.volatile_columns) for s in data_tables(ROOTS)}
    _, wh = run_main_job(start, end, ROOTS)
    second = {s.fqn: frame_hash(wh.read(s), s.volatile_columns) for s in data_tables(ROOTS)}
    assert first == second
    assert sum(wh.read(s).height for s in data_tables(ROOTS)) > 500


@pytest.mark.slow
def test_cli_demo_quick_start_builds_a_matrix_for_two_roots(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHIMERA_", "DATABENTO_", "DAGSTER_"))}
    env["CHIMERA_HOME"] = str(tmp_path / "home")
    exe = Path(sys.executable).parent / "chimera"
    end = date(2024, 3, 29)
    proc = subprocess.run([str(exe), "run", "--demo", "--roots", "ZL,MES", "--start", "2024-01-02",
                           "--end", end.isoformat()], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "features.daily_ml_matrix" in proc.stdout and "result: SUCCESS" in proc.stdout
    # The demo lands ohlcv-1h files only: the other raw assets are left out of the run, said so.
    assert "skipping market_data/databento_futures_ohlcv_1m: no ohlcv-1m file" in proc.stdout
    assert "skipping market_data/databento_futures_ohlcv_1h" not in proc.stdout
    # Recorded in the default persistent instance ($CHIMERA_HOME/dagster), which `chimera ui` serves.
    dagster_home = (tmp_path / "home" / "dagster").resolve()
    assert f"Dagster instance: {dagster_home}" in proc.stdout
    assert (dagster_home / "history" / "runs.db").exists()
    from chimera_assets.warehouse.duckdb_backend import DuckDBWarehouse

    m = DuckDBWarehouse(tmp_path / "home" / "warehouse.duckdb").read(DAILY_ML_MATRIX)
    per_root = dict(m.group_by("symbol").len().rows())
    assert set(per_root) == {"ZL", "MES"} and min(per_root.values()) >= 55


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--start", "2024-03-05", "--end", "2024-03-01"], "after --end"),
        (["--start", "2001-01-02", "--end", "2001-01-05"], "before the first trade date"),
        (["--start", "2024-03-02", "--end", "2024-03-03"], "holds no trade date"),
        (["--start", "2024-13-01", "--end", "2024-03-03"], "is not a date"),
        (["--start", "2024-03-01", "--end", (date.today() + timedelta(days=30)).isoformat()], "in the future"),
        (["--start", "2024-03-01", "--end", "2024-03-05", "--roots", "ZL,XYZ"], "XYZ"),
        (["--start", "2024-03-01", "--end", "2024-03-05", "--landing-dir", "/nonexistent/dir"], "/nonexistent/dir"),
    ],
)
def test_cli_bad_arguments_give_one_clear_error_and_touch_nothing(tmp_path, args, needle):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHIMERA_", "DATABENTO_", "DAGSTER_"))}
    env["CHIMERA_HOME"] = str(tmp_path / "home")
    exe = Path(sys.executable).parent / "chimera"
    proc = subprocess.run([str(exe), "run", *args], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert proc.stderr.count("error") == 1, proc.stderr
    assert not (tmp_path / "home" / "warehouse.duckdb").exists()
    assert not (tmp_path / "home" / "dagster").exists()
