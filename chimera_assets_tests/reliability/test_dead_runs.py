"""Issue 29 item 1: a killed run never stays STARTED.

A ``chimera run`` killed with SIGKILL cannot report its end. The next ``chimera run`` sweeps it
(marked failed); the daemon's run monitoring does the same for UI-launched runs through the
instance's run launcher health check (``chimera_assets/lib/run_health.py``)."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from chimera_assets.lib.instance import get_instance
from chimera_assets.lib.run_health import ChimeraRunLauncher, process_tags, sweep_dead_runs
from chimera_assets_tests.reliability.helpers import Child, child_env


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _started_run(instance: dg.DagsterInstance, tags: dict[str, str]) -> dg.DagsterRun:
    run = instance.create_run_for_job(
        job_def=dg.GraphDefinition(name="g", node_defs=[]).to_job(), tags=tags,
        status=dg.DagsterRunStatus.STARTED,
    )
    return run


def _in_progress(instance: dg.DagsterInstance) -> list[str]:
    return [r.run_id for r in instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS_RUN_STATUSES))]


def test_the_instance_monitors_runs_with_a_health_checking_launcher(tmp_path, monkeypatch):
    monkeypatch.setenv("CHIMERA_HOME", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    instance, _ = get_instance()
    with instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_resume_run_attempts == 0
        assert isinstance(instance.run_launcher, ChimeraRunLauncher)
        dead = _started_run(instance, process_tags(_dead_pid()))
        alive = _started_run(instance, process_tags())
        elsewhere = _started_run(instance, {**process_tags(_dead_pid()), "chimera/host": "another-host"})
        launcher = instance.run_launcher
        assert launcher.check_run_worker_health(dead).status.value == "FAILED"
        assert launcher.check_run_worker_health(alive).status.value == "RUNNING"
        assert launcher.check_run_worker_health(elsewhere).status.value == "UNKNOWN"
        # The daemon's monitoring iteration uses that check: the dead run fails, the others stay.
        from dagster._daemon.monitoring.run_monitoring import monitor_started_run

        for run in (dead, alive):
            monitor_started_run(instance, None, instance.get_run_record_by_id(run.run_id),
                                logging.getLogger("test"))
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
        # A run launched by the UI records its worker's pid in an engine event, not in a tag.
        ui_run = _started_run(instance, {})
        instance.report_engine_event(
            f"Started process for run (pid: {_dead_pid()}).", ui_run,
            EngineEventData.in_process(_dead_pid()),
        )
        assert sweep_dead_runs(instance) == [ui_run.run_id]
        assert set(_in_progress(instance)) == {alive.run_id, elsewhere.run_id}


@pytest.mark.slow  # real CLI processes (~25 s); CI runs the slow group too
def test_a_chimera_run_killed_with_sigkill_is_marked_failed_by_the_rerun(tmp_path):
    """A real ``chimera run`` killed during its market-data stage, then run again: no run of the
    instance is left STARTED (the queue would count it; automation would see it in progress)."""
    exe = str(Path(sys.executable).parent / "chimera")
    argv = [exe, "run", "--demo", "--roots", "ZL", "--start", date(2024, 3, 4).isoformat(),
            "--end", date(2024, 3, 6).isoformat(), "--no-training"]
    home = tmp_path / "home"
    env = child_env(CHIMERA_HOME=str(home))
    env.pop("CHIMERA_LANDING_DIR", None)
    killed = Child(argv, tmp_path, "killed-run", env)
    killed.wait_until(lambda: "[3/" in killed.stdout, 180, "the market-data stage")
    runs_db = home / "dagster" / "history" / "runs.db"

    def a_run_started() -> bool:
        if not runs_db.exists():
            return False
        with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster"))) as inst:
            return bool(_in_progress(inst))

    killed.wait_until(a_run_started, 120, "a STARTED run of the market-data stage")
    killed.kill9()
    rerun = Child(argv, tmp_path, "rerun", env)
    assert rerun.wait(600) in (0, 1) and "result: SUCCESS" in rerun.stdout, rerun.describe()
    assert "marked failed" in rerun.stderr, rerun.describe()
    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster")))
    with instance:
        runs = instance.get_runs()
        assert runs, "no run recorded"
        assert _in_progress(instance) == [], [(r.run_id, r.status) for r in runs]
        assert any(r.status == dg.DagsterRunStatus.FAILURE for r in runs), [r.status for r in runs]
