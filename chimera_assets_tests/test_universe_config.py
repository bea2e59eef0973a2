"""Issue 14 case 8 (config): the universe YAML is refused when it loads, naming file, root and key,
before any raw data is written; ``--roots ZL,zl`` is one root."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from chimera_assets.universe import UniverseConfigError, load_universe
from chimera_assets_tests.conftest import shared_data

PACKAGED = Path(__file__).resolve().parents[1] / "chimera_assets" / "config" / "universe.yaml"
ZL = "  ZL:\n    series: [ZL.v.0]\n    schemas: [ohlcv-1h]\n    calendar: CME_Agriculture\n"


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "universe.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_a_duplicate_root_key_is_refused_naming_file_and_key(tmp_path):
    uni = _write(tmp_path, "dataset: GLBX.MDP3\nroots:\n" + ZL + "  MES:\n    series: [MES.v.0]\n" + ZL)
    with pytest.raises(UniverseConfigError) as err:
        load_universe(uni)
    msg = str(err.value)
    assert str(uni) in msg and "duplicate key 'ZL'" in msg and "line 9" in msg


def test_a_duplicate_setting_inside_a_root_is_refused(tmp_path):
    uni = _write(tmp_path, "roots:\n  ZL:\n    golden_zone: true\n    golden_zone: false\n")
    with pytest.raises(UniverseConfigError, match="duplicate key 'golden_zone'"):
        load_universe(uni)


@pytest.mark.parametrize("value", ['"false"', "'true'", "0", "1", "no_thanks"])
def test_a_non_boolean_golden_zone_is_refused_naming_file_root_and_key(tmp_path, value):
    uni = _write(tmp_path, f"roots:\n  MES:\n    series: [MES.v.0]\n    golden_zone: {value}\n")
    with pytest.raises(UniverseConfigError) as err:
        load_universe(uni)
    msg = str(err.value)
    assert str(uni) in msg and "root MES" in msg and "golden_zone" in msg and "not a boolean" in msg


def test_yaml_booleans_are_accepted(tmp_path):
    uni = _write(tmp_path, "roots:\n  MES:\n    series: [MES.v.0]\n    golden_zone: true\n    calendar: CME_Equity\n"
                           "  ZL:\n    golden_zone: false\n")
    u = load_universe(uni)
    assert u.golden_zone_roots == {"MES"} and u.roots["ZL"].calendar == "CME_Agriculture"


def test_an_unknown_calendar_is_refused_when_the_file_loads(tmp_path):
    uni = _write(tmp_path, "roots:\n  ZL:\n    series: [ZL.v.0]\n    calendar: CME_Agricultur\n")
    with pytest.raises(UniverseConfigError) as err:
        load_universe(uni)
    msg = str(err.value)
    assert str(uni) in msg and "root ZL" in msg and "unknown calendar 'CME_Agricultur'" in msg
    assert "CME_Agriculture" in msg  # the names it could have meant


def test_cli_with_an_unknown_calendar_fails_before_writing_raw_data(tmp_path):
    batch = shared_data("databento-batch")
    text = PACKAGED.read_text().replace("calendar: CME_Equity", "calendar: CME_Equities", 1)
    uni = _write(tmp_path, text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHIMERA_", "DATABENTO_"))}
    env.update(CHIMERA_HOME=str(tmp_path / "home"), CHIMERA_UNIVERSE=str(uni))
    exe = Path(sys.executable).parent / "chimera"
    proc = subprocess.run(
        [str(exe), "run", "--roots", "ZL,MES", "--start", "2024-03-04", "--end", "2024-03-08",
         "--landing-dir", str(batch / "GLBX-20251216-WEJLAFALCV")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert str(uni) in proc.stderr and "root MES" in proc.stderr and "CME_Equities" in proc.stderr
    assert not (tmp_path / "home" / "warehouse.duckdb").exists()


def test_roots_are_deduplicated_case_insensitively():
    u = load_universe()
    assert u.require_roots(["ZL", "zl", " MES", "Zl", "mes"]) == ["ZL", "MES"]
    with pytest.raises(UniverseConfigError, match="XX"):
        u.require_roots(["zl", "xx"])


def test_zl_twice_runs_the_market_stage_once(tmp_path, monkeypatch):
    """``run_graph`` plans one market stage per block of distinct roots: ZL,zl plans what ZL plans."""
    from datetime import date

    import dagster as dg

    from chimera_assets.definitions import build_definitions
    from chimera_assets.lib.runner import run_graph
    from chimera_assets.settings import get_settings
    from chimera_assets.warehouse import get_warehouse

    empty = tmp_path / "landing"
    empty.mkdir()
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(empty))

    def planned(roots: list[str]) -> str:
        lines: list[str] = []
        run_graph(build_definitions(), date(2024, 1, 5), date(2024, 1, 5), roots, dg.DagsterInstance.ephemeral(),
                  get_warehouse(get_settings()), progress=lines.append, include_training=False)
        first = next(line for line in lines if line.startswith("[1/"))
        return first.split("]")[0]  # "[1/N]": N stages planned

    assert planned(["ZL", "zl"]) == planned(["ZL"])


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        # A misspelt setting was silently ignored before the pydantic model (extra="forbid").
        ("roots:\n  ZL:\n    golden_zones: true\n", ["root ZL", "unknown key(s) ['golden_zones']"]),
        ("dataset: GLBX.MDP3\nroot:\n  ZL: {}\n", ["unknown key(s) ['root']", "missing key(s) ['roots']"]),
        ("roots:\n  ZL:\n    schemas: [ohlcv-1s]\n", ["root ZL", "schemas 'ohlcv-1s' is an unknown schema"]),
        ("roots:\n  ZL:\n    start: March\n", ["root ZL", "start 'March' is not a date"]),
        ("roots:\n  ZL: [ZL.v.0]\n", ["root ZL", "expected a mapping, got ['ZL.v.0']"]),
        ("roots: {}\n", ["roots {} must be a non-empty mapping"]),
    ],
)
def test_bad_settings_are_refused_naming_file_and_key(tmp_path, text, needles):
    uni = _write(tmp_path, text)
    with pytest.raises(UniverseConfigError) as err:
        load_universe(uni)
    msg = str(err.value)
    assert str(uni) in msg, msg
    for needle in needles:
        assert needle in msg, msg


def test_a_root_without_settings_takes_the_defaults(tmp_path):
    u = load_universe(_write(tmp_path, "roots:\n  ZL:\n  MES:\n    series: []\n"))
    zl, mes = u.roots["ZL"], u.roots["MES"]
    assert (zl.series, zl.statistics_series, zl.schemas) == (("ZL.v.0",), ("ZL.FUT",), ("ohlcv-1h",))
    assert (zl.start, zl.golden_zone, zl.calendar, u.dataset) == (date(2010, 6, 7), False, "CME_Agriculture",
                                                                  "GLBX.MDP3")
    assert mes.series == ("MES.v.0",)
