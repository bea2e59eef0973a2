"""Naive baseline: the old row-at-a-time design, on the same SYNTHETIC ohlcv-1m files as bench_ingest.

Run from the repository root:

    .venv/bin/python -m benchmarks.bench_naive_baseline            # 200,000-row sample of the 1x data
    .venv/bin/python -m benchmarks.bench_naive_baseline --quick    # 50,000 rows

What it reproduces (in a fresh subprocess; timings exclude imports):

1. ``databento``'s own ``DBNStore.to_df(map_symbols=True)`` decode into pandas, file by file, until
   the sample is reached;
2. a Python loop over ``DataFrame.iterrows()`` building ONE dict per row, shaped like the STRUCT
   row of the old table (``{"ts_event", "trade_date", "symbol", "series", "instrument_id",
   "bar": {"open", "high", "low", "close", "volume"}}``) with the trade date computed per row
   (America/Chicago wall clock + 7 h, weekend -> Monday);
3. every 5,000 rows, the batch is serialised to a JSON-lines file and appended to DuckDB with
   ``INSERT INTO ... SELECT * FROM read_json(<batch file>)``.

The loop is timed on a SAMPLE (the first ``--rows`` records of the 1x window) and its rows/s is
extrapolated to the full size: the per-row cost of this design does not fall with size.
Results: ``benchmarks/results/naive_baseline.json`` (``-quick`` suffix with ``--quick``); bench_ingest
also runs it and reports our speed as a ratio to it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_ingest import (
    DEFAULT_DATA_DIR,
    ensure_files,
    finish_worker,
    machine_snapshot,
    run_child,
    save_results,
    size_window,
)

BATCH_ROWS = 5_000


def worker_naive(task: dict) -> dict:
    import databento as db
    import duckdb
    import pandas as pd

    sample = int(task["sample_rows"])
    out_dir = Path(task["dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    frames, n = [], 0
    for f in task["files"]:
        df = db.DBNStore.from_file(f).to_df(map_symbols=True)
        frames.append(df)
        n += len(df)
        if n >= sample:
            break
    df = pd.concat(frames).iloc[:sample]
    # Decode time pro rata to the sample (the last file may hold more rows than the sample needs).
    t_decode = (time.perf_counter() - t0) * len(df) / max(n, 1)
    c_decode = (time.process_time() - c0) * len(df) / max(n, 1)

    con = duckdb.connect(str(out_dir / "naive.duckdb"))
    con.execute(
        "CREATE TABLE bars (ts_event TIMESTAMPTZ, trade_date DATE, symbol VARCHAR, series VARCHAR, "
        "instrument_id BIGINT, bar STRUCT(open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, volume BIGINT))"
    )
    batch_file = out_dir / "batch.jsonl"
    t_json = t_insert = 0.0
    batch: list[dict] = []
    rows = 0

    def flush() -> None:
        nonlocal t_json, t_insert, batch
        a = time.perf_counter()
        with open(batch_file, "w") as fh:
            for rec in batch:
                fh.write(json.dumps(rec))
                fh.write("\n")
        b = time.perf_counter()
        con.execute(f"INSERT INTO bars SELECT * FROM read_json('{batch_file}', format='newline_delimited')")  # noqa: S608 - our own temp path
        t_json += b - a
        t_insert += time.perf_counter() - b
        batch = []

    t_loop0, c_loop0 = time.perf_counter(), time.process_time()
    for ts, row in df.iterrows():
        local = ts.tz_convert("America/Chicago").tz_localize(None) + pd.Timedelta(hours=7)
        td = local.date()
        if td.weekday() >= 5:
            td += dt.timedelta(days=7 - td.weekday())
        series = row["symbol"]
        batch.append({
            "ts_event": ts.isoformat(),
            "trade_date": td.isoformat(),
            "symbol": series.split(".")[0],
            "series": series,
            "instrument_id": int(row["instrument_id"]),
            "bar": {
                "open": float(row["open"]),
                "high": float(row["high"]),
                "low": float(row["low"]),
                "close": float(row["close"]),
                "volume": int(row["volume"]),
            },
        })
        rows += 1
        if len(batch) == BATCH_ROWS:
            flush()
    if batch:
        flush()
    con.close()
    loop_only = time.perf_counter() - t_loop0 - t_json - t_insert
    total = t_decode + (time.perf_counter() - t_loop0)
    cpu = c_decode + (time.process_time() - c_loop0)
    con = duckdb.connect(str(out_dir / "naive.duckdb"), read_only=True)
    stored = con.execute("SELECT count(*) FROM bars").fetchone()[0]
    con.close()
    return {
        "rows": rows,
        "rows_stored": int(stored),
        "seconds": total,
        "rows_per_s": rows / total,
        "cpu_s": cpu,
        "rows_per_cpu_s": rows / cpu,
        "breakdown_s": {"to_df_decode": round(t_decode, 3), "row_loop_dicts": round(loop_only, 3),
                        "json_serialise": round(t_json, 3), "duckdb_read_json_insert": round(t_insert, 3)},
        "batch_rows": BATCH_ROWS,
    }


def run_naive(files: list[Path], sample_rows: int) -> dict:
    """Time the naive design on the first ``sample_rows`` rows of ``files`` in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="chimera-bench-naive-") as tmp:
        r = run_child(
            "benchmarks.bench_naive_baseline",
            {"kind": "naive", "files": [str(f) for f in files], "sample_rows": sample_rows, "dir": tmp},
        )
    r["note"] = (f"timed on a {r.get('rows', 0):,}-row sample (first rows of the 1x files) and "
                 "extrapolated: rows/s is assumed constant with size")
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rows", type=int, default=None, help="sample size (default 200,000; 50,000 with --quick)")
    ap.add_argument("--end", default="2025-01-01")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        task = json.loads(args.worker)
        finish_worker(task, worker_naive(task))
        return 0
    rows = args.rows or (50_000 if args.quick else 200_000)
    start, end = size_window(1, args.quick, dt.date.fromisoformat(args.end))
    files, _ = ensure_files(args.data_dir, start, end)
    machine = machine_snapshot()
    r = run_naive(files, rows)
    print(f"naive baseline: {r.get('rows', 0):,} rows in {r.get('seconds', 0):.1f}s -> "
          f"{r.get('rows_per_s', 0):,.0f} rows/s; breakdown {r.get('breakdown_s')}; peak RSS {r['peak_rss_mb']:.0f} MB")
    path = save_results("naive_baseline", {"benchmark": "naive_baseline", "quick": args.quick,
                                           "machine": machine, "result": r}, args.quick)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
