"""Full graph: the real Databento batch (ohlcv-1h) for 7 roots through every asset to the matrix and
the training tables with ``runner.run_graph`` (what ``chimera run`` does), plus Dagster's own
bookkeeping measured alone on the same partitions.

Run from the repository root (one heavy benchmark at a time):

    .venv/bin/python -m benchmarks.bench_full_graph            # 2024-01-01..2025-12-15 x 7 roots
    .venv/bin/python -m benchmarks.bench_full_graph --quick    # one month x 7 roots (smoke run)
    .venv/bin/python -m benchmarks.bench_full_graph --variants default,planned_subset,sqlite

Each measurement runs in a FRESH subprocess with its own temporary CHIMERA_HOME
(``CHIMERA_LANDING_DIR`` = the batch, ``CHIMERA_POLICY_DIR`` = the policy events); peak RSS is the
child's ru_maxrss. Reported per run launched: wall time, planned-event time (run created -> run
started), and per step (asset) from ``instance.get_run_step_stats(run_id)``, split with the run's
event log into

* ``compute_s``: STEP_START -> the step's first ASSET_MATERIALIZATION (inputs read, our code, the
  MERGE into DuckDB: everything the project does), and
* ``bookkeeping_s``: first ASSET_MATERIALIZATION -> STEP_SUCCESS (Dagster storing one
  materialization event per partition).

Variants (each a complete fresh run; the default list is ``default,planned_subset``):

* ``default``        the CLI: ephemeral (in-memory SQLite) instance, in-process executor.
* ``planned_subset`` + ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=1``: one
                     ASSET_MATERIALIZATION_PLANNED event per asset instead of one per partition.
* ``sqlite``         a persistent instance (temporary ``DAGSTER_HOME``), as under ``dagster dev``.

``--noop`` (on by default) also times a graph of no-op assets with the same partitions definition,
the same dependency shape (the 7 date x root assets `chimera run` runs on the real batch) and the same metadata as the IO manager emits, in
the same kind of instance: that is Dagster's bookkeeping floor for the run, with no project code.

Results: ``benchmarks/results/full_graph.json`` (``full_graph-quick.json`` with ``--quick``).
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

from benchmarks.bench_ingest import (
    ROOTS,
    finish_worker,
    loadavg,
    machine_snapshot,
    quiet_dagster,
    run_child,
    save_results,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BATCH = SHARED / "databento-batch"
POLICY = SHARED / "policy-events"
_PLANNED = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1"}
VARIANT_ENV = {
    "default": {},
    "planned_subset": _PLANNED,
    "sqlite": {},
    # Instance comparisons (issue 15): planned-subset events on everywhere, batching on or off.
    "memory": {**_PLANNED, "DAGSTER_EVENT_BATCH_SIZE": "0"},
    "sqlite_stock": {**_PLANNED, "DAGSTER_EVENT_BATCH_SIZE": "0"},
    "sqlite_batched": {**_PLANNED, "DAGSTER_EVENT_BATCH_SIZE": "1000"},
    "postgres_stock": {**_PLANNED, "DAGSTER_EVENT_BATCH_SIZE": "0"},
    "postgres_batched": {**_PLANNED, "DAGSTER_EVENT_BATCH_SIZE": "1000"},
    # What `chimera run` uses by default: $CHIMERA_HOME/dagster with the dagster.yaml chimera writes.
    "chimera": {},
}

# --------------------------------------------------------------------------------------------------
# Per-run breakdown from the Dagster instance
# --------------------------------------------------------------------------------------------------


def run_breakdown(instance, run_id: str) -> dict:
    """Wall, planned-event and per-step compute/bookkeeping seconds of one run."""
    import dagster as dg

    rec = instance.get_run_record_by_id(run_id)
    run = rec.dagster_run
    created = rec.create_timestamp.timestamp()
    started, ended = rec.start_time or created, rec.end_time or created
    ET = dg.DagsterEventType
    logs = instance.all_logs(
        run_id, of_type={ET.STEP_START, ET.STEP_SUCCESS, ET.STEP_FAILURE, ET.ASSET_MATERIALIZATION}
    )
    first_mat: dict[str, float] = {}
    n_mat: dict[str, int] = {}
    for e in logs:
        if e.dagster_event and e.dagster_event.event_type == ET.ASSET_MATERIALIZATION and e.step_key:
            first_mat.setdefault(e.step_key, e.timestamp)
            n_mat[e.step_key] = n_mat.get(e.step_key, 0) + 1
    steps = {}
    for s in instance.get_run_step_stats(run_id):
        t0, t1 = s.start_time or 0.0, s.end_time or 0.0
        fm = first_mat.get(s.step_key, t1)
        steps[s.step_key] = {
            "status": str(s.status.value if s.status else None),
            "seconds": round(t1 - t0, 3),
            "compute_s": round(fm - t0, 3),
            "bookkeeping_s": round(t1 - fm, 3),
            "materializations": n_mat.get(s.step_key, 0),
        }
    return {
        "run_id": run_id,
        "tags": {k: v for k, v in run.tags.items() if "partition_range" in k},
        "status": str(run.status.value),
        "wall_s": round(ended - created, 3),
        "planned_events_s": round(started - created, 3),
        "steps": steps,
    }


def all_runs(instance) -> list[dict]:
    recs = sorted(instance.get_run_records(), key=lambda r: r.create_timestamp)
    return [run_breakdown(instance, r.dagster_run.run_id) for r in recs]


def _postgres_database() -> str:
    """A fresh database on the benchmark's PostgreSQL (``CHIMERA_TEST_POSTGRES_URL``, e.g. from
    ``bash .ci/postgres.sh start``); its psycopg2 URL."""
    import uuid

    import sqlalchemy as sa

    url = os.environ.get("CHIMERA_TEST_POSTGRES_URL")
    if not url:
        raise SystemExit("postgres variants need CHIMERA_TEST_POSTGRES_URL (bash .ci/postgres.sh start)")
    name = f"chimera_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.rsplit("/", 1)[0] + "/" + name


def _instance(variant: str, home: Path):
    import dagster as dg

    dh = home / "dagster_home"
    if variant in ("sqlite", "sqlite_stock"):
        dh.mkdir(parents=True, exist_ok=True)
        (dh / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        os.environ["DAGSTER_HOME"] = str(dh)
        return dg.DagsterInstance.get()
    if variant in ("sqlite_batched", "chimera"):
        from chimera_assets.lib.instance import get_instance

        if variant == "sqlite_batched":
            os.environ["DAGSTER_HOME"] = str(dh)
        instance, _status = get_instance()  # chimera's dagster.yaml (batching SQLite event storage)
        return instance
    if variant.startswith("postgres"):
        dh.mkdir(parents=True, exist_ok=True)
        (dh / "dagster.yaml").write_text(
            f"telemetry:\n  enabled: false\nstorage:\n  postgres:\n    postgres_url: {_postgres_database()}\n"
        )
        os.environ["DAGSTER_HOME"] = str(dh)
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


# --------------------------------------------------------------------------------------------------
# Workers
# --------------------------------------------------------------------------------------------------


def worker_graph(task: dict) -> dict:
    from chimera_assets.definitions import build_definitions
    from chimera_assets.lib.runner import run_graph, table_row_counts
    from chimera_assets.warehouse import get_warehouse

    quiet_dagster()
    home = Path(os.environ["CHIMERA_HOME"])
    instance = _instance(task["variant"], home)
    defs = build_definitions()
    wh = get_warehouse()
    start, end = dt.date.fromisoformat(task["start"]), dt.date.fromisoformat(task["end"])
    lines: list[str] = []
    t0 = time.perf_counter()
    summary = run_graph(defs, start, end, task["roots"], instance, wh, progress=lines.append)
    wall = time.perf_counter() - t0
    stage_sum = sum(s.seconds for s in summary.stages)
    t1 = time.perf_counter()
    table_row_counts(wh, task["roots"])
    row_count_s = time.perf_counter() - t1
    return {
        "success": summary.success,
        "wall_s": round(wall, 3),
        "runs_launched": instance.get_runs_count(),
        "stages": [{"name": s.name, "seconds": round(s.seconds, 3), "partitions": s.partitions, "ok": s.success,
                    "error": s.error} for s in summary.stages],
        "after_stages_s": round(wall - stage_sum, 3),
        "table_row_counts_s": round(row_count_s, 3),
        "rows_per_table": summary.rows_per_table,
        "runs": all_runs(instance),
        "progress": lines,
    }


NOOP_ASSETS = 7  # the date x root assets `chimera run` runs on the real batch (raw 1h -> ... -> matrix)


def noop_definitions(metadata: str, n_assets: int = NOOP_ASSETS):
    """``n_assets`` no-op date x root assets shaped like the real graph's (same partitions definition,
    a chain of dependencies) returning the metadata the IO manager records per write."""
    import dagster as dg

    from chimera_assets.lib.io_manager import row_count_metadata, written_metadata
    from chimera_assets.lib.partitions import date_symbol_partitions
    from chimera_assets.schemas import OHLCV_1H
    from chimera_assets.warehouse.duckdb_backend import DuckDBWarehouse

    table_md = written_metadata(OHLCV_1H, DuckDBWarehouse("unused.duckdb"))

    def make(i: int, dep):
        @dg.asset(name=f"noop_{i:02d}", partitions_def=date_symbol_partitions(),
                  backfill_policy=dg.BackfillPolicy.single_run(), deps=[dep] if dep else [])
        def _noop(context):  # no annotations: this module uses postponed (string) annotations
            md: dict = {}
            if metadata == "io_manager":
                n = len(context.partition_keys)
                md = {**table_md, **row_count_metadata(n, n)}
            return dg.MaterializeResult(metadata=md)

        return _noop

    assets, prev = [], None
    for i in range(n_assets):
        a = make(i, prev)
        assets.append(a)
        prev = a.key
    return dg.Definitions(assets=assets, executor=dg.in_process_executor)


def worker_noop(task: dict) -> dict:
    from chimera_assets.lib.partitions import weekday_dates
    from chimera_assets.lib.runner import QUIET

    quiet_dagster()
    instance = _instance(task["variant"], Path(os.environ["CHIMERA_HOME"]))
    defs = noop_definitions(task.get("metadata", "io_manager"))
    dates = weekday_dates(dt.date.fromisoformat(task["start"]), dt.date.fromisoformat(task["end"]))
    roots = task["roots"]
    job = defs.resolve_implicit_global_asset_job_def()
    t0 = time.perf_counter()
    res = job.execute_in_process(
        instance=instance, run_config=QUIET,
        tags={"dagster/asset_partition_range_start": f"{dates[0]}|{roots[0]}",
              "dagster/asset_partition_range_end": f"{dates[-1]}|{roots[-1]}"},
    )
    wall = time.perf_counter() - t0
    n = len(dates) * len(roots)
    return {"success": res.success, "wall_s": round(wall, 3), "partitions": n, "assets": NOOP_ASSETS,
            "ms_per_partition_per_asset": round(1000 * wall / (n * NOOP_ASSETS), 3),
            "runs": [run_breakdown(instance, res.run_id)]}


def worker_bare(task: dict) -> dict:
    """The same session bars and features computed by a bare pandas script: no Dagster, no
    warehouse (see ``benchmarks/bare_pandas.py``)."""
    from benchmarks.bare_pandas import compute_all

    t0 = time.perf_counter()
    out = compute_all(BATCH, dt.date.fromisoformat(task["start"]), dt.date.fromisoformat(task["end"]), task["roots"])
    return {"success": True, "wall_s": round(time.perf_counter() - t0, 3), **out}


WORKERS = {"graph": worker_graph, "noop": worker_noop, "bare": worker_bare}

# --------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------

STAGE_OF_STEP = {
    "market_data__databento_futures_ohlcv_1h": "ingest (ohlcv-1h)",
    "market_data__databento_futures_ohlcv_1m": "ingest (other raw: 1m)",
    "market_data__databento_futures_ohlcv_1d": "ingest (other raw: 1d)",
    "market_data__databento_futures_statistics": "ingest (other raw: statistics)",
    "market_data__databento_definitions": "ingest (other raw: definitions)",
    "features__session_bars": "session bars",
    "features__market_features": "features: market",
    "features__pivots": "features: pivots",
    "features__golden_zone": "features: golden zone",
    "features__policy_features": "features: policy",
    "features__consolidated_features": "consolidated",
    "features__daily_ml_matrix": "matrix",
}


def stage_table(result: dict) -> list[dict]:
    """One row per step across the runs: the stage name, seconds, compute and bookkeeping."""
    rows = []
    for run in result.get("runs", []):
        for key, s in run["steps"].items():
            name = STAGE_OF_STEP.get(key) or ("training" if key.startswith("training__") and key.endswith("_daily")
                                              else key)
            rows.append({"stage": name, "step": key, **{k: s[k] for k in ("seconds", "compute_s", "bookkeeping_s",
                                                                             "materializations")}})
    return rows


def print_graph(label: str, r: dict) -> None:
    print(f"\n{label}: wall {r.get('wall_s', 0):.1f}s, runs launched {r.get('runs_launched')}, "
          f"peak RSS {r['peak_rss_mb']:.0f} MB, success {r.get('success')}" + (f", ERROR {r['error']}" if r.get("error") else ""))
    for st in r.get("stages", []):
        print(f"   run stage {st['name'][:70]:<70} {st['seconds']:8.1f}s")
    for run in r.get("runs", []):
        if run["planned_events_s"] > 0.5:
            print(f"   planned events of run {run['run_id'][:8]}: {run['planned_events_s']:.1f}s")
    agg: dict[str, list[float]] = {}
    for row in stage_table(r):
        a = agg.setdefault(row["stage"], [0.0, 0.0, 0.0, 0])
        a[0] += row["seconds"]
        a[1] += row["compute_s"]
        a[2] += row["bookkeeping_s"]
        a[3] += row["materializations"]
    print(f"   {'step':<34}{'total s':>9}{'compute s':>11}{'bookkeep s':>12}{'events':>8}")
    for name, (tot, comp, book, n) in agg.items():
        print(f"   {name:<34}{tot:9.1f}{comp:11.1f}{book:12.1f}{n:8d}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one month (2024-03-01..2024-03-29) x 7 roots")
    ap.add_argument("--start", default="2024-01-01")
    ap.add_argument("--end", default="2025-12-15")
    ap.add_argument("--roots", default=",".join(ROOTS))
    ap.add_argument("--variants", default="default,planned_subset",
                    help=f"comma-separated, from {sorted(VARIANT_ENV)}")
    ap.add_argument("--no-noop", action="store_true", help="skip the no-op (Dagster-only) runs")
    ap.add_argument("--no-graph", action="store_true", help="only the no-op (Dagster-only) runs")
    ap.add_argument("--bare", action="store_true", help="also a bare pandas computation of the same range")
    ap.add_argument("--tag", default="", help="suffix of the results file name (full_graph<_tag>.json)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        task = json.loads(args.worker)
        finish_worker(task, WORKERS[task["kind"]](task))
        return 0
    if not BATCH.exists():
        print(f"the real batch {BATCH} is absent; nothing to measure")
        return 2
    start, end = (("2024-03-01", "2024-03-29") if args.quick else (args.start, args.end))
    roots = args.roots.split(",")
    machine = machine_snapshot()
    print(f"machine: {machine['host_cpus']} cpus, {machine['mem_total_gb']} GB, load {machine['loadavg_1_5_15_at_start']}")
    print(f"full graph {start}..{end} x {','.join(roots)} from {BATCH}")
    out: dict = {"benchmark": "full_graph", "quick": args.quick, "machine": machine, "start": start, "end": end,
                 "roots": roots, "variants": {}, "noop": {}}
    for variant in args.variants.split(","):
        with tempfile.TemporaryDirectory(prefix="chimera-bench-graph-") as home:
            env = {"CHIMERA_HOME": home, "CHIMERA_LANDING_DIR": str(BATCH), "CHIMERA_POLICY_DIR": str(POLICY),
                   "CHIMERA_WAREHOUSE": "", "CHIMERA_DUCKDB_PATH": "", "CHIMERA_UNIVERSE": "",
                   **VARIANT_ENV[variant]}
            load0 = loadavg()
            if not args.no_graph:
                r = run_child("benchmarks.bench_full_graph",
                              {"kind": "graph", "variant": variant, "start": start, "end": end, "roots": roots},
                              env=env)
                r["loadavg_before"], r["loadavg_after"] = load0, loadavg()
                r["stage_table"] = stage_table(r)
                out["variants"][variant] = r
                print_graph(f"graph [{variant}]", r)
            if not args.no_noop:
                n = run_child("benchmarks.bench_full_graph",
                              {"kind": "noop", "variant": variant, "start": start, "end": end, "roots": roots,
                               "metadata": "io_manager"}, env=env)
                out["noop"][variant] = n
                run = n.get("runs", [{}])[0]
                book = sum(s["bookkeeping_s"] for s in run.get("steps", {}).values())
                print(f"   no-op graph [{variant}]: {NOOP_ASSETS} assets x {n.get('partitions')} partitions: wall {n.get('wall_s', 0):.1f}s "
                      f"({n.get('ms_per_partition_per_asset')} ms per partition per asset; planned events "
                      f"{run.get('planned_events_s', 0):.1f}s, materialization events {book:.1f}s), "
                      f"peak RSS {n['peak_rss_mb']:.0f} MB")
    if args.bare:
        b = run_child("benchmarks.bench_full_graph", {"kind": "bare", "start": start, "end": end, "roots": roots})
        out["bare_pandas"] = b
        print(f"\nbare pandas: wall {b.get('wall_s', 0):.1f}s, peak RSS {b['peak_rss_mb']:.0f} MB, "
              f"{b.get('sessions')} session rows, {b.get('feature_rows')} feature rows")
        for variant, r in out["variants"].items():
            if b.get("wall_s") and r.get("wall_s"):
                print(f"  {variant}: {r['wall_s'] / b['wall_s']:.2f}x the bare pandas computation")
    out["summary"] = summarize(out)
    for k, v in out["summary"].items():
        print(f"  {k}: {v}")
    path = save_results(f"full_graph{'_' + args.tag if args.tag else ''}", out, args.quick)
    print(f"\nwrote {path}")
    return 0


def summarize(out: dict) -> dict:
    s: dict = {}
    for variant, r in out["variants"].items():
        rows = stage_table(r)
        compute = sum(x["compute_s"] for x in rows)
        book = sum(x["bookkeeping_s"] for x in rows)
        planned = sum(run["planned_events_s"] for run in r.get("runs", []))
        s[variant] = {
            "wall_s": r.get("wall_s"),
            "runs_launched": r.get("runs_launched"),
            "peak_rss_mb": r.get("peak_rss_mb"),
            "steps_compute_s": round(compute, 1),
            "materialization_bookkeeping_s": round(book, 1),
            "planned_events_s": round(planned, 1),
            "other_s": round((r.get("wall_s") or 0) - compute - book - planned, 1),
            "noop_graph_wall_s": out["noop"].get(variant, {}).get("wall_s"),
        }
    return s


if __name__ == "__main__":
    sys.exit(main())
