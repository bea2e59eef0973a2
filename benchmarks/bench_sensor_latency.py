"""One new trade date through the landing sensor and automation on the persistent instance: seconds
from the file landing to the matrix rows.

Run from the repository root (nothing else heavy in parallel):

    .venv/bin/python -m benchmarks.bench_sensor_latency                 # 7 roots, 3 months of history
    .venv/bin/python -m benchmarks.bench_sensor_latency --roots ZL,MES  # fewer roots

1. ``chimera run`` builds the history (SYNTHETIC demo files, 2024-01-02..2024-03-28) in a fresh
   CHIMERA_HOME, recorded in the default instance ($CHIMERA_HOME/dagster);
2. ``chimera ui`` serves that instance with ``CHIMERA_SENSOR_INTERVAL_S`` (default 10 s: landing
   sensor and automation tick at that interval; production defaults are 60 s and 30 s, so add up to
   ~75 s there);
3. the file of the new trade date (UTC day 2024-03-29 -> trade date 2024-03-29, all roots) is
   renamed into the landing directory; the warehouse is polled until every root has its matrix row.

Reported: seconds to the raw rows, to the matrix rows, the runs launched. Results:
``benchmarks/results/sensor_latency.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_ingest import ROOTS, loadavg, machine_snapshot, save_results
from benchmarks.bench_ui_backfill import REPO, Server

NEW_DAY = dt.date(2024, 3, 29)  # the demo maps UTC day 2024-03-29 to trade date 2024-03-29


def _count(home: Path, table: str, day: dt.date) -> int:
    from chimera_assets.schemas import DAILY_ML_MATRIX, OHLCV_1H
    from chimera_assets.warehouse.duckdb_backend import DuckDBWarehouse

    # identifiers from the schemas.py allow-list only; the date is a bound parameter
    spec, col = {"raw": (OHLCV_1H, "trade_date"), "matrix": (DAILY_ML_MATRIX, "data_date")}[table]
    try:
        wh = DuckDBWarehouse(home / "warehouse.duckdb")
        return int(wh.sql(f"SELECT count(*) AS n FROM {spec.fqn} WHERE {col} = $1", [day])["n"][0])  # noqa: S608
    except Exception:  # noqa: BLE001 - locked by a writer or not created yet: try again
        return -1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--roots", default=",".join(ROOTS))
    ap.add_argument("--interval", default="10", help="CHIMERA_SENSOR_INTERVAL_S for the UI (seconds)")
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args(argv)
    roots = args.roots.split(",")
    from chimera_assets.demo.data import write_demo_files

    out: dict = {"benchmark": "sensor_latency", "machine": machine_snapshot(), "roots": roots,
                 "sensor_interval_s": int(args.interval)}
    with tempfile.TemporaryDirectory(prefix="chimera-bench-sensor-") as tmp:
        home = Path(tmp)
        landing, staging = home / "landing", home / "staging"
        write_demo_files(landing, roots, dt.date(2023, 12, 1), dt.date(2024, 3, 29))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CHIMERA_", "DAGSTER_", "DATABENTO_"))}
        env.update(CHIMERA_HOME=str(home), CHIMERA_LANDING_DIR=str(landing), PYTHONPATH=str(REPO))
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "chimera_assets.cli", "run", "--start", "2024-01-02", "--end",
                               "2024-03-28", "--roots", ",".join(roots), "--landing-dir", str(landing)],
                              env=env, capture_output=True, text=True, timeout=3600, cwd=REPO)
        out["history_s"] = round(time.perf_counter() - t0, 1)
        if done.returncode != 0:
            print(done.stdout[-3000:], done.stderr[-3000:])
            return 1
        print(f"history built in {out['history_s']}s; load {loadavg()}")
        server = Server(home, landing=landing, extra_env={"CHIMERA_SENSOR_INTERVAL_S": args.interval})
        try:
            server.wait_loaded()
            time.sleep(3 * int(args.interval))  # let the sensors take their first look at the landing dir
            n0, _ = server.run_stats()
            files = write_demo_files(staging, roots, dt.date(2024, 3, 29), dt.date(2024, 3, 30))
            t_land = time.perf_counter()
            for f in files:
                os.replace(f, landing / f.name)  # a rename: complete at once
            raw_s = matrix_s = None
            while time.perf_counter() - t_land < args.timeout:
                if raw_s is None and _count(home, "raw", NEW_DAY) > 0:
                    raw_s = round(time.perf_counter() - t_land, 1)
                if _count(home, "matrix", NEW_DAY) >= len(roots):
                    matrix_s = round(time.perf_counter() - t_land, 1)
                    break
                time.sleep(1)
            n1, _ = server.run_stats()
        finally:
            server.stop()
            shutil.copy(server.log, Path(tempfile.gettempdir()) / "chimera_bench_sensor_ui.log")
    out.update(raw_rows_s=raw_s, matrix_rows_s=matrix_s, runs_launched=n1 - n0)
    print(f"new trade date {NEW_DAY} x {len(roots)} roots: raw rows after {raw_s}s, matrix rows after "
          f"{matrix_s}s ({n1 - n0} runs); load {loadavg()}")
    print(f"wrote {save_results('sensor_latency', out, False)}")
    return 0 if matrix_s is not None else 1


if __name__ == "__main__":
    sys.exit(main())
