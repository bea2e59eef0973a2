"""Issue 29 items 3, 4, 5 and 9: landing files that must not block the others.

* a file name that is not valid UTF-8 is refused per file, named as ``os.fsdecode`` gives it, and the
  good files beside it load;
* a random-bytes file and a truncated copy never stop a healthy month loading for every root;
* a header period that disagrees with the records: selection follows the records, with a warning
  naming both ranges;
* many empty files: detected before decoding, one summary line per run.
"""

from __future__ import annotations

import logging
import os
import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from chimera_assets.definitions import build_definitions
from chimera_assets.demo.data import _encode, _to_ns, demo_records, write_demo_files
from chimera_assets.ingest.landing import list_dbn_files, select_files
from chimera_assets.lib.runner import root_cause
from chimera_assets.schemas import LOAD_STATE, SESSION_BARS
from chimera_assets.universe import get_universe
from chimera_assets.warehouse import get_warehouse
from chimera_assets_tests.dagster_helpers import run_range
from chimera_assets_tests.reliability.helpers import H1, SB

ROOTS = ["ZL", "MES"]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CHIMERA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.delenv("CHIMERA_POLICY_DIR", raising=False)
    return tmp_path


def _messages(res: dg.ExecuteInProcessResult, instance: dg.DagsterInstance) -> list[str]:
    return [e.user_message for e in instance.all_logs(res.run_id) if e.user_message]


def _error(res: dg.ExecuteInProcessResult) -> str:
    return "; ".join(root_cause(e.step_failure_data.error) for e in res.all_events if e.is_step_failure)


def _session_keys(wh) -> set[tuple[date, str]]:
    return set(wh.read(SESSION_BARS).select("trade_date", "symbol").rows())


def _run(start: str, end: str, first: str, last: str, instance=None) -> dg.ExecuteInProcessResult:
    return run_range([H1, SB], start, end, first, last, defs=build_definitions(), raise_on_error=False,
                     instance=instance or dg.DagsterInstance.ephemeral())


def test_a_file_name_that_is_not_utf8_is_refused_by_name_and_the_good_files_load(home):
    landing = home / "landing"
    good = write_demo_files(landing, ROOTS, date(2024, 3, 1), date(2024, 3, 9), files="daily")
    # A Latin-1 name (bytes 0xE9 0xFF are not UTF-8): a copy of a good file, so only the name is wrong.
    bad = os.fsdecode(bytes(landing) + b"/prix-\xe9t\xff-" + good[3].name.encode())
    shutil.copyfile(good[3], bad)
    instance = dg.DagsterInstance.ephemeral()
    res = _run("2024-03-04", "2024-03-08", "ZL", "MES", instance)
    assert res.success, _error(res)
    wh = get_warehouse()
    assert len(_session_keys(wh)) == 10  # 5 days x 2 roots, from the good files
    failed = wh.read(LOAD_STATE).filter(pl.col("status") == "failed")
    shown = os.fsdecode(bad).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    assert failed["file_path"].to_list() == [shown], failed.rows()
    assert "\\xe9t\\xff" in shown and "not valid UTF-8" in failed["error"][0]
    warned = [m for m in _messages(res, instance) if "not valid UTF-8" in m]
    assert len(warned) == 1 and shown in warned[0], warned
    # The good file with the same bytes is loaded, not quarantined with it; a rerun says "failed before".
    loaded = wh.read(LOAD_STATE).filter(pl.col("status") == "loaded")["file_path"].to_list()
    assert str(good[3]) in loaded
    res2 = _run("2024-03-04", "2024-03-08", "ZL", "MES", instance)
    assert res2.success, _error(res2)
    assert any("failed before" in m and shown in m for m in _messages(res2, instance))


def test_a_corrupt_and_a_truncated_file_never_block_a_healthy_month_for_any_root(home):
    """Seven roots; March holds a random-bytes file and a truncated copy of March's file; April is
    healthy. April's raw and session-bar run succeeds and reaches every root."""
    landing = home / "landing"
    roots = get_universe().root_names
    assert len(roots) >= 7
    march = write_demo_files(landing / "mar", roots, date(2024, 3, 1), date(2024, 4, 1))
    write_demo_files(landing / "apr", roots, date(2024, 4, 1), date(2024, 4, 6))
    (landing / "mar" / "random.dbn.zst").write_bytes(os.urandom(4096))
    cut = landing / "mar" / "copy-of-march.dbn"
    import zstandard

    raw = zstandard.ZstdDecompressor().decompressobj().decompress(march[0].read_bytes())
    cut.write_bytes(raw[: len(raw) // 2 + 7])  # cut inside a record: an unfinished copy
    march[0].unlink()
    instance = dg.DagsterInstance.ephemeral()
    ordered = list(roots)  # the symbol dimension's order: a range from the first to the last root
    res = _run("2024-04-01", "2024-04-05", ordered[0], ordered[-1], instance)
    assert res.success, _error(res)
    got = _session_keys(get_warehouse())
    assert {r for _, r in got} == set(roots), sorted(got)
    assert all(d.month == 4 for d, _ in got)
    lines = [m for m in _messages(res, instance) if "random.dbn.zst" in m]
    assert lines and all("cannot be loaded" in m or "failed before" in m for m in lines), lines
    assert any(str(cut) in m and "cannot be loaded" in m for m in _messages(res, instance))
    # Both are recorded failed once; a March run (the dates the copy claims) names it as failed before.
    failed = get_warehouse().read(LOAD_STATE).filter(pl.col("status") == "failed")
    assert sorted(set(failed["file_path"])) == sorted({str(cut), str(landing / "mar" / "random.dbn.zst")})
    res_mar = run_range([H1], "2024-03-04", "2024-03-08", ordered[0], ordered[-1], defs=build_definitions(),
                        instance=instance, raise_on_error=False)
    assert res_mar.success, _error(res_mar)
    assert any(str(cut) in m and "failed before" in m for m in _messages(res_mar, instance))


def _mislabelled(path: Path) -> Path:
    """March records under a header whose period says January."""
    recs, maps = demo_records(["ZL.v.0", "MES.v.0"], date(2024, 3, 4), date(2024, 3, 9), "ohlcv-1h")
    path.write_bytes(_encode(recs, maps, "ohlcv-1h", _to_ns(date(2024, 1, 2)), _to_ns(date(2024, 1, 6)), 3, True))
    return path


def test_a_header_period_that_disagrees_with_the_records_follows_the_records_with_a_warning(home):
    landing = home / "landing"
    landing.mkdir()
    bad = _mislabelled(landing / "mislabelled.dbn.zst")
    sel = select_files(list_dbn_files(landing), "ohlcv-1h", [date(2024, 3, 5)], ROOTS, get_universe())
    assert [p for p, _ in sel.files] == [bad]
    assert sel.disagreeing and "2024-01-02" in sel.disagreeing[0][1] and "2024-03-0" in sel.disagreeing[0][2]
    # January (what the header claims) holds no record: nothing selected by the records there.
    instance = dg.DagsterInstance.ephemeral()
    res = _run("2024-03-04", "2024-03-08", "ZL", "MES", instance)
    assert res.success, _error(res)
    assert len(_session_keys(get_warehouse())) == 10
    warned = [m for m in _messages(res, instance) if "disagrees" in m]
    assert warned and str(bad) in warned[0] and "2024-01-02" in warned[0] and "2024-03-0" in warned[0], warned


def test_many_empty_files_are_refused_before_decoding_and_summarised_in_one_line(home, caplog):
    """The full 10,000 are in benchmarks/landing_empty_files.py; 300 prove the shape here."""
    caplog.set_level(logging.WARNING)
    landing = home / "landing"
    write_demo_files(landing, ROOTS, date(2024, 3, 1), date(2024, 3, 9), files="daily")
    for i in range(300):
        (landing / f"placeholder-{i:05d}.dbn.zst").touch()
    instance = dg.DagsterInstance.ephemeral()
    for attempt in ("first", "rerun"):
        res = _run("2024-03-04", "2024-03-08", "ZL", "MES", instance)
        assert res.success, _error(res)
        about = [m for m in _messages(res, instance) if "placeholder-" in m]
        assert len(about) == 1, (attempt, len(about), about[:3])
        assert "300 landing file(s)" in about[0] and len(about[0]) < 1500, about[0]
        assert ("empty file" in about[0]) and ("retried once its content changes" in about[0])
    led = get_warehouse().read(LOAD_STATE).filter(pl.col("status") == "failed")
    assert led.height == 300  # recorded once, by the first run
    assert len(_session_keys(get_warehouse())) == 10
