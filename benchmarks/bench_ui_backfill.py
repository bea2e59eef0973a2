"""UI vs CLI for the same range: the real batch, 2 months x 7 roots, through the matrix and the
training tables.

Run from the repository root (heavy; nothing else in parallel):

    .venv/bin/python -m benchmarks.bench_ui_backfill              # 2024-01-02..2024-02-29 x 7 roots
    .venv/bin/python -m benchmarks.bench_ui_backfill --quick      # 2024-01-02..2024-01-12

Measured, each in a fresh CHIMERA_HOME (landing dir = the batch, policy dir = the policy events):

1. ``cli``: ``chimera run`` (subprocess), wall time and the runs it recorded;
2. ``ui_whole_graph``: ``chimera ui`` (dagster dev: webserver + daemon + automation sensor), then a
   GraphQL ``launchRun`` of the ``chimera_whole_graph`` job for the range (the UI's whole-graph path);
   time from launch until the job and every run requested after it (automation) have finished and
   two automation ticks passed without a new run; all runs counted;
3. ``ui_backfill``: on the same server, a GraphQL ``launchPartitionBackfill`` (what the UI's
   Materialize dialog sends) of every date x root asset for every (date, root) of the range, i.e. a
   recompute: time until the backfill, its runs and any automation runs are done; runs counted.

The landing sensor is stopped right after the server loads (the batch sits in the landing directory;
this measures the launched work, not file discovery: bench_incremental covers that).
Results: ``benchmarks/results/ui_backfill.json`` (``-quick`` suffix with ``--quick``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from benchmarks.bench_ingest import ROOTS, loadavg, machine_snapshot, save_results

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
BATCH = SHARED / "databento-batch"
POLICY = SHARED / "policy-events"
LOCATION = {"repositoryLocationName": "chimera", "repositoryName": "__repository__"}
AUTOMATION_TICK_S = 30
MULTI_ASSETS = [
    ["market_data", "databento_futures_ohlcv_1h"], ["features", "session_bars"], ["features", "market_features"],
    ["features", "pivots"], ["features", "golden_zone"], ["features", "consolidated_features"],
    ["features", "daily_ml_matrix"],
]


def _env(home: Path, landing: Path | None = None, extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHIMERA_", "DAGSTER_", "DATABENTO_"))}
    env.update(CHIMERA_HOME=str(home), CHIMERA_LANDING_DIR=str(landing or BATCH), CHIMERA_POLICY_DIR=str(POLICY),
               PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", **(extra or {}))
    return env


def _runs_in(home: Path) -> list[dict]:
    code = ("import json, dagster as dg; i = dg.DagsterInstance.get(); "
            "print(json.dumps([{'job': r.dagster_run.job_name, 'status': r.dagster_run.status.value, "
            "'start': r.start_time, 'end': r.end_time, 'tags': dict(r.dagster_run.tags)} "
            "for r in i.get_run_records()]))")
    env = {**_env(home), "DAGSTER_HOME": str((home / "dagster").resolve())}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else []


def measure_cli(start: str, end: str, roots: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="chimera-bench-cli-") as tmp:
        home = Path(tmp)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "chimera_assets.cli", "run", "--start", start, "--end", end,
                               "--roots", ",".join(roots)], env=_env(home), capture_output=True, text=True,
                              timeout=3600, cwd=REPO)
        wall = time.perf_counter() - t0
        runs = _runs_in(home)
    return {"wall_s": round(wall, 1), "exit": proc.returncode, "runs": len(runs),
            "tail": proc.stdout.splitlines()[-6:]}


class Server:
    def __init__(self, home: Path, landing: Path | None = None, extra_env: dict | None = None):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = home / "chimera_ui.log"
        self.home = home
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "chimera_assets.cli", "ui", "--port", str(self.port)],
                env=_env(home, landing, extra_env),
                cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}/graphql"

    def gql(self, query: str, variables: dict | None = None) -> dict:
        r = requests.post(self.url, json={"query": query, "variables": variables or {}}, timeout=120)
        r.raise_for_status()
        body = r.json()
        if body.get("errors"):
            raise RuntimeError(str(body["errors"])[:2000])
        return body["data"]

    def wait_loaded(self, timeout_s: float = 300) -> None:
        q = "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                entries = self.gql(q)["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["loadStatus"] == "LOADED":
                    return
            except (requests.RequestException, RuntimeError, KeyError, TypeError):
                pass
            time.sleep(1)
        raise RuntimeError("chimera ui did not load the code location")

    def stop_sensor(self, name: str) -> None:
        q = """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { ... on Sensor {
               sensorState { id selectorId } } } }"""
        sel = {**LOCATION, "sensorName": name}
        state = self.gql(q, {"s": sel})["sensorOrError"]["sensorState"]
        res = self.gql("""mutation($o: String!, $s: String!) { stopSensor(jobOriginId: $o, jobSelectorId: $s) {
            __typename ... on StopSensorMutationResult { instigationState { status } } } }""",
                       {"o": state["id"], "s": state["selectorId"]})
        assert res["stopSensor"]["instigationState"]["status"] == "STOPPED", res

    def run_stats(self) -> tuple[int, int]:
        """(runs, runs not finished) in the instance."""
        q = "{ runsOrError(limit: 1000) { ... on Runs { results { status } } } }"
        runs = self.gql(q)["runsOrError"]["results"]
        active = [r for r in runs if r["status"] in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")]
        return len(runs), len(active)

    def backfills_active(self) -> int:
        q = "{ partitionBackfillsOrError(status: REQUESTED) { ... on PartitionBackfills { results { id } } } }"
        return len(self.gql(q)["partitionBackfillsOrError"]["results"])

    def wait_quiet(self, t0: float, runs_before: int, timeout_s: float = 3600) -> dict:
        """Until no run or backfill is active and no new run appeared for two automation ticks."""
        last_change, last_count = time.perf_counter(), -1
        end_busy = t0
        while time.perf_counter() - t0 < timeout_s:
            n, active = self.run_stats()
            busy = active or self.backfills_active()
            if busy or n != last_count:
                last_change = time.perf_counter()
                if busy:
                    end_busy = time.perf_counter()
                last_count = n
            elif time.perf_counter() - last_change > 2 * AUTOMATION_TICK_S + 10:
                return {"wall_s": round(end_busy - t0, 1), "runs": n - runs_before}
            time.sleep(2)
        raise RuntimeError("the UI work did not finish in time")

    def stop(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)  # the process group chimera ui started (ours)
                self.proc.wait(timeout=15)
                return
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue


def _partition_keys(start: str, end: str, roots: list[str]) -> list[str]:
    from chimera_assets.lib.partitions import weekday_dates

    days = weekday_dates(dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    return [f"{d.isoformat()}|{r}" for d in days for r in roots]


def measure_ui(start: str, end: str, roots: list[str]) -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="chimera-bench-ui-") as tmp:
        server = Server(Path(tmp))
        try:
            t_start = time.perf_counter()
            server.wait_loaded()
            server.stop_sensor("chimera_landing_files")
            out["serve_s"] = round(time.perf_counter() - t_start, 1)
            # 1. The whole-graph job (Jobs page -> Launchpad).
            n0, _ = server.run_stats()
            cfg = {"ops": {"run_whole_graph": {"config": {"start": start, "end": end, "roots": ",".join(roots)}}}}
            t0 = time.perf_counter()
            res = server.gql("""mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
                __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""",
                             {"p": {"selector": {**LOCATION, "jobName": "chimera_whole_graph"}, "runConfigData": cfg}})
            assert res["launchRun"]["__typename"] == "LaunchRunSuccess", res
            out["ui_whole_graph"] = server.wait_quiet(t0, n0)
            # 2. An asset backfill of every date x root asset over the range (a recompute).
            n0, _ = server.run_stats()
            t0 = time.perf_counter()
            res = server.gql("""mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
                __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
                             {"p": {"partitionNames": _partition_keys(start, end, roots),
                                    "assetSelection": [{"path": p} for p in MULTI_ASSETS]}})
            assert res["launchPartitionBackfill"]["__typename"] == "LaunchBackfillSuccess", res
            out["ui_backfill"] = server.wait_quiet(t0, n0)
        finally:
            server.stop()
        runs = _runs_in(Path(tmp))
        out["runs_by_job"] = {}
        for r in runs:
            key = f"{r['job']} ({'backfill' if 'dagster/backfill' in r['tags'] else 'automation' if any('automation' in k or 'sensor' in k for k in r['tags']) else 'launched'})"
            out["runs_by_job"][key] = out["runs_by_job"].get(key, 0) + 1
        out["failed_runs"] = sum(r["status"] == "FAILURE" for r in runs)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--start", default="2024-01-02")
    ap.add_argument("--end", default="2024-02-29")
    ap.add_argument("--roots", default=",".join(ROOTS))
    args = ap.parse_args(argv)
    if not BATCH.exists():
        print(f"the real batch {BATCH} is absent; nothing to measure")
        return 2
    start, end = ("2024-01-02", "2024-01-12") if args.quick else (args.start, args.end)
    roots = args.roots.split(",")
    out = {"benchmark": "ui_backfill", "machine": machine_snapshot(), "start": start, "end": end, "roots": roots}
    print(f"{start}..{end} x {','.join(roots)}; load {loadavg()}")
    out["cli"] = measure_cli(start, end, roots)
    print(f"cli: {out['cli']['wall_s']}s, {out['cli']['runs']} runs, exit {out['cli']['exit']}")
    out["ui"] = measure_ui(start, end, roots)
    ui = out["ui"]
    for k in ("ui_whole_graph", "ui_backfill"):
        print(f"{k}: {ui[k]['wall_s']}s, {ui[k]['runs']} runs -> {ui[k]['wall_s'] / out['cli']['wall_s']:.2f}x the CLI")
    print(f"runs by job: {ui['runs_by_job']}; failed runs: {ui['failed_runs']}; load {loadavg()}")
    print(f"wrote {save_results('ui_backfill', out, args.quick)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
