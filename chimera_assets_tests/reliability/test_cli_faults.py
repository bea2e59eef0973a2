"""Issue 29 item 11: the smaller misuses each end with one clear line (exit 2 for the user's input)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from chimera_assets import cli
from chimera_assets_tests.reliability.helpers import Child, child_env

RUN = ["run", "--start", "2024-03-04", "--end", "2024-03-05", "--roots", "ZL", "--demo", "--no-training"]


def _cli(argv, capsys) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().err


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    h = tmp_path / "home"
    monkeypatch.setenv("CHIMERA_HOME", str(h))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return h


def test_chimera_home_that_is_a_file_is_exit_2_with_a_message(tmp_path, monkeypatch, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    monkeypatch.setenv("CHIMERA_HOME", str(f))
    code, err = _cli(RUN, capsys)
    assert code == 2 and "CHIMERA_HOME" in err and "is a file" in err and "Traceback" not in err, err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_chimera_home_is_exit_2(home, capsys):
    home.mkdir()
    home.chmod(0o500)
    try:
        code, err = _cli(RUN, capsys)
    finally:
        home.chmod(0o700)
    assert code == 2 and "not writable" in err, err


def test_bad_numbers_in_the_environment_are_exit_2_before_anything_is_written(home, monkeypatch, capsys):
    for var, value in (("CHIMERA_SENSOR_INTERVAL_S", "soon"), ("CHIMERA_QUALITY_OUTLIER_K", "big")):
        with monkeypatch.context() as mp:
            mp.setenv(var, value)
            code, err = _cli(RUN, capsys)
        assert code == 2 and var in err and repr(value) in err and "Traceback" not in err, (var, err)
        assert err.strip().count("\n") == 0, err
        assert not (home / "warehouse.duckdb").exists(), f"{var}: a stage wrote before the error"


def test_a_misspelt_chimera_variable_is_named_with_the_likely_one(home, monkeypatch, capsys):
    monkeypatch.setenv("CHIMERA_LANDNG_DIR", "/nowhere")
    monkeypatch.setenv("CHIMERA_QUALITY_OUTLIER_K", "x")  # stops the run right after the warnings
    _, err = _cli(RUN, capsys)
    assert "CHIMERA_LANDNG_DIR is not a chimera setting" in err and "CHIMERA_LANDING_DIR?" in err, err


def test_a_corrupt_run_storage_is_one_error_naming_it(home, capsys):
    history = home / "dagster" / "history"
    history.mkdir(parents=True)
    (history / "runs.db").write_bytes(b"this is not a SQLite database" * 100)
    code, err = _cli(RUN, capsys)
    assert code == 1 and str(history) in err and "not a readable SQLite database" in err, err
    assert "Traceback" not in err


@pytest.mark.slow  # real CLI processes (~25 s); CI runs the slow group too
def test_ctrl_c_ends_with_one_line_and_no_traceback(tmp_path):
    env = child_env(CHIMERA_HOME=str(tmp_path / "home"))
    env.pop("CHIMERA_LANDING_DIR", None)
    exe = str(Path(sys.executable).parent / "chimera")
    child = Child([exe, *RUN], tmp_path, "interrupted", env)
    child.wait_until(lambda: "[3/" in child.stdout, 180, "the market-data stage")
    child.proc.send_signal(signal.SIGINT)
    code = child.wait(120)
    assert code != 0, child.describe()
    assert "Traceback" not in child.stderr, child.describe()
    assert "interrupted" in child.stderr + child.stdout, child.describe()
