"""Runs whose process is gone: found and marked failed, so none stays ``STARTED`` forever.

A run killed by ``kill -9`` (an OOM kill, a power loss) never reports its end: its record says
``STARTED`` for ever, the queued run coordinator counts it against ``max_concurrent_runs`` (four such
runs block every UI and sensor run) and automation sees its planned partitions "in progress".

Two mechanisms close it, both with the same health check (:func:`run_worker_health`):

* :class:`ChimeraRunLauncher`, the instance's run launcher (``dagster.yaml`` of
  ``lib/instance.py``): Dagster's default launcher plus ``check_run_worker_health``, so the daemon's
  run monitoring (on in that file) fails a run whose worker process is gone. Dagster's own launcher
  offers no health check, so monitoring could only time out runs that never started.
* :func:`sweep_dead_runs`, called by ``chimera run`` before its first run: the CLI's runs execute in
  the CLI process (``execute_in_process``), so a killed CLI run is swept by the next CLI command even
  when no daemon runs.

Where the process is: CLI runs carry ``chimera/pid`` and ``chimera/host`` tags (:func:`process_tags`);
runs launched by the UI/daemon record their worker's pid in the "Started process for run" engine
event. A pid is "gone" when no process has it or the process that has it started after the run's
recorded process start (pid reuse). Runs of another host, or without a pid, are left alone.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import dagster as dg
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher

PID_TAG, HOST_TAG = "chimera/pid", "chimera/host"
#: statuses of a run that still claims a process (the queue counts STARTING/STARTED as in progress)
LIVE_STATUSES = (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING)


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux ``/proc``), None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    # Field 22; the command name (field 2) may hold spaces, so split after its closing parenthesis.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def process_tags(pid: int | None = None) -> dict[str, str]:
    """Tags naming the process that executes a run in-process: ``pid[:start ticks]`` and the host."""
    pid = os.getpid() if pid is None else pid
    ticks = _start_ticks(pid)
    return {PID_TAG: f"{pid}:{ticks}" if ticks else str(pid), HOST_TAG: socket.gethostname()}


def _alive(pid: int, ticks: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # a process of another user has the pid: alive
    if ticks is not None:
        now = _start_ticks(pid)
        if now is not None and now != ticks:
            return False  # the pid was reused by a newer process
    return True


def _local_storage(instance: dg.DagsterInstance) -> bool:
    """A SQLite run storage lives on this machine, so the runs it records ran here (a Postgres one may
    hold runs of other machines, whose engine-event pids say nothing about this one)."""
    from dagster._core.storage.runs import SqliteRunStorage

    return isinstance(instance.run_storage, SqliteRunStorage)


def _worker_pid(instance: dg.DagsterInstance, run: dg.DagsterRun) -> tuple[int, str | None] | None:
    tags: Mapping[str, str] = run.tags or {}
    if PID_TAG in tags:
        if tags.get(HOST_TAG) not in (None, socket.gethostname()):
            return None  # another machine's process: not ours to judge
        pid, _, ticks = tags[PID_TAG].partition(":")
        return (int(pid), ticks or None) if pid.isdigit() else None
    if not _local_storage(instance):
        return None
    records = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=20
    ).records
    for rec in records:
        event = rec.event_log_entry.dagster_event
        data = getattr(event, "event_specific_data", None) if event else None
        md = getattr(data, "metadata", None) or {}
        pid = md.get("pid")
        if pid is not None and str(getattr(pid, "value", pid)).isdigit():
            return int(getattr(pid, "value", pid)), None
    return None


def run_worker_health(instance: dg.DagsterInstance, run: dg.DagsterRun) -> CheckRunHealthResult:
    """RUNNING while the run's process lives, FAILED once it is gone, UNKNOWN when it is not known."""
    found = _worker_pid(instance, run)
    if found is None:
        return CheckRunHealthResult(WorkerStatus.UNKNOWN, "no process recorded for the run")
    pid, ticks = found
    if _alive(pid, ticks):
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"process {pid} is running")
    return CheckRunHealthResult(WorkerStatus.FAILED, f"the run's process {pid} is gone (killed or crashed)")


class ChimeraRunLauncher(DefaultRunLauncher):
    """Dagster's default launcher plus the health check run monitoring needs."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        return run_worker_health(self._instance, run)


def sweep_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark every STARTING/STARTED/CANCELING run whose process is gone as failed (canceled for a run
    being canceled); returns their run ids. Runs on other hosts or without a known process stay."""
    swept = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=list(LIVE_STATUSES))):
        health = run_worker_health(instance, run)
        if health.status != WorkerStatus.FAILED:
            continue
        msg = f"{health.msg}; marked by chimera's dead-run sweep (lib/run_health.py)"
        if run.status == dg.DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, msg)
        else:
            instance.report_run_failed(run, msg)
        swept.append(run.run_id)
    return swept
