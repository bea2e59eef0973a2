"""The one Dagster instance of chimera: where it lives, its dagster.yaml, and the environment its
processes need. ``chimera run``, ``chimera ui`` (and so the sensors and the UI) resolve it here.

| env var | default | meaning |
|---|---|---|
| DAGSTER_HOME | $CHIMERA_HOME/dagster | the instance: run history, event log, sensor cursors |
| DAGSTER_EVENT_BATCH_SIZE | 1000 | events of a ranged run stored per batch (0 = one by one) |
| DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS | 1 | one "planned" event per asset and run |
| DAGSTER_MAX_PARTITIONS_FOR_DA_TIMESTAMP_FETCH | 400 | automation: exact update times up to this many partitions per tick |

The dagster.yaml written here keeps the stock SQLite layout of a Dagster home (``history/runs.db``,
``history/runs/*.db``, ``schedules/``) with the batching event log storage of
``chimera_assets/lib/event_storage.py``. Its first lines carry a hash of the content: while the hash
matches, chimera may rewrite the file (e.g. the home moved, or a newer chimera template); once a
user edits it (hash mismatch) or wrote it without the header, chimera leaves it as it is and says so.
Production (Postgres): docs/deployment.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from chimera_assets.settings import dagster_home_env, get_settings, process_env, set_process_defaults

HEADER = "# Written by chimera (chimera_assets/lib/instance.py). Edit freely: once edited, chimera leaves it as it is."
HASH_PREFIX = "# chimera-template-sha256: "
EVENT_STORAGE_CLASS = "BatchingSqliteEventLogStorage"
# Dagster reads both in the process that stores the events: the run worker (materializations) and
# the webserver/daemon (the planned events of the runs they create).
BOOKKEEPING_ENV = {
    # 1000 events per storage call: a ranged run over 7 roots x 2 years writes ~3,500 materializations
    # per asset in 4 transactions instead of 3,500 (DESIGN_NOTES "Dagster event bookkeeping at scale").
    "DAGSTER_EVENT_BATCH_SIZE": "1000",
    # One planned event per asset and run instead of one per partition (planned events are not
    # batched by SQLite nor Postgres). Trade-off: the partitions of a failed run are not marked failed.
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1",
    # Read where automation is evaluated (the code server: the automation sensor runs there). Above
    # this many partitions updated in one tick, Dagster stamps them all with the tick time, so a
    # parent and its child updated by the same backfill run look simultaneous and the child is
    # requested again (seen after a 43-date x 7-root UI backfill: 301 partitions). Dagster's default
    # is 100. Not higher: the exact times cost ~4 ms per partition and asset per tick, and a tick
    # over 60 s times out (3,584 partitions did, with 20,000 here) and never advances its cursor.
    "DAGSTER_MAX_PARTITIONS_FOR_DA_TIMESTAMP_FETCH": "400",
}


@dataclass(frozen=True)
class HomeStatus:
    """What ``ensure_dagster_home`` found or did: ``written`` (new file), ``updated`` (an unedited
    chimera file rewritten), ``current`` (unchanged), ``user`` (edited or foreign file, kept)."""

    home: Path
    config: Path
    state: str
    batched: bool

    @property
    def notice(self) -> str | None:
        """A line for the user when their own dagster.yaml is kept (never silent)."""
        if self.state != "user":
            return None
        how = "uses" if self.batched else "does NOT use"
        return (
            f"{self.config} was edited or not written by chimera: kept as it is; it {how} a batching "
            f"event log storage (see docs/operations.md, 'The Dagster instance')"
        )


def dagster_home(env: Mapping[str, str] | None = None) -> Path:
    """``DAGSTER_HOME`` when set, else ``$CHIMERA_HOME/dagster`` (absolute: Dagster requires it).
    ``env``: the environment to resolve from (default: this process's)."""
    raw = dagster_home_env(env)
    home = Path(raw).expanduser() if raw else get_settings(None if env is None else dict(env)).home / "dagster"
    return home.resolve()


def render_dagster_yaml(home: Path) -> str:
    """The body of the project's dagster.yaml for ``home`` (no header)."""
    history = home / "history"
    config = {
        "telemetry": {"enabled": False},
        "run_storage": {
            "module": "dagster._core.storage.runs",
            "class": "SqliteRunStorage",
            "config": {"base_dir": str(history)},
        },
        "event_log_storage": {
            "module": "chimera_assets.lib.event_storage",
            "class": EVENT_STORAGE_CLASS,
            "config": {"base_dir": str(history / "runs")},
        },
        "schedule_storage": {
            "module": "dagster._core.storage.schedules",
            "class": "SqliteScheduleStorage",
            "config": {"base_dir": str(home / "schedules")},
        },
        # Each run is a process and DuckDB has one writer at a time: a small queue keeps a UI
        # backfill from starting a dozen processes that then wait on the file lock.
        "concurrency": {"runs": {"max_concurrent_runs": 4}},
        # Dagster's launcher plus a worker health check (lib/run_health.py), so run monitoring can
        # fail a run whose process was killed (kill -9, OOM, power loss) instead of leaving it
        # STARTED for ever, counted by the run queue and "in progress" for automation.
        "run_launcher": {"module": "chimera_assets.lib.run_health", "class": "ChimeraRunLauncher"},
        "run_monitoring": {
            "enabled": True,
            "start_timeout_seconds": 180,  # a run stuck STARTING (its worker never came up)
            "cancel_timeout_seconds": 180,  # a run stuck CANCELING
            "max_resume_run_attempts": 0,  # a dead worker fails its run (resuming needs another launcher)
            "poll_interval_seconds": 30,
        },
    }
    return yaml.safe_dump(config, sort_keys=False)


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def _split(text: str) -> tuple[str | None, str]:
    """(hash from the header or None, body after the header lines)."""
    lines = text.splitlines(keepends=True)
    if len(lines) >= 2 and lines[0].rstrip("\n") == HEADER and lines[1].startswith(HASH_PREFIX):
        return lines[1][len(HASH_PREFIX):].strip(), "".join(lines[2:])
    return None, text


def _uses_batching(text: str) -> bool:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return False
    if not isinstance(data, dict):
        return False
    els = data.get("event_log_storage") or {}
    storage = data.get("storage") or {}
    # dagster-postgres batches by itself (multi-row insert); so does our SQLite class.
    return (isinstance(els, dict) and els.get("class") == EVENT_STORAGE_CLASS) or (
        isinstance(storage, dict) and "postgres" in storage
    ) or (isinstance(els, dict) and "postgres" in str(els.get("module", "")))


def ensure_dagster_home(home: Path | None = None) -> HomeStatus:
    """Create ``home`` and its dagster.yaml if missing; refresh a chimera-written, unedited one."""
    home = (home or dagster_home()).resolve()
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    body = render_dagster_yaml(home)
    wanted = f"{HEADER}\n{HASH_PREFIX}{_digest(body)}\n{body}"
    if not path.exists():
        _write(path, wanted)
        return HomeStatus(home, path, "written", True)
    text = path.read_text()
    recorded, old_body = _split(text)
    if recorded is None or recorded != _digest(old_body):
        return HomeStatus(home, path, "user", _uses_batching(text))
    if text == wanted:
        return HomeStatus(home, path, "current", True)
    _write(path, wanted)
    return HomeStatus(home, path, "updated", True)


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text)
    tmp.replace(path)  # atomic: a webserver starting meanwhile never reads half a file


def apply_bookkeeping_env(env: dict[str, str] | None = None) -> dict[str, str] | None:
    """Set the event-bookkeeping variables where unset; a value the user set (e.g.
    ``DAGSTER_EVENT_BATCH_SIZE=0``) wins. With ``env`` (a child process's environment being built)
    they go into that dict, which is returned. Without it they go into THIS process's environment
    (``settings.set_process_defaults``): Dagster reads them in-process from the environment, in the
    process that stores the events, and offers no other way to pass them."""
    if env is None:
        set_process_defaults(BOOKKEEPING_ENV)
        return None
    for key, value in BOOKKEEPING_ENV.items():
        if not (env.get(key) or "").strip():
            env[key] = value
    return env


def prepare_instance_env(env: dict[str, str]) -> HomeStatus:
    """Resolve the home, write its dagster.yaml if needed, and set ``DAGSTER_HOME`` and the
    bookkeeping variables in ``env``: the environment dict of a child process (``dagster dev``)."""
    status = ensure_dagster_home(dagster_home(env))
    env["DAGSTER_HOME"] = str(status.home)
    apply_bookkeeping_env(env)
    return status


def child_process_env() -> tuple[dict[str, str], HomeStatus]:
    """(environment, home status) of a child process on chimera's instance: a copy of this
    process's environment plus ``DAGSTER_HOME`` and the bookkeeping variables; this process's own
    environment is left as it is."""
    env = process_env()
    return env, prepare_instance_env(env)


def get_instance():
    """(the persistent instance, its ``HomeStatus``); the bookkeeping variables are set in this
    process. ``DAGSTER_HOME`` is read, not written: a caller in a long-lived process (tests calling
    ``cli.main``) keeps its environment. Callers own closing the instance."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    status = ensure_dagster_home(dagster_home())
    apply_bookkeeping_env()
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(status.home))), status


class InstanceUnusableError(RuntimeError):
    """The instance's storage cannot be opened (a corrupt or locked ``runs.db``); names the path."""


def open_instance(attempts: int = 3, wait_s: float = 2.0):
    """``get_instance()``, retried while its SQLite storage is locked by another process, with one
    clear error naming the storage when it is locked for longer or not a database at all."""
    import sqlite3
    import time

    import sqlalchemy.exc

    for attempt in range(1, attempts + 1):
        try:
            instance, status = get_instance()
            instance.get_runs(limit=1)  # touches runs.db: a corrupt file fails here, not mid-run
            return instance, status
        except (sqlite3.DatabaseError, sqlalchemy.exc.DBAPIError) as exc:
            home = dagster_home()
            locked = "locked" in str(exc).lower()
            if locked and attempt < attempts:
                time.sleep(wait_s)
                continue
            what = "is locked by another process" if locked else "is not a readable SQLite database (corrupt?)"
            raise InstanceUnusableError(
                f"the Dagster run storage under {home / 'history'} (runs.db and runs/*.db) {what}: "
                f"{str(getattr(exc, 'orig', exc))[:200]}; "
                + ("retry when the other chimera/dagster process is done" if locked else
                   f"move {home} aside (chimera writes a new one; the run history in it is lost) or set DAGSTER_HOME")
            ) from None
    raise AssertionError("not reached")
