"""Foundation: settings, universe, partitions, Definitions, import hygiene."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from chimera_assets.lib.partitions import date_symbol_partitions, parse_partition_key, trade_date_partitions
from chimera_assets.settings import SettingsError, get_settings
from chimera_assets.universe import UniverseConfigError, get_universe, load_universe

REPO = Path(__file__).resolve().parents[1]


def test_trade_date_partitions_start_2010_06_07_and_skip_weekends():
    keys = trade_date_partitions().get_partition_keys()
    assert keys[0] == "2010-06-07"
    days = {date.fromisoformat(k).weekday() for k in keys}
    assert days == {0, 1, 2, 3, 4}
    assert len(keys) > 4000


def test_symbol_dimension_comes_from_the_universe_file(tmp_path, monkeypatch):
    uni = tmp_path / "u.yaml"
    uni.write_text("roots:\n  ZL: {series: [ZL.v.0]}\n  CL: {series: [CL.v.0]}\n")
    monkeypatch.setenv("CHIMERA_UNIVERSE", str(uni))
    mp = date_symbol_partitions(get_universe())
    sym = next(d for d in mp.partitions_defs if d.name == "symbol")
    assert sym.partitions_def.get_partition_keys() == ["ZL", "CL"]
    assert parse_partition_key("2024-01-03|CL") == (date(2024, 1, 3), "CL")


def test_default_universe_roots():
    assert load_universe().root_names == ["ZL", "MES", "ES", "ZS", "ZM", "ZC", "CL"]
    assert load_universe().golden_zone_roots == {"MES"}


@pytest.mark.parametrize("bad", ["zl", "Z-L", "ZL;DROP", "ZL'", "ÆZ", "TOOLONGROOTNAME"])
def test_invalid_root_name_is_rejected_naming_file_and_root(tmp_path, bad):
    uni = tmp_path / "bad.yaml"
    uni.write_text(f"roots:\n  '{bad}': {{series: [ZL.v.0]}}\n", encoding="utf-8")
    with pytest.raises(UniverseConfigError) as err:
        load_universe(uni)
    assert str(uni) in str(err.value) and bad in str(err.value)


def test_unknown_schema_and_bad_series_rejected(tmp_path):
    uni = tmp_path / "u.yaml"
    uni.write_text("roots:\n  ZL: {series: [ZL.v.0], schemas: [trades]}\n")
    with pytest.raises(UniverseConfigError, match="unknown schema"):
        load_universe(uni)
    uni.write_text("roots:\n  ZL: {series: ['ZL.v.0; drop']}\n")
    with pytest.raises(UniverseConfigError, match="not a valid Databento symbol"):
        load_universe(uni)


def test_unknown_root_requested_names_it():
    with pytest.raises(UniverseConfigError, match="XX"):
        load_universe().require_roots(["ZL", "XX"])


def test_settings_defaults_and_validation(tmp_path):
    s = get_settings({"CHIMERA_HOME": str(tmp_path)})
    assert s.warehouse == "duckdb" and s.duckdb_path == tmp_path / "warehouse.duckdb"
    assert s.landing_dir == tmp_path / "landing"
    with pytest.raises(SettingsError, match="CHIMERA_WAREHOUSE"):
        get_settings({"CHIMERA_WAREHOUSE": "oracle"})
    assert get_settings({}).home == Path.home() / ".chimera"


def test_definitions_load_with_every_table_asset():
    from chimera_assets.definitions import defs
    from chimera_assets.schemas import ALL_TABLES

    keys = {".".join(k.path) for k in defs.resolve_asset_graph().get_all_asset_keys()}
    missing = [t for t in ALL_TABLES if t not in keys]
    assert missing == []
    assert {"training.zl_training_daily", "training.mes_training_daily"} <= keys
    defs.resolve_implicit_global_asset_job_def()


def test_import_has_no_side_effects(tmp_path):
    """Importing the code location opens no warehouse and creates no file under CHIMERA_HOME."""
    home = tmp_path / "home"
    env = {**os.environ, "CHIMERA_HOME": str(home)}
    code = (
        "import duckdb, chimera_assets.warehouse.duckdb_backend as b\n"
        "calls = []\n"
        "orig = duckdb.connect\n"
        "duckdb.connect = lambda *a, **k: calls.append(a) or orig(*a, **k)\n"
        "import chimera_assets.definitions\n"
        "assert calls == [], calls\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO, timeout=120)
    assert not home.exists() or list(home.iterdir()) == []


@pytest.mark.slow
def test_dagster_definitions_validate_from_repo_root(tmp_path):
    env = {**os.environ, "CHIMERA_HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    exe = Path(sys.executable).parent / "dagster"
    proc = subprocess.run([str(exe), "definitions", "validate"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    proc = subprocess.run([str(exe), "definitions", "validate", "-w", "workspace.yaml"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
