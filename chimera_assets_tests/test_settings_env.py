"""``settings.py`` is the one module of chimera_assets that reads the environment; every setting it
offers parses the variable named in its table; secrets stay out of ``Settings``."""

from __future__ import annotations

import ast
import os
from datetime import date
from pathlib import Path

import pytest

import chimera_assets
from chimera_assets import settings as s

PACKAGE = Path(chimera_assets.__file__).resolve().parent


def _environment_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) of every ``os.environ`` / ``os.getenv`` / ``environ.get`` / ``from os import environ``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "environb", "getenv", "getenvb"):
            if isinstance(node.value, ast.Name) and node.value.id == "os":
                found.append((node.lineno, f"os.{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            names = {a.name for a in node.names} & {"environ", "environb", "getenv", "getenvb"}
            if names:
                found.append((node.lineno, f"from os import {', '.join(sorted(names))}"))
        elif isinstance(node, ast.Attribute) and node.attr == "get" and isinstance(node.value, ast.Name) \
                and node.value.id == "environ":
            found.append((node.lineno, "environ.get"))
    return found


def test_the_ast_scan_finds_each_form_of_environment_read():
    code = "import os\nfrom os import getenv\na = os.environ['X']\nb = os.getenv('Y')\nc = environ.get('Z')\n"
    assert [what for _, what in _environment_reads(ast.parse(code))] == \
        ["from os import getenv", "os.environ", "os.getenv", "environ.get"]


def test_no_module_outside_settings_reads_the_environment():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "settings.py":
            continue
        for line, what in _environment_reads(ast.parse(path.read_text(), filename=str(path))):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {what}")
    assert not offenders, "environment read outside settings.py:\n" + "\n".join(offenders)


def test_each_setting_parses_its_variable():
    env = {
        "CHIMERA_SENSOR_INTERVAL_S": "2.7", "CHIMERA_LANDING_SETTLE_S": "1.5", "CHIMERA_API_ROOTS": "ZL,MES",
        "CHIMERA_API_SENSOR_START": "2025-01-06", "CHIMERA_SAFETY_NET_DAYS": "9",
        "CHIMERA_PARTITIONED_CHECKS": " Yes ", "CHIMERA_BQ_STORAGE_ENDPOINT": "127.0.0.1:9060",
        "DATABENTO_GATEWAY": "http://127.0.0.1:1", "DATABENTO_API_KEY": " db-key ", "DAGSTER_HOME": " /d ",
        "CHIMERA_BQ_CREDENTIALS_JSON": "{}", "CHIMERA_QUALITY_OUTLIER_K": "4", "CHIMERA_HOME": "/h",
    }
    assert s.sensor_interval_s(30, env) == 2
    assert s.sensor_interval_s(30, {"CHIMERA_SENSOR_INTERVAL_S": "0"}) == 1
    assert s.landing_settle_s(env) == 1.5
    assert s.api_roots(env) == ["ZL", "MES"]
    assert s.api_sensor_start(env) == date(2025, 1, 6)
    assert s.safety_net_days(env) == 9
    assert s.partitioned_checks(env) is True
    assert s.bq_storage_endpoint(env) == "127.0.0.1:9060"
    assert s.databento_gateway(env) == "http://127.0.0.1:1"
    assert s.databento_api_key(env) == "db-key"
    assert s.bq_credentials_json(env) == "{}"
    assert s.dagster_home_env(env) == "/d"
    assert s.quality_env(env) == {"CHIMERA_QUALITY_OUTLIER_K": "4"}


def test_defaults_when_unset():
    assert s.sensor_interval_s(30, {}) == 30
    assert s.landing_settle_s({}) == 0.0
    assert s.api_roots({}) is None and s.api_sensor_start({}) is None
    assert s.safety_net_days({}) == 5
    assert s.partitioned_checks({}) is False and s.partitioned_checks({"CHIMERA_PARTITIONED_CHECKS": "0"}) is False
    assert s.bq_storage_endpoint({}) is None and s.databento_gateway({}) is None
    assert s.databento_api_key({"DATABENTO_API_KEY": "  "}) is None and s.dagster_home_env({}) is None


def test_a_bad_sensor_interval_names_the_variable():
    with pytest.raises(ValueError, match="CHIMERA_SENSOR_INTERVAL_S"):
        s.sensor_interval_s(30, {"CHIMERA_SENSOR_INTERVAL_S": "fast"})


def test_secrets_are_not_settings_fields():
    secret = "db-SECRET-123"
    resolved = s.get_settings({"CHIMERA_HOME": "/h", "DATABENTO_API_KEY": secret,
                               "CHIMERA_BQ_CREDENTIALS_JSON": '{"private_key": "' + secret + '"}'})
    assert secret not in repr(resolved) and secret not in str(vars(resolved))


def test_process_defaults_never_override_a_value_the_user_set(monkeypatch):
    monkeypatch.setenv("CHIMERA_TEST_SET", "mine")
    monkeypatch.delenv("CHIMERA_TEST_UNSET", raising=False)
    s.set_process_defaults({"CHIMERA_TEST_SET": "default", "CHIMERA_TEST_UNSET": "default"})
    assert os.environ["CHIMERA_TEST_SET"] == "mine" and os.environ["CHIMERA_TEST_UNSET"] == "default"
    monkeypatch.delenv("CHIMERA_TEST_UNSET")


def test_building_a_child_environment_leaves_this_process_alone(monkeypatch):
    from chimera_assets.lib.instance import BOOKKEEPING_ENV, apply_bookkeeping_env, child_process_env

    for key in (*BOOKKEEPING_ENV, "DAGSTER_HOME"):
        monkeypatch.delenv(key, raising=False)
    before = dict(os.environ)
    env, status = child_process_env()
    assert dict(os.environ) == before
    assert env["DAGSTER_HOME"] == str(status.home) and all(env[k] == v for k, v in BOOKKEEPING_ENV.items())
    child: dict[str, str] = {}
    assert apply_bookkeeping_env(child) is child and dict(os.environ) == before
