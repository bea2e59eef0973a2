"""One persistent Dagster instance: its home, its dagster.yaml, ``chimera run`` and ``chimera ui`` on it."""

import os
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from chimera_assets.lib.event_storage import BatchingSqliteEventLogStorage
from chimera_assets.lib.instance import (
    BOOKKEEPING_ENV,
    apply_bookkeeping_env,
    dagster_home,
    ensure_dagster_home,
    prepare_instance_env,
)


@pytest.fixture(autouse=True)
def no_dagster_env(monkeypatch):
    for var in ("DAGSTER_HOME", *BOOKKEEPING_ENV):
        monkeypatch.delenv(var, raising=False)


def test_home_defaults_to_chimera_home_and_honours_dagster_home(isolated_home, tmp_path):
    assert dagster_home() == (isolated_home / "dagster").resolve()
    assert dagster_home({"CHIMERA_HOME": str(tmp_path)}) == (tmp_path / "dagster").resolve()
    assert dagster_home({"DAGSTER_HOME": str(tmp_path / "x"), "CHIMERA_HOME": "/nowhere"}) == (tmp_path / "x").resolve()


def test_written_yaml_builds_the_batching_storage(isolated_home):
    status = ensure_dagster_home()
    assert status.state == "written" and status.notice is None
    config = yaml.safe_load(status.config.read_text())
    assert config["event_log_storage"]["class"] == "BatchingSqliteEventLogStorage"
    os.environ["DAGSTER_HOME"] = str(status.home)
    try:
        instance = dg.DagsterInstance.get()
        assert type(instance.event_log_storage) is BatchingSqliteEventLogStorage
        assert (status.home / "history" / "runs.db").exists()  # the stock layout of a Dagster home
    finally:
        del os.environ["DAGSTER_HOME"]
    assert ensure_dagster_home().state == "current"


def test_user_edited_yaml_is_kept_and_reported(isolated_home):
    status = ensure_dagster_home()
    edited = status.config.read_text().replace("max_concurrent_runs: 4", "max_concurrent_runs: 2")
    status.config.write_text(edited)
    again = ensure_dagster_home()
    assert again.state == "user" and again.batched
    assert status.config.read_text() == edited  # not overwritten
    assert "kept as it is" in again.notice and "uses a batching" in again.notice
    status.config.write_text("telemetry:\n  enabled: false\n")  # a foreign file without batching
    foreign = ensure_dagster_home()
    assert foreign.state == "user" and not foreign.batched and "does NOT use" in foreign.notice
    assert status.config.read_text() == "telemetry:\n  enabled: false\n"


def test_unedited_yaml_follows_a_moved_home(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    ensure_dagster_home(old)
    new.mkdir()
    (new / "dagster.yaml").write_text((old / "dagster.yaml").read_text())  # copied home, file untouched
    status = ensure_dagster_home(new)
    assert status.state == "updated"
    assert str(old) not in (new / "dagster.yaml").read_text()


def test_bookkeeping_env_defaults_but_user_values_win():
    env = apply_bookkeeping_env({"DAGSTER_EVENT_BATCH_SIZE": "0"})
    assert env["DAGSTER_EVENT_BATCH_SIZE"] == "0"
    assert env["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] == "1"



def test_prepare_instance_env_sets_home_and_bookkeeping(isolated_home):
    env = {"CHIMERA_HOME": str(isolated_home)}
    status = prepare_instance_env(env)
    assert env["DAGSTER_HOME"] == str(status.home) == str((isolated_home / "dagster").resolve())
    assert all(env[k] == v for k, v in BOOKKEEPING_ENV.items())


def test_definitions_module_sets_the_run_worker_env():
    """The code server / run worker import chimera_assets.definitions: batching reaches UI launches."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in BOOKKEEPING_ENV}
    code = "import os, chimera_assets.definitions; print(os.environ['DAGSTER_EVENT_BATCH_SIZE'], " \
           "os.environ['DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["1000", "1"]


def test_ui_command_serves_chimeras_instance_on_loopback(isolated_home):
    from chimera_assets.cli import ui_command

    argv, env = ui_command(3123)
    assert argv[1:4] == ["-m", "dagster", "dev"]
    assert argv[argv.index("-h") + 1] == "127.0.0.1" and argv[argv.index("-p") + 1] == "3123"
    home = Path(env["DAGSTER_HOME"])
    assert home == (isolated_home / "dagster").resolve()
    assert (home / "dagster.yaml").exists()
    workspace = yaml.safe_load(Path(argv[argv.index("-w") + 1]).read_text())
    entry = workspace["load_from"][0]["python_module"]
    assert entry["location_name"] == "chimera" and entry["module_name"] == "chimera_assets.definitions"
    import chimera_assets

    assert Path(entry["working_directory"]) == Path(chimera_assets.__file__).resolve().parents[1]
    for key, value in BOOKKEEPING_ENV.items():
        assert env[key] == value
    assert "DAGSTER_HOME" not in os.environ  # the CLI process itself is left alone until exec


def test_ui_rejects_a_bad_port(capsys):
    from chimera_assets.cli import main

    assert main(["ui", "--port", "70000"]) == 2
    assert "--port 70000" in capsys.readouterr().err


@pytest.mark.slow
def test_chimera_run_records_in_the_default_persistent_instance(isolated_home, capsys):
    """``chimera run`` without DAGSTER_HOME records in $CHIMERA_HOME/dagster: the UI shows the
    partitions materialized and the check results."""
    from chimera_assets.cli import main

    code = main(["run", "--demo", "--roots", "ZL", "--start", "2024-03-04", "--end", "2024-03-08", "--no-training"])
    out = capsys.readouterr().out
    assert code == 0, out
    home = (isolated_home / "dagster").resolve()
    assert f"Dagster instance: {home}" in out
    assert "DAGSTER_HOME" not in os.environ  # read, not written: the next caller keeps its own home
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        instance = dg.DagsterInstance.get()
        assert type(instance.event_log_storage) is BatchingSqliteEventLogStorage
        matrix = dg.AssetKey(["features", "daily_ml_matrix"])
        parts = instance.get_materialized_partitions(matrix)
        assert {f"2024-03-0{d}|ZL" for d in range(4, 9)} <= set(parts)
        from chimera_assets.definitions import build_definitions

        graph = build_definitions().resolve_asset_graph()
        check_keys = [ck for ck in graph.asset_check_keys if ck.asset_key == matrix]
        assert check_keys, "no check wired on the matrix"
        history = instance.event_log_storage.get_asset_check_execution_history(check_keys[0], limit=5)
        assert history and all(h.status.value in ("SUCCEEDED", "FAILED") for h in history)
        assert len(instance.get_runs()) >= 2
    finally:
        del os.environ["DAGSTER_HOME"]
