"""Incremental update: one new trade date for 7 roots, from a new DBN file to matrix rows, after the
history is loaded.

Run from the repository root (one heavy benchmark at a time):

    .venv/bin/python -m benchmarks.bench_incremental            # history 2024-01-01..2025-12-15
    .venv/bin/python -m benchmarks.bench_incremental --quick    # history 2025-11-17..2025-12-15
    .venv/bin/python -m benchmarks.bench_incremental --instance sqlite   # persistent Dagster instance

In ONE fresh subprocess (so the Dagster instance holds the history's events, as a long-lived
deployment does): the real batch (ohlcv-1h, 84 series) is loaded for the history with
``runner.run_graph`` (all stages), then a new SYNTHETIC ohlcv-1h DBN file holding trade date
2025-12-16 (Tuesday; the real batch ends on Monday 2025-12-15) for the 7 roots is written into the
landing directory, and ``run_graph(start=end=2025-12-16)`` is timed twice over:

* ``to_matrix``: reference tables, policy features, raw -> session bars -> features -> matrix
  (``include_training=False``): the path from the new file to the new matrix rows;
* ``training``: the training tables rebuilt afterwards (a separate run, whole-table rebuild).

Per run: wall time, planned-event time, and per step the compute / Dagster bookkeeping split (see
bench_full_graph). The new date's matrix rows are counted (7 expected). Results:
``benchmarks/results/incremental.json`` (``incremental-quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_full_graph import BATCH, POLICY, _instance, all_runs, stage_table
from benchmarks.bench_ingest import (
    ROOTS,
    finish_worker,
    landing_for,
    loadavg,
    machine_snapshot,
    quiet_dagster,
    run_child,
    save_results,
)

NEW_DATE = dt.date(2025, 12, 16)


def worker_incremental(task: dict) -> dict:
    import polars as pl

    from chimera_assets.definitions import build_definitions
    from chimera_assets.demo.data import write_demo_files
    from chimera_assets.lib.runner import run_graph
    from chimera_assets.schemas import DAILY_ML_MATRIX
    from chimera_assets.warehouse import get_warehouse

    quiet_dagster()
    home = Path(os.environ["CHIMERA_HOME"])
    landing = Path(os.environ["CHIMERA_LANDING_DIR"])
    instance = _instance(task["instance"], home)
    defs = build_definitions()
    wh = get_warehouse()
    roots = task["roots"]
    h0, h1 = dt.date.fromisoformat(task["history_start"]), dt.date.fromisoformat(task["history_end"])
    t0 = time.perf_counter()
    hist = run_graph(defs, h0, h1, roots, instance, wh, progress=lambda _m: None)
    history_s = time.perf_counter() - t0
    runs_before = instance.get_runs_count()
    n_before = wh.sql(
        "SELECT count(*) AS n FROM features.daily_ml_matrix WHERE data_date = $1", [NEW_DATE]
    )["n"][0] if wh.table_exists(DAILY_ML_MATRIX) else 0

    # The new file arrives: [12-15, 12-17) UTC covers trade date 12-16 (its session opens 12-15 evening).
    t_new = time.perf_counter()
    files = write_demo_files(landing, roots, NEW_DATE - dt.timedelta(days=1), NEW_DATE + dt.timedelta(days=1),
                             "ohlcv-1h")
    gen_s = time.perf_counter() - t_new
    t1 = time.perf_counter()
    inc = run_graph(defs, NEW_DATE, NEW_DATE, roots, instance, wh, progress=lambda _m: None, include_training=False)
    to_matrix_s = time.perf_counter() - t1
    runs_to_matrix = instance.get_runs_count() - runs_before
    new_rows = wh.sql(
        "SELECT symbol, data_date FROM features.daily_ml_matrix WHERE data_date = $1", [NEW_DATE]
    )
    # The training tables afterwards: the same selection and call as run_graph's last stage.
    import dagster as dg

    from chimera_assets.lib.runner import QUIET
    from chimera_assets.schemas import training_table

    sel = {dg.AssetKey(["training", training_table(r).name]) for r in roots}
    t2 = time.perf_counter()
    tres = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=sel).execute_in_process(
        instance=instance, run_config=QUIET, raise_on_error=False
    )
    training_s = time.perf_counter() - t2
    runs = all_runs(instance)
    inc_runs = runs[runs_before:runs_before + runs_to_matrix]
    del pl
    return {
        "success": hist.success and inc.success and tres.success,
        "history_s": round(history_s, 2),
        "history_runs": runs_before,
        "new_file": [str(f.name) for f in files],
        "new_file_write_s": round(gen_s, 3),
        "to_matrix_wall_s": round(to_matrix_s, 3),
        "to_matrix_runs_launched": runs_to_matrix,
        "to_matrix_stages": [{"name": s.name, "seconds": round(s.seconds, 3), "partitions": s.partitions}
                             for s in inc.stages],
        "matrix_rows_for_new_date": new_rows.height,
        "matrix_rows_for_new_date_before": int(n_before),
        "new_date_symbols": sorted(new_rows["symbol"].to_list()),
        "training_stage_s": round(training_s, 3),
        "runs": inc_runs,
        "training_run": runs[-1:],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="history of one month instead of two years")
    ap.add_argument("--history-start", default="2024-01-01")
    ap.add_argument("--history-end", default="2025-12-15")
    ap.add_argument("--roots", default=",".join(ROOTS))
    ap.add_argument("--instance", default="ephemeral", choices=["ephemeral", "sqlite"])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        task = json.loads(args.worker)
        finish_worker(task, worker_incremental(task))
        return 0
    if not BATCH.exists():
        print(f"the real batch {BATCH} is absent; nothing to measure")
        return 2
    h0 = "2025-11-17" if args.quick else args.history_start
    machine = machine_snapshot()
    print(f"machine: {machine['host_cpus']} cpus, {machine['mem_total_gb']} GB, load {machine['loadavg_1_5_15_at_start']}")
    print(f"history {h0}..{args.history_end} (real batch), then new trade date {NEW_DATE} for {args.roots} "
          f"[{args.instance} instance]")
    with tempfile.TemporaryDirectory(prefix="chimera-bench-incr-") as home:
        landing = landing_for(sorted(BATCH.rglob("*.dbn.zst")), Path(home) / "landing")
        env = {"CHIMERA_HOME": home, "CHIMERA_LANDING_DIR": str(landing), "CHIMERA_POLICY_DIR": str(POLICY),
               "CHIMERA_WAREHOUSE": "", "CHIMERA_DUCKDB_PATH": "", "CHIMERA_UNIVERSE": ""}
        load0 = loadavg()
        r = run_child("benchmarks.bench_incremental",
                      {"kind": "incremental", "instance": args.instance, "history_start": h0,
                       "history_end": args.history_end, "roots": args.roots.split(",")}, env=env)
    r["loadavg_before"], r["loadavg_after"] = load0, loadavg()
    if r.get("error"):
        print(f"ERROR: {r['error']}")
    print(f"history loaded in {r.get('history_s', 0):.1f}s ({r.get('history_runs')} runs); peak RSS (whole process) "
          f"{r['peak_rss_mb']:.0f} MB")
    print(f"new date {NEW_DATE}: new file -> matrix rows: {r.get('to_matrix_wall_s', 0):.2f}s wall, "
          f"{r.get('to_matrix_runs_launched')} runs, {r.get('matrix_rows_for_new_date')} matrix rows "
          f"({', '.join(r.get('new_date_symbols', []))})")
    for st in r.get("to_matrix_stages", []):
        print(f"   run stage {st['name'][:70]:<70} {st['seconds']:7.2f}s")
    agg: dict[str, list[float]] = {}
    for row in stage_table({"runs": r.get("runs", [])}):
        a = agg.setdefault(row["stage"], [0.0, 0.0, 0.0])
        a[0] += row["seconds"]
        a[1] += row["compute_s"]
        a[2] += row["bookkeeping_s"]
    print(f"   {'step':<34}{'total s':>9}{'compute s':>11}{'bookkeep s':>12}")
    for name, (tot, comp, book) in agg.items():
        print(f"   {name:<34}{tot:9.2f}{comp:11.2f}{book:12.2f}")
    print(f"training tables afterwards (7 whole-table rebuilds): {r.get('training_stage_s')}s")
    out = {"benchmark": "incremental", "quick": args.quick, "machine": machine, "new_date": NEW_DATE.isoformat(),
           "instance": args.instance, "result": r,
           "summary": {"to_matrix_wall_s": r.get("to_matrix_wall_s"),
                       "runs_launched": r.get("to_matrix_runs_launched"),
                       "training_stage_s": r.get("training_stage_s"),
                       "new_file_to_training_s": round((r.get("to_matrix_wall_s") or 0)
                                                       + (r.get("training_stage_s") or 0), 2),
                       "matrix_rows_for_new_date": r.get("matrix_rows_for_new_date")}}
    name = "incremental" if args.instance == "ephemeral" else f"incremental_{args.instance}"
    path = save_results(name, out, args.quick)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
