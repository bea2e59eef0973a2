"""The user's whole batch as one universe: ``chimera universe init`` over the real portal batch, then one
month of all 84 roots through the whole graph (DuckDB), and a smaller run with digit roots on BigQuery.

Every root with bars in the month must publish session bars, features, matrix and training rows; the
roots without bars that month (five products never trade in the batch, thin ones skip days) are gap
days: explained, never a failed run. The runs go through the ``chimera run`` command in a subprocess, as
a user runs them: the asset definitions take their symbol partitions from the universe when the package
is imported, so the universe must be chosen (``CHIMERA_UNIVERSE``) before that.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import yaml

from chimera_assets.cli import main
from chimera_assets.schemas import (
    DAILY_ML_MATRIX,
    MARKET_FEATURES,
    OHLCV_1H,
    PIVOTS,
    SESSION_BARS,
    training_table,
)
from chimera_assets.universe import load_universe
from chimera_assets.warehouse import get_warehouse
from chimera_assets_tests.conftest import shared_data

START, END = date(2025, 3, 3), date(2025, 3, 31)


@pytest.fixture
def batch_universe(tmp_path, monkeypatch, capsys):
    """CHIMERA_UNIVERSE = what ``chimera universe init`` writes for the real batch (84 roots)."""
    batch = shared_data("databento-batch")
    out = tmp_path / "universe.yaml"
    assert main(["universe", "init", "--from", str(batch), "--out", str(out)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("CHIMERA_UNIVERSE", str(out))
    return load_universe(out)


def _chimera_run(roots: str, start: date, end: date) -> tuple[float, str]:
    """``chimera run`` over the real batch in a subprocess with this test's environment; (seconds, output)."""
    exe = Path(sys.executable).with_name("chimera")
    argv = [str(exe), "run", "--roots", roots, "--start", start.isoformat(), "--end", end.isoformat(),
            "--landing-dir", str(shared_data("databento-batch")), "--ephemeral-instance"]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ), timeout=900, check=False)
    elapsed = time.perf_counter() - t0
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return elapsed, output


def _roots_with_rows(wh, spec, column: str = "symbol") -> dict[str, int]:
    frame = wh.read(spec)
    return dict(frame.group_by(column).len().iter_rows()) if frame.height else {}


def _published_per_root(wh, roots) -> dict[str, dict[str, int]]:
    out = {t.fqn: _roots_with_rows(wh, t) for t in (SESSION_BARS, MARKET_FEATURES, PIVOTS, DAILY_ML_MATRIX)}
    out["training"] = {r: wh.read(training_table(r)).height for r in roots}
    return out


# ~5 min on 2 cores, dominated by per-partition Dagster events and per-root training/quality steps (not
# by the data: the raw load of 1,764 partitions takes ~16 s); CI runs slow tests too.
@pytest.mark.slow
def test_one_month_of_all_84_roots_publishes_every_root_with_bars(batch_universe):
    roots = batch_universe.root_names
    assert len(roots) == 84
    elapsed, output = _chimera_run("all", START, END)
    print(f"chimera run, one month x {len(roots)} roots on DuckDB: {elapsed:.1f}s (subprocess, imports included)")
    print("\n".join(line for line in output.splitlines() if line.lstrip().startswith(("[", "ok", "wall"))))
    wh = get_warehouse()
    raw = wh.read(OHLCV_1H)
    with_bars = set(raw.filter(pl.col("trade_date").is_between(START, END))["symbol"].unique())
    print(f"{len(with_bars)} roots have bars in {START}..{END}; without: {sorted(set(roots) - with_bars)}")
    assert {"CJ", "CPO", "KT", "TT", "YO"}.isdisjoint(with_bars)  # never trade in the batch
    assert {"6E", "10Y", "2YY", "ES", "ZL", "SR3", "BTC", "HE"} <= with_bars
    sessions = wh.read(SESSION_BARS).filter(pl.col("trade_date").is_between(START, END))
    # Session bars keep every session with bars; the feature tables, matrix and training rows get the
    # complete ones (bars reach the scheduled close within the root's tolerance: `universe init` measured a
    # wider one for the roots that rarely trade near their close, so each of them publishes too).
    assert set(sessions["symbol"]) == with_bars
    complete = set(sessions.filter(pl.col("session_complete"))["symbol"])
    print(f"{len(complete)} roots have a complete session; bars but none complete: {sorted(with_bars - complete)}")
    assert complete == with_bars
    published = _published_per_root(wh, roots)
    for table, per_root in published.items():
        if table == SESSION_BARS.fqn:
            continue
        have = {r for r, n in per_root.items() if n > 0}
        assert sorted(complete - have) == [], f"{table}: roots with a complete session but no rows"
        assert have <= complete, f"{table}: rows for roots without a complete session: {sorted(have - complete)}"


@pytest.mark.bigquery
@pytest.mark.slow
def test_digit_roots_run_on_bigquery(batch_universe, monkeypatch):
    endpoint = os.environ.get("CHIMERA_BQ_EMULATOR")
    if not endpoint:
        pytest.skip("CHIMERA_BQ_EMULATOR is not set (start one with .ci/bigquery_emulator.sh start)")
    monkeypatch.setenv("CHIMERA_WAREHOUSE", "bigquery")
    monkeypatch.setenv("CHIMERA_BQ_ENDPOINT", endpoint)
    monkeypatch.setenv("CHIMERA_BQ_PROJECT", "test")
    monkeypatch.setenv("CHIMERA_BQ_DATASET_PREFIX", f"u{uuid.uuid4().hex[:8]}_")
    # The init entries of 6E and 10Y only, so they are neighbours: one range run (the emulator is slow).
    roots = ["6E", "10Y"]
    raw = yaml.safe_load(batch_universe.path.read_text())
    two = batch_universe.path.with_name("two_roots.yaml")
    two.write_text(yaml.safe_dump({"dataset": raw["dataset"], "roots": {r: raw["roots"][r] for r in roots}}))
    monkeypatch.setenv("CHIMERA_UNIVERSE", str(two))
    assert load_universe(two).roots["6E"] == batch_universe.roots["6E"]
    elapsed, _ = _chimera_run(",".join(roots), date(2025, 3, 3), date(2025, 3, 7))
    print(f"chimera run, one week x {roots} on the BigQuery emulator: {elapsed:.1f}s")
    bq = get_warehouse()
    try:
        published = _published_per_root(bq, roots)
        for table, per_root in published.items():
            assert all(per_root.get(r, 0) > 0 for r in roots), f"{table}: {per_root}"
        # the table of a digit root exists under its own (quoted) name
        assert bq.client.get_table(bq.table_id(training_table("6E"))).table_id == "6e_training_daily"
    finally:
        for spec in (OHLCV_1H, SESSION_BARS, MARKET_FEATURES, PIVOTS, DAILY_ML_MATRIX,
                     *(training_table(r) for r in roots)):
            bq.drop_table(spec)
