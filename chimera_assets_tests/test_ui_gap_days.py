"""Issue 22 through the UI paths: a partition backfill launched through GraphQL (what the asset page's
"Materialize" -> partitions -> Launch backfill sends) and the whole-graph job from the Launchpad, over
a real range holding a gap day (Labor Day 2025-09-01 with no ES and CL bars in the real batch's files,
crafted with tests' gap_files), against a real ``dagster dev``. Both finish successfully, publish every
other partition, and record the gap partitions with 0 rows and their reason. Skipped without
../shared/data."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date

import pytest
import requests

from chimera_assets.trade_calendar import weekday_dates
from chimera_assets_tests.conftest import shared_data
from chimera_assets_tests.gap_files import drop_records, on_day
from chimera_assets_tests.test_ui_e2e import REPO, DevServer, _count, _stop, _wait_until_loaded, launch_ui

ROOTS = ["ES", "CL"]
START, END, LABOR_DAY = date(2025, 8, 25), date(2025, 9, 5), date(2025, 9, 1)
FILES = ("glbx-mdp3-20250801-20250831.ohlcv-1h.dbn.zst", "glbx-mdp3-20250901-20250930.ohlcv-1h.dbn.zst")
FEATURES = [["features", n] for n in ("session_bars", "market_features", "pivots", "golden_zone",
                                      "consolidated_features", "daily_ml_matrix")]
TIMEOUT_S = 600

BACKFILL = """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  ... on InvalidSubsetError { message } ... on UnauthorizedError { message } } }"""
BACKFILL_STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status runs(limit: 100) { runId status } } } }"""
LAUNCH_RUN = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } ... on RunConfigValidationInvalid
  { errors { message } } } }"""
RUN_STATUS = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""
SESSION_META = """query($path: [String!]!, $pk: String!) { assetNodes(assetKeys: [{path: $path}]) {
  assetMaterializations(partitions: [$pk], limit: 1) { runId metadataEntries { label
    ... on JsonMetadataEntry { jsonString } ... on IntMetadataEntry { intValue } } } } }"""


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    batch = shared_data("databento-batch")
    root = tmp_path_factory.mktemp("ui_gaps")
    home, landing = root / "chimera_home", root / "landing"
    landing.mkdir()
    for name in FILES:
        assert drop_records(next(batch.rglob(name)), landing / name.removesuffix(".zst"),
                            on_day(ROOTS, LABOR_DAY)) > 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHIMERA_", "DATABENTO_", "DAGSTER_"))}
    env.update(CHIMERA_HOME=str(home), CHIMERA_LANDING_DIR=str(landing), CHIMERA_SENSOR_INTERVAL_S="5",
               PYTHONUNBUFFERED="1")
    # The raw bars, as a user's first `chimera run` leaves them; the UI then rebuilds the features.
    done = subprocess.run(
        [sys.executable, "-m", "chimera_assets.cli", "run", "--start", START.isoformat(), "--end", END.isoformat(),
         "--roots", ",".join(ROOTS), "--no-training"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "no_trades: " in done.stdout and f"{LABOR_DAY}|ES" in done.stdout, done.stdout[-3000:]
    server = launch_ui(env, root, home, landing)
    try:
        _wait_until_loaded(server)
        yield server
    finally:
        _stop(server.proc)


def _wait(fetch, done, what: str, server: DevServer):
    deadline = time.monotonic() + TIMEOUT_S
    value = None
    while time.monotonic() < deadline:
        try:
            value = fetch()
        except requests.RequestException:
            value = None
        if value is not None and done(value):
            return value
        time.sleep(2)
    pytest.fail(f"{what} did not finish in {TIMEOUT_S}s (last: {value}):\n{server.log_tail()}")


def _assert_gap_partition_is_explained(server: DevServer) -> None:
    for root in ROOTS:
        pk = f"{LABOR_DAY}|{root}"
        mats = server.graphql(SESSION_META, {"path": ["features", "session_bars"], "pk": pk})["assetNodes"][0]
        entries = {e["label"]: e for e in mats["assetMaterializations"][0]["metadataEntries"]}
        assert "chimera/no_trades" in entries and pk in entries["chimera/no_trades"]["jsonString"], entries.keys()
        assert _count(server.home, "features.daily_ml_matrix", "symbol = $1 AND data_date = $2",
                      [root, LABOR_DAY]) == 0
    sessions = [d for d in weekday_dates(START, END) if d != LABOR_DAY]
    for root in ROOTS:
        n = _count(server.home, "features.daily_ml_matrix", "symbol = $1 AND data_date BETWEEN $2 AND $3",
                   [root, START, END])
        assert n == len(sessions), (root, n)


@pytest.mark.slow
def test_a_ui_partition_backfill_over_a_gap_day_succeeds_and_explains_it(dev):
    keys = [f"{d}|{r}" for d in weekday_dates(START, END) for r in ROOTS]
    params = {"partitionNames": keys, "assetSelection": [{"path": p} for p in FEATURES], "fromFailure": False}
    t0 = time.monotonic()
    res = dev.graphql(BACKFILL, {"p": params})["launchPartitionBackfill"]
    assert res["__typename"] == "LaunchBackfillSuccess", res
    final = _wait(lambda: dev.graphql(BACKFILL_STATUS, {"id": res["backfillId"]})["partitionBackfillOrError"],
                  lambda b: b["status"] not in ("REQUESTED",), "the backfill", dev)
    print(f"backfill {res['backfillId']}: {final['status']} in {time.monotonic() - t0:.1f}s, "
          f"{len(final['runs'])} run(s)")
    assert final["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), final
    assert final["runs"] and all(r["status"] == "SUCCESS" for r in final["runs"]), final["runs"]
    _assert_gap_partition_is_explained(dev)


@pytest.mark.slow
def test_the_whole_graph_job_over_a_gap_day_succeeds(dev):
    config = {"ops": {"run_whole_graph": {"config": {"start": START.isoformat(), "end": END.isoformat(),
                                                      "roots": ",".join(ROOTS)}}}}
    params = {"selector": {"repositoryLocationName": "chimera", "repositoryName": "__repository__",
                           "jobName": "chimera_whole_graph"}, "runConfigData": config}
    res = dev.graphql(LAUNCH_RUN, {"p": params})["launchRun"]
    assert res["__typename"] == "LaunchRunSuccess", res
    run_id = res["run"]["runId"]
    status = _wait(lambda: dev.graphql(RUN_STATUS, {"id": run_id})["runOrError"]["status"],
                   lambda s: s in ("SUCCESS", "FAILURE", "CANCELED"), "the whole-graph run", dev)
    assert status == "SUCCESS", dev.log_tail()
    _assert_gap_partition_is_explained(dev)
