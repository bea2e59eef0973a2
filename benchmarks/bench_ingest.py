"""Ingestion benchmark: SYNTHETIC ohlcv-1m DBN for 7 roots at 1x, 2x and 4x (1x = 1 year) into DuckDB.

Run from the repository root (one heavy benchmark at a time; the machine has 2 cores):

    .venv/bin/python -m benchmarks.bench_ingest            # 1x = 1 year; ~10-15 min incl. data generation
    .venv/bin/python -m benchmarks.bench_ingest --quick    # 1x = 1 month: smoke run (~2 min)

Every measurement runs in a FRESH subprocess (``python -m benchmarks.bench_ingest --worker ...``);
its peak RSS is the child's own ``ru_maxrss`` from ``os.wait4`` (also cross-checked against the
child's ``VmHWM``). Timings exclude interpreter start-up and imports. Per size:

* ``decode``   floor 1: DBN -> polars (-> Arrow) with ``iter_decoded_chunks``; nothing stored.
* ``insert``   floor 2: a bare DuckDB ``CREATE TABLE AS SELECT * FROM <arrow>`` of the same decoded
               table into a new DuckDB file (the decode is done first and not timed).
* ``ingest``   our path without Dagster: ``market_data.ingest_partitions`` (file selection, sha256,
               ledger, decode, shaping, dedupe, prepare_frame, MERGE) for every (trade date, root) key
               of the window, called with a minimal stand-in for the Dagster context.
* ``dagster``  the same asset materialized by a real Dagster run (``run_range``: one run, ephemeral
               instance), i.e. ``ingest`` plus Dagster's per-partition bookkeeping.
* ``naive``    (1x only; see ``bench_naive_baseline``) the old design on a sample of the 1x files.

Results: ``benchmarks/results/ingest.json`` (``ingest-quick.json`` with ``--quick``).
The helpers at the top (machine snapshot, child runner, results writer) are shared by the other
``benchmarks.bench_*`` scripts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"
ROOTS = ["ZL", "MES", "ES", "ZS", "ZM", "ZC", "CL"]
OHLCV_1M_ASSET = "market_data.databento_futures_ohlcv_1m"
DEFAULT_DATA_DIR = Path(tempfile.gettempdir()) / "chimera-bench-data"

# --------------------------------------------------------------------------------------------------
# Shared helpers (imported by the other benchmark scripts)
# --------------------------------------------------------------------------------------------------


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine_snapshot() -> dict:
    """Facts to read the numbers against: cores, memory, load, versions, commit."""
    import dagster
    import duckdb
    import polars

    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True,
            check=False,
        ).stdout.split("\n")
    except OSError:
        commit, dirty = "", []
    return {
        "when_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host_cpus": os.cpu_count(),
        "mem_total_gb": round(mem_kb / 1024 / 1024, 1),
        "loadavg_1_5_15_at_start": loadavg(),
        "python": platform.python_version(),
        "dagster": dagster.__version__,
        "duckdb": duckdb.__version__,
        "polars": polars.__version__,
        "git_commit": commit,
        "uncommitted_changes_in": sorted(line[3:] for line in dirty if line.strip()),
    }


def vm_hwm_mb() -> float:
    """This process's peak RSS (VmHWM) in MB, from /proc (0 where unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(module: str, task: dict, env: dict | None = None, timeout_s: float = 3600) -> dict:
    """Run ``python -m <module> --worker <task json>`` in a fresh process; return its result dict
    plus ``peak_rss_mb`` (the child's own ru_maxrss via os.wait4) and ``process_wall_s``."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        out_path = fh.name
    task = {**task, "result_path": out_path}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--worker", json.dumps(task)], cwd=REPO,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})},
    )
    deadline = time.monotonic() + timeout_s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait on the reaped pid
    wall = time.perf_counter() - t0
    try:
        result = json.loads(Path(out_path).read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        result = {}
    finally:
        Path(out_path).unlink(missing_ok=True)
    if proc.returncode != 0:
        result.setdefault("error", f"worker exited with status {proc.returncode}")
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    result["process_wall_s"] = round(wall, 2)
    return result


def finish_worker(task: dict, result: dict) -> None:
    result["child_vm_hwm_mb"] = round(vm_hwm_mb(), 1)
    Path(task["result_path"]).write_text(json.dumps(result, default=str))


def save_results(name: str, payload: dict, quick: bool) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}{'-quick' if quick else ''}.json"
    payload.setdefault("machine", {})["loadavg_1_5_15_at_end"] = loadavg()
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def quiet_dagster() -> None:
    import warnings

    import dagster as dg

    for cat in (dg.BetaWarning, dg.PreviewWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=cat)
    logging.getLogger("chimera_assets").setLevel(logging.ERROR)


def fmt_rate(x: float | None) -> str:
    return "-" if not x else f"{x / 1e6:.2f}M/s"


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------


def size_window(size: int, quick: bool, end: dt.date) -> tuple[dt.date, dt.date]:
    """[start, end) UTC dates of ``size`` x the unit (1 year; 1 month with --quick), ending at ``end``."""
    if quick:
        y, m = end.year, end.month - size
        while m <= 0:
            y, m = y - 1, m + 12
        return dt.date(y, m, 1), end
    return dt.date(end.year - size, end.month, end.day), end


def ensure_files(data_dir: Path, start: dt.date, end: dt.date) -> tuple[list[Path], float]:
    """Monthly SYNTHETIC ohlcv-1m files for the 7 roots over [start, end), generated once into
    ``data_dir`` (a month already generated is reused: the data is deterministic for the seed)."""
    from chimera_assets.demo.data import write_demo_files

    cache = data_dir / "ohlcv-1m-7roots-seed7"
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cur = start
    while cur < end:
        nxt = dt.date(cur.year + (cur.month == 12), cur.month % 12 + 1, 1)
        last = min(nxt, end) - dt.timedelta(days=1)
        if not (cache / f"demo-glbx-ohlcv-1m-{cur:%Y%m%d}-{last:%Y%m%d}.dbn.zst").exists():
            write_demo_files(cache, ROOTS, cur, min(nxt, end), "ohlcv-1m", files="monthly")
        cur = nxt
    gen_s = time.perf_counter() - t0
    files = [
        p for p in sorted(cache.glob("demo-glbx-ohlcv-1m-*.dbn.zst"))
        if start <= dt.datetime.strptime(p.name.split("-")[4], "%Y%m%d").date()
        and dt.datetime.strptime(p.name.split("-")[5].split(".")[0], "%Y%m%d").date() < end
    ]
    return files, gen_s


def landing_for(files: list[Path], where: Path) -> Path:
    """A landing directory holding (symlinks to) exactly ``files``."""
    where.mkdir(parents=True, exist_ok=True)
    for f in files:
        link = where / f.name
        if not link.exists():
            link.symlink_to(f)
    return where


# --------------------------------------------------------------------------------------------------
# Workers (each runs in its own process)
# --------------------------------------------------------------------------------------------------


def _decode_all(files: list[str]):
    from chimera_assets.dbn.decode import iter_decoded_chunks

    for f in files:
        yield from iter_decoded_chunks(f)


def worker_decode(task: dict) -> dict:
    import databento  # noqa: F401 - import cost is not decode cost

    t0, c0 = time.perf_counter(), time.process_time()
    rows = 0
    for chunk in _decode_all(task["files"]):
        chunk.to_arrow()  # "to Arrow": what a warehouse insert would be handed
        rows += chunk.height
    return {"rows": rows, "seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}


def worker_insert(task: dict) -> dict:
    import duckdb
    import polars as pl

    table = pl.concat(list(_decode_all(task["files"])), rechunk=True).to_arrow()
    db_path = Path(task["db"])
    db_path.unlink(missing_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    con = duckdb.connect(str(db_path))
    con.register("incoming", table)
    con.execute("CREATE TABLE bars AS SELECT * FROM incoming")
    con.close()  # includes the checkpoint to disk
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    con = duckdb.connect(str(db_path), read_only=True)
    n = con.execute("SELECT count(*) FROM bars").fetchone()[0]
    con.close()
    return {"rows": int(n), "seconds": secs, "cpu_s": cpu}


class _Log:
    def __init__(self):
        self.lines: list[str] = []

    def info(self, msg, *a, **k):
        self.lines.append(str(msg))

    warning = debug = error = info


class _Run:
    run_id = "benchmark"


class StubContext:
    """What ``ingest_partitions`` uses of an AssetExecutionContext: partition_keys, log, run.run_id."""

    def __init__(self, partition_keys: list[str]):
        self.partition_keys = partition_keys
        self.log = _Log()
        self.run = _Run()


def without_audits() -> None:
    """Run the raw loads without their write audits (the ``audits: False`` task): the assets ask
    ``audit_for`` for each table's audit, so answer None."""
    import chimera_assets.defs.market_data.assets as market_data

    market_data.audit_for = lambda spec: None


def _keys(task: dict) -> tuple[list[str], str, str]:
    from chimera_assets.lib.partitions import partition_keys_for, weekday_dates

    start, end = dt.date.fromisoformat(task["start"]), dt.date.fromisoformat(task["end"])
    dates = weekday_dates(start, end - dt.timedelta(days=1))
    return partition_keys_for(dates, ROOTS), dates[0].isoformat(), dates[-1].isoformat()


def worker_ingest(task: dict) -> dict:
    import databento  # noqa: F401 - imported lazily by the header reader; import cost is not ingest cost
    import polars as pl

    from chimera_assets.defs.market_data.assets import ingest_partitions
    from chimera_assets.lib.resources import DatabentoSource
    from chimera_assets.schemas import OHLCV_1M
    from chimera_assets.warehouse.duckdb_backend import DuckDBWarehouse

    quiet_dagster()
    audits = bool(task.get("audits", True))
    if not audits:
        without_audits()
    keys, _, _ = _keys(task)
    wh = DuckDBWarehouse(Path(os.environ["CHIMERA_HOME"]) / "warehouse.duckdb")
    ctx = StubContext(keys)
    chunk = int(task.get("chunk_dates") or 0)
    t0, c0 = time.perf_counter(), time.process_time()
    if chunk:
        # Bounded-memory variant: the same function over consecutive blocks of trade dates.
        by_date: dict[str, list[str]] = {}
        for k in keys:
            by_date.setdefault(k.split("|")[0], []).append(k)
        dates = sorted(by_date)
        for i in range(0, len(dates), chunk):
            ctx.partition_keys = [k for d in dates[i : i + chunk] for k in by_date[d]]
            list(ingest_partitions(ctx, OHLCV_1M, "ohlcv-1m", DatabentoSource(mode="landing"), wh))
    else:
        list(ingest_partitions(ctx, OHLCV_1M, "ohlcv-1m", DatabentoSource(mode="landing"), wh))
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    rows = wh.sql('SELECT count(*) AS n FROM "market_data"."databento_futures_ohlcv_1m"')["n"][0]
    dup = wh.sql(
        'SELECT count(*) AS n FROM (SELECT ts_event, symbol, instrument_id FROM '
        '"market_data"."databento_futures_ohlcv_1m" GROUP BY ALL HAVING count(*) > 1)'
    )["n"][0]
    assert dup == 0, f"{dup} duplicate keys"
    del pl
    return {"rows": int(rows), "seconds": secs, "cpu_s": cpu, "partitions": len(keys), "write_audits": audits,
            "log": ctx.log.lines[-3:]}


def worker_dagster(task: dict) -> dict:
    import dagster as dg

    from chimera_assets.definitions import build_definitions
    from chimera_assets_tests.dagster_helpers import run_range

    quiet_dagster()
    # As `chimera run` sets it: one planned event per asset instead of one per partition (each of
    # which carried the run's whole partition subset: memory and time quadratic in the partitions).
    os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
    keys, d0, d1 = _keys(task)
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    t0, c0 = time.perf_counter(), time.process_time()
    res = run_range([OHLCV_1M_ASSET], d0, d1, ROOTS[0], ROOTS[-1], defs=defs, instance=instance)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    stats = instance.get_run_step_stats(res.run_id)
    step_s = sum((s.end_time or 0) - (s.start_time or 0) for s in stats)
    from chimera_assets.warehouse.duckdb_backend import DuckDBWarehouse

    wh = DuckDBWarehouse(Path(os.environ["CHIMERA_HOME"]) / "warehouse.duckdb")
    rows = wh.sql('SELECT count(*) AS n FROM "market_data"."databento_futures_ohlcv_1m"')["n"][0]
    return {"rows": int(rows), "seconds": secs, "cpu_s": cpu, "step_seconds": step_s, "partitions": len(keys),
            "success": res.success}


WORKERS = {"decode": worker_decode, "insert": worker_insert, "ingest": worker_ingest, "dagster": worker_dagster}


# --------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------


def measure(kind: str, files: list[Path], start: dt.date, end: dt.date, scratch: Path, extra: dict | None = None) -> dict:
    home = scratch / f"home-{kind}-{start:%Y%m%d}-{end:%Y%m%d}-{abs(hash(json.dumps(extra or {}, sort_keys=True)))}"
    landing = landing_for(files, scratch / f"landing-{start:%Y%m%d}-{end:%Y%m%d}")
    task = {"kind": kind, "files": [str(f) for f in files], "start": start.isoformat(), "end": end.isoformat(),
            "db": str(scratch / f"floor-{kind}.duckdb"), **(extra or {})}
    env = {"CHIMERA_HOME": str(home), "CHIMERA_LANDING_DIR": str(landing)}
    for var in ("CHIMERA_WAREHOUSE", "CHIMERA_DUCKDB_PATH", "CHIMERA_UNIVERSE", "CHIMERA_POLICY_DIR"):
        env[var] = ""
    r = run_child("benchmarks.bench_ingest", task, env=env)
    if r.get("seconds"):
        r["rows_per_s"] = r["rows"] / r["seconds"]
    if r.get("cpu_s"):
        r["rows_per_cpu_s"] = r["rows"] / r["cpu_s"]
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1x = 1 month instead of 1 year (smoke run)")
    ap.add_argument("--sizes", default="1,2,4", help="multiples of the unit to measure (default 1,2,4)")
    ap.add_argument("--end", default="2025-01-01", help="exclusive end date of the generated data")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="cache of generated DBN files")
    ap.add_argument("--no-dagster", action="store_true", help="skip the Dagster-run measurement")
    ap.add_argument("--no-naive", action="store_true", help="skip the naive baseline")
    ap.add_argument("--chunk-dates", type=int, default=0,
                    help="also measure the bounded-memory variant: ingest in blocks of N trade dates")
    ap.add_argument("--naive-sample", type=int, default=200_000)
    ap.add_argument("--no-audit-variant", action="store_true",
                    help="skip the extra 1x ingest without the write audits")
    ap.add_argument("--tag", default="", help="suffix of the results file name (ingest<_tag>.json)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        task = json.loads(args.worker)
        finish_worker(task, WORKERS[task["kind"]](task))
        return 0

    sizes = [int(s) for s in args.sizes.split(",")]
    end = dt.date.fromisoformat(args.end)
    machine = machine_snapshot()
    print(f"machine: {machine['host_cpus']} cpus, {machine['mem_total_gb']} GB, load {machine['loadavg_1_5_15_at_start']}")
    big_start, _ = size_window(max(sizes), args.quick, end)
    files_all, gen_s = ensure_files(args.data_dir, big_start, end)
    print(f"data: {len(files_all)} monthly SYNTHETIC ohlcv-1m files {big_start}..{end} (generation {gen_s:.1f}s, cached)")
    out: dict = {"benchmark": "ingest", "quick": args.quick, "machine": machine, "roots": ROOTS,
                 "unit": "1 month" if args.quick else "1 year", "sizes": {}}
    kinds = ["decode", "insert", "ingest"] + ([] if args.no_dagster else ["dagster"])
    with tempfile.TemporaryDirectory(prefix="chimera-bench-ingest-") as tmp:
        scratch = Path(tmp)
        for size in sizes:
            start, _ = size_window(size, args.quick, end)
            files, _ = ensure_files(args.data_dir, start, end)
            mb = sum(f.stat().st_size for f in files) / 1e6
            res: dict = {"window": [start.isoformat(), end.isoformat()], "files": len(files), "zstd_mb": round(mb, 1)}
            print(f"\n{size}x: {start}..{end} ({len(files)} files, {mb:.0f} MB zstd), load {loadavg()}")
            for kind in kinds:
                r = measure(kind, files, start, end, scratch)
                res[kind] = r
                print(f"  {kind:<8} {r.get('rows', 0):>11,} rows {r.get('seconds', 0):7.2f}s "
                      f"{fmt_rate(r.get('rows_per_s')):>10} (cpu {r.get('cpu_s', 0):6.2f}s "
                      f"{fmt_rate(r.get('rows_per_cpu_s')):>10})  peak RSS {r['peak_rss_mb']:7.0f} MB"
                      + (f"  ERROR {r['error']}" if r.get("error") else ""))
            if size == 1 and not args.no_audit_variant:
                r = measure("ingest", files, start, end, scratch, {"audits": False})
                res["ingest_without_write_audits"] = r
                print(f"  ingest without the write audits: {r.get('seconds', 0):.2f}s {fmt_rate(r.get('rows_per_s'))} "
                      f"(cpu {r.get('cpu_s', 0):.2f}s) peak RSS {r['peak_rss_mb']:.0f} MB")
            if args.chunk_dates:
                r = measure("ingest", files, start, end, scratch, {"chunk_dates": args.chunk_dates})
                res[f"ingest_chunked_{args.chunk_dates}"] = r
                print(f"  ingest in blocks of {args.chunk_dates} dates: {r.get('rows', 0):,} rows "
                      f"{r.get('seconds', 0):.2f}s {fmt_rate(r.get('rows_per_s'))} (cpu {r.get('cpu_s', 0):.2f}s) "
                      f"peak RSS {r['peak_rss_mb']:.0f} MB")
            res["loadavg_after"] = loadavg()
            out["sizes"][f"{size}x"] = res
        if not args.no_naive:
            from benchmarks.bench_naive_baseline import run_naive

            start, _ = size_window(1, args.quick, end)
            files, _ = ensure_files(args.data_dir, start, end)
            out["naive"] = run_naive(files, min(args.naive_sample, 50_000) if args.quick else args.naive_sample)
            print(f"\nnaive baseline: {out['naive']['rows']:,} sample rows in {out['naive']['seconds']:.1f}s -> "
                  f"{out['naive']['rows_per_s']:,.0f} rows/s (extrapolated to the 1x size)")
    out["summary"] = summarize(out, sizes)
    for k, v in out["summary"].items():
        print(f"  {k}: {v}")
    path = save_results(f"ingest{'_' + args.tag if args.tag else ''}", out, args.quick)
    print(f"\nwrote {path}")
    return 0


def summarize(out: dict, sizes: list[int]) -> dict:
    s: dict = {}
    one = out["sizes"].get("1x", {})
    if one.get("ingest", {}).get("rows_per_s"):
        slower_floor = min(one["decode"]["rows_per_s"], one["insert"]["rows_per_s"])
        s["ingest_1x_rows_per_s"] = round(one["ingest"]["rows_per_s"])
        s["slower_floor_1x_rows_per_s"] = round(slower_floor)
        s["ingest_vs_slower_floor"] = round(one["ingest"]["rows_per_s"] / slower_floor, 3)
        if one.get("dagster", {}).get("rows_per_s"):
            s["dagster_run_1x_rows_per_s"] = round(one["dagster"]["rows_per_s"])
        if out.get("naive", {}).get("rows_per_s"):
            s["ingest_vs_naive"] = round(one["ingest"]["rows_per_s"] / out["naive"]["rows_per_s"], 1)
            if out["naive"].get("rows_per_cpu_s") and one["ingest"].get("rows_per_cpu_s"):
                # CPU-time rates: less sensitive to what else the shared machine runs meanwhile.
                s["ingest_vs_naive_cpu"] = round(one["ingest"]["rows_per_cpu_s"] / out["naive"]["rows_per_cpu_s"], 1)
            if one.get("dagster", {}).get("rows_per_s"):
                s["dagster_run_vs_naive"] = round(one["dagster"]["rows_per_s"] / out["naive"]["rows_per_s"], 1)
    top = f"{max(sizes)}x"
    if top != "1x" and out["sizes"].get(top, {}).get("ingest", {}).get("seconds") and one.get("ingest"):
        s[f"ingest_time_ratio_{top}_vs_1x"] = round(out["sizes"][top]["ingest"]["seconds"] / one["ingest"]["seconds"], 2)
        s[f"ingest_rows_ratio_{top}_vs_1x"] = round(out["sizes"][top]["ingest"]["rows"] / one["ingest"]["rows"], 2)
        s[f"ingest_peak_rss_mb_{top}"] = out["sizes"][top]["ingest"]["peak_rss_mb"]
    return s


if __name__ == "__main__":
    sys.exit(main())
