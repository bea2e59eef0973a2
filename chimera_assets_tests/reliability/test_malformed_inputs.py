"""Guarantee 4: bad inputs are refused loudly and change nothing.

A corpus of malformed inputs (DBN files, policy files, configuration files, command lines), each with
its expected outcome:

* ``error``: one clear error naming the input; the warehouse unchanged (the load ledger may gain a
  ``failed`` row naming it). A landing file that failed is skipped with a warning by the next run, so
  one bad download never blocks later runs.
* ``quarantined``: a file whose header cannot be read claims no dates, so it never fails a run (issue
  29): it gets a ``failed`` ledger row, one warning names it, the next run skips it (named once more as
  "failed before"), the warehouse unchanged.
* ``warned``: the bad part is dropped, a warning names the input, the warehouse unchanged.
* ``check``: a blocking data-quality rule (write audit or asset check) names the rule; the bad rows are
  not published, the warehouse unchanged.
* ``handled``: harmless (e.g. exact duplicates): the warehouse unchanged.

Every case starts from the same baseline warehouse (raw 1h + session bars for 2024-03-04..08, ZL and
MES, and the policy events); after the bad input every table is compared with that baseline. Cases the
product accepts silently today are findings: marked ``xfail(strict=True)`` with the reason.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
import yaml
import zstandard

from chimera_assets import cli
from chimera_assets.definitions import build_definitions
from chimera_assets.demo.data import _encode, _to_ns, demo_records, write_demo_files
from chimera_assets.features.policy_events import MAX_TEXT_CHARS
from chimera_assets.lib.runner import root_cause
from chimera_assets.schemas import LOAD_STATE
from chimera_assets.warehouse import get_warehouse
from chimera_assets_tests.dagster_helpers import QUIET, asset_key, run_range
from chimera_assets_tests.reliability.helpers import H1, SB, assert_tables_unchanged, snapshot

ROOTS = ("ZL", "MES")
START, END = "2024-03-04", "2024-03-08"
POLICY_EVENTS = "reference.policy_events"
RELOAD_STATUSES = ("loaded", "failed", "skipped_unchanged")  # a reload of good files records them again
_DEFS: dict[str, dg.Definitions] = {}


def _defs() -> dg.Definitions:
    return _DEFS.setdefault("d", build_definitions())


def _good_policy_csv(path: Path) -> None:
    path.write_text(
        "ts,source,text\n"
        "2024-03-04T15:00:00Z,truth_social,Tariffs on China are coming\n"
        "2024-03-06T14:00:00Z,whitehouse.gov,Executive order on soybean procurement\n",
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    """Good landing files (daily, UTC 03-01..03-08), a good policy file, and a warehouse built from them."""
    root = tmp_path_factory.mktemp("malformed_baseline")
    (root / "policy").mkdir()
    _good_policy_csv(root / "policy" / "events.csv")
    write_demo_files(root / "landing", list(ROOTS), date(2024, 3, 1), date(2024, 3, 9), files="daily")
    mp = pytest.MonkeyPatch()
    for var, sub in (("CHIMERA_HOME", "home"), ("CHIMERA_LANDING_DIR", "landing"), ("CHIMERA_POLICY_DIR", "policy")):
        mp.setenv(var, str(root / sub))
    try:
        assert _run_assets([POLICY_EVENTS]).success
        assert run_range([H1, SB], START, END, "ZL", "MES", defs=_defs()).success
    finally:
        mp.undo()
    return root


@dataclass
class Env:
    root: Path
    landing: Path
    policy: Path
    home: Path
    instance: dg.DagsterInstance


@pytest.fixture
def env(baseline, tmp_path, monkeypatch) -> Env:
    """A private copy of the baseline (files keep their bytes and times; the warehouse its rows)."""
    root = tmp_path / "case"
    shutil.copytree(baseline, root)
    for var, sub in (("CHIMERA_HOME", "home"), ("CHIMERA_LANDING_DIR", "landing"), ("CHIMERA_POLICY_DIR", "policy")):
        monkeypatch.setenv(var, str(root / sub))
    return Env(root, root / "landing", root / "policy", root / "home", dg.DagsterInstance.ephemeral())


def _run_assets(keys: list[str], instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    job = _defs().resolve_implicit_global_asset_job_def().get_subset(asset_selection={asset_key(k) for k in keys})
    return job.execute_in_process(instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=False,
                                  run_config=QUIET)


# -- building bad DBN files ------------------------------------------------------------------------------
def _dbn(path: Path, symbols=("ZL.v.0", "MES.v.0"), start=date(2024, 3, 6), end=date(2024, 3, 7),
         schema: str = "ohlcv-1h", records: Callable | None = None, mappings: Callable | None = None,
         compress: bool = True) -> Path:
    """A SYNTHETIC DBN file, its records and/or symbology mappings altered by the given functions."""
    recs, maps = demo_records(list(symbols), start, end, schema)
    if records is not None:
        recs = records(recs)
    if mappings is not None:
        maps = mappings(maps)
    path.write_bytes(_encode(recs, maps, schema, _to_ns(start), _to_ns(end), 3, compress))
    return path


def _raw_dbn_bytes() -> bytes:
    recs, maps = demo_records(["ZL.v.0"], date(2024, 3, 6), date(2024, 3, 7), "ohlcv-1h")
    return _encode(recs, maps, "ohlcv-1h", _to_ns(date(2024, 3, 6)), _to_ns(date(2024, 3, 7)), 3, False)


def _high_below_low(recs):
    r = recs.copy()
    i = len(r) // 2
    r["high"][i], r["low"][i] = r["low"][i], r["high"][i] + 1_000_000_000
    return r


def _negative_volume(recs):
    """DBN volume is unsigned: a negative count arrives as a wrapped-around uint64 (2**64 - 5)."""
    r = recs.copy()
    r["volume"][5] = np.uint64(2**64 - 5)
    return r


def _future_timestamp(recs):
    r = recs.copy()
    r["ts_event"][-1] = np.uint64(_to_ns(dt.datetime(2031, 3, 6, 15, tzinfo=dt.UTC)))
    return r


def _duplicated(recs):
    return np.sort(np.concatenate([recs, recs[:10]]), order="ts_event", kind="stable")


def _conflicting_duplicates(recs):
    d = recs[:10].copy()
    d["close"] += 1_000_000_000
    d["high"] += 1_000_000_000
    return np.sort(np.concatenate([recs, d]), order="ts_event", kind="stable")


def _daily_records_under_hourly_header(_recs):
    """Daily bars (rtype ohlcv-1d) in a file whose header says ohlcv-1h."""
    d, _ = demo_records(["ZL.v.0", "MES.v.0"], date(2024, 3, 6), date(2024, 3, 7), "ohlcv-1d")
    return d


def _quoted_series(maps):
    return {("MES';\"DROP TABLE x;--.v.0" if s.startswith("MES") else s): f for s, f in maps.items()}


def _unknown_root(maps):
    return {s.replace("ZL", "XYZ").replace("MES", "QQQ"): f for s, f in maps.items()}


def _gap_on_0306(maps):
    """Every series' mapping intervals with 2024-03-06 cut out (an interval gap)."""
    gap = date(2024, 3, 6)
    out = {}
    for s, f in maps.items():
        rows = []
        for r in f.iter_rows(named=True):
            if r["start_date"] <= gap < r["end_date"]:
                if r["start_date"] < gap:
                    rows.append(dict(r, end_date=gap))
                if gap + timedelta(days=1) < r["end_date"]:
                    rows.append(dict(r, start_date=gap + timedelta(days=1)))
            else:
                rows.append(r)
        out[s] = pl.DataFrame(rows, schema=f.schema)
    return out


def _undef_close(recs):
    """One bar's close is UNDEF_PRICE (int64 max), which decodes to NULL."""
    r = recs.copy()
    r["close"][7] = np.iinfo(np.int64).max
    return r


def _other_dataset(path: Path) -> Path:
    """A good file whose header says XNAS.ITCH (the 16-byte dataset field after the version and length)."""
    raw = bytearray(_raw_dbn_bytes())
    raw[8:24] = b"XNAS.ITCH".ljust(16, b"\0")
    path.write_bytes(bytes(raw))
    return path


def _no_mappings(maps):
    return {s: f.clear() for s, f in maps.items()}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _trades_header(path: Path) -> Path:
    import databento_dbn as dbn

    meta = dbn.Metadata(dataset="GLBX.MDP3", schema=dbn.Schema.TRADES, start=_to_ns(date(2024, 3, 6)),
                        end=_to_ns(date(2024, 3, 7)), stype_in=dbn.SType.CONTINUOUS,
                        stype_out=dbn.SType.INSTRUMENT_ID, symbols=["ZL.v.0"], mappings=[], version=3)
    path.write_bytes(meta.encode())
    return path


def _truncated_zst(path: Path) -> Path:
    good = _dbn(path.with_name("tmp.dbn.zst"))
    data = good.read_bytes()
    good.unlink()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def _truncated_record(path: Path) -> Path:
    path.write_bytes(_raw_dbn_bytes()[:-17])
    return path


@dataclass
class DbnCase:
    id: str
    make: Callable[[Path], Path]  # landing dir -> the bad file it wrote
    outcome: str  # error | warned | check | handled
    needle: str | None = None  # text the error/warning must hold besides the file name
    finding: str | None = None  # why the product falls short today (-> xfail strict)
    prepare: Callable[[Path], None] | None = None  # e.g. remove the good files the bad one replaces


DBN_CASES = [
    DbnCase("empty-zst", lambda d: _write(d / "empty.dbn.zst", b""), "quarantined", "empty"),
    DbnCase("empty-dbn", lambda d: _write(d / "empty.dbn", b""), "quarantined", "empty"),
    DbnCase("truncated-zstd-stream", lambda d: _truncated_zst(d / "cut.dbn.zst"), "quarantined", "truncated"),
    DbnCase("truncated-final-record", lambda d: _truncated_record(d / "cut.dbn"), "error", "truncated"),
    DbnCase("garbage", lambda d: _write(d / "junk.dbn", b"this is not DBN\n" * 64), "quarantined", "not a DBN file"),
    DbnCase("corrupt-zstd", lambda d: _write(d / "junk.dbn.zst", b"\x28\xb5\x2f\xfd" + bytes(range(256)) * 4),
            "quarantined", "zstd"),
    DbnCase("zstd-of-text", lambda d: _write(d / "text.dbn.zst", zstandard.ZstdCompressor().compress(
        b"ts,open,high\n" * 100)), "quarantined", "not a readable DBN file"),
    DbnCase("unsupported-schema", lambda d: _trades_header(d / "trades.dbn"), "quarantined", "unsupported DBN schema"),
    DbnCase("no-symbology", lambda d: _dbn(d / "nosym.dbn.zst", mappings=_no_mappings), "error", "no symbology"),
    DbnCase("quoted-file-name", lambda d: _write(d / "bad'; DROP TABLE x;-- \"é✓.dbn", b"garbage" * 9), "quarantined",
            "not a DBN file"),
    # A record dated beyond the file's symbology cannot be attributed: the whole file is refused.
    DbnCase("future-timestamp", lambda d: _dbn(d / "future.dbn.zst", records=_future_timestamp), "error",
            "no symbology mapping"),
    DbnCase("quoted-series-symbol", lambda d: _dbn(d / "quoted.dbn.zst", mappings=_quoted_series), "error",
            "DROP TABLE x"),
    DbnCase("duplicate-bars-identical", lambda d: _dbn(d / "dups.dbn.zst", records=_duplicated), "handled"),
    DbnCase("duplicate-bars-conflicting", lambda d: _dbn(d / "dupdiff.dbn.zst", records=_conflicting_duplicates),
            "error", "conflicting duplicate"),
    DbnCase("high-below-low", lambda d: _dbn(d / "hilo.dbn.zst", records=_high_below_low), "check",
            "ohlc_consistent"),
    DbnCase("negative-volume", lambda d: _dbn(d / "negvol.dbn.zst", records=_negative_volume), "check",
            "volume"),
    DbnCase("records-of-another-schema", lambda d: _dbn(d / "mislabelled.dbn.zst",
                                                        records=_daily_records_under_hourly_header),
            "error", "ohlcv-1d"),
    DbnCase("unknown-root-series", lambda d: _dbn(d / "xyz.dbn.zst", mappings=_unknown_root), "warned",
            "no root of the universe"),
    DbnCase("undef-close-price", lambda d: _dbn(d / "undef.dbn.zst", records=_undef_close), "error", "UNDEF"),
    DbnCase("other-dataset-header", lambda d: _other_dataset(d / "xnas.dbn"), "error", "XNAS.ITCH"),
    DbnCase("mapping-interval-gap", lambda d: _dbn(d / "gap.dbn.zst", start=date(2024, 3, 5), end=date(2024, 3, 8),
                                                   mappings=_gap_on_0306),
            "error", "no symbology mapping",
            prepare=lambda d: [p.unlink() for p in d.glob("*2024030[56]*")]),
]


def _messages(res: dg.ExecuteInProcessResult, instance: dg.DagsterInstance, caplog) -> str:
    dagster_logs = [e.user_message for e in instance.all_logs(res.run_id) if e.user_message]
    return "\n".join([*dagster_logs, caplog.text])


def _failed_checks(res: dg.ExecuteInProcessResult) -> list[str]:
    return [f"{e.check_name}: {e.metadata}" for e in res.get_asset_check_evaluations() if not e.passed]


def _one_error(res: dg.ExecuteInProcessResult) -> str:
    assert not res.success, "the bad input was accepted"
    failures = [e for e in res.all_events if e.is_step_failure]
    assert len(failures) == 1, f"expected one failing step, got {[e.step_key for e in failures]}"
    return root_cause(failures[0].step_failure_data.error)


def _dbn_case(case: DbnCase, env: Env, caplog) -> None:
    caplog.set_level(logging.WARNING)
    wh = get_warehouse()
    if case.prepare is not None:
        case.prepare(env.landing)
    before = snapshot(wh)
    bad = case.make(env.landing)
    res = run_range([H1, SB], START, END, "ZL", "MES", defs=_defs(), instance=env.instance, raise_on_error=False)
    after = snapshot(wh)
    if case.outcome == "error":
        msg = _one_error(res)
        assert str(bad) in msg, f"the error does not name the file: {msg}"
        assert case.needle is None or case.needle in msg, msg
        assert "Traceback" not in msg
        assert_tables_unchanged(before, after, case.id)
        failed = wh.read(LOAD_STATE).filter(pl.col("status") == "failed")
        assert failed["file_path"].to_list() == [str(bad)], failed.select("file_path", "error").rows()
        # The next run skips the file that failed and leaves everything as it was: one bad download
        # never blocks later runs.
        res2 = run_range([H1, SB], START, END, "ZL", "MES", defs=_defs(), instance=env.instance,
                         raise_on_error=False)
        assert res2.success, root_cause(next(e for e in res2.all_events if e.is_step_failure).step_failure_data.error)
        assert_tables_unchanged(before, snapshot(wh), f"{case.id} (second run)")
    elif case.outcome == "quarantined":
        # Issue 29: a file without a readable header claims no dates, so it never fails the run: it is
        # recorded failed, named in one warning, and named again (as failed before) by the next run.
        assert res.success, _one_error(res)
        text = _messages(res, env.instance, caplog)
        named = [line for line in text.splitlines() if str(bad) in line and "cannot be loaded" in line]
        assert named and (case.needle is None or case.needle in named[0]), text[-3000:]
        assert_tables_unchanged(before, after, case.id, RELOAD_STATUSES, ignore_volatile=True)
        failed = wh.read(LOAD_STATE).filter(pl.col("status") == "failed")
        assert failed["file_path"].unique().to_list() == [str(bad)], failed.select("file_path", "error").rows()
        caplog.clear()
        res2 = run_range([H1, SB], START, END, "ZL", "MES", defs=_defs(), instance=env.instance)
        text2 = _messages(res2, env.instance, caplog)
        assert any(str(bad) in line and "failed before" in line for line in text2.splitlines()), text2[-3000:]
        assert wh.read(LOAD_STATE).filter(pl.col("status") == "failed").height == failed.height
    elif case.outcome == "warned":
        assert res.success, _one_error(res)
        text = _messages(res, env.instance, caplog)
        named = [line for line in text.splitlines() if str(bad) in line or bad.name in line]
        assert named, f"no log line names {bad.name}"
        assert case.needle is None or any(case.needle in line for line in named), named
        assert_tables_unchanged(before, after, case.id, RELOAD_STATUSES, ignore_volatile=True)
    elif case.outcome == "check":
        reported = _failed_checks(res)
        if not res.success:
            reported.append(_one_error(res))
        assert any(case.needle in r for r in reported), f"no failed check/audit names {case.needle}: {reported}"
        assert_tables_unchanged(before, after, case.id)
    else:
        assert res.success, _one_error(res)
        assert_tables_unchanged(before, after, case.id, RELOAD_STATUSES, ignore_volatile=True)


def _param(case):
    marks = [pytest.mark.xfail(strict=True, reason=f"FINDING: {case.finding}")] if case.finding else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in DBN_CASES])
def test_malformed_dbn_file(case, env, caplog):
    _dbn_case(case, env, caplog)


# -- policy event files ----------------------------------------------------------------------------------
def _policy_case(env: Env, name: str, content: bytes, needle: str) -> None:
    wh = get_warehouse()
    before = snapshot(wh)
    bad = env.policy / name
    bad.write_bytes(content)
    res = _run_assets([POLICY_EVENTS], env.instance)
    msg = _one_error(res)
    assert str(bad) in msg and needle in msg, msg
    assert_tables_unchanged(before, snapshot(wh), name)


POLICY_CASES = {
    "invalid-utf8-csv": ("events-latin1.csv",
                         "ts,source,text\n2024-03-05T12:00:00Z,truth_social,caf\xe9 tariffs\n".encode("latin-1"),
                         "invalid UTF-8"),
    "unbalanced-quote-csv": ("quote.csv", b'ts,source,text\n2024-03-05T12:00:00Z,x,"never closed\n'
                             + b"2024-03-06T12:00:00Z,x,next\n" * 50, "unreadable"),
    "missing-column-csv": ("nocol.csv", b"timestamp,text\n2024-03-05T12:00:00Z,hello\n", "missing required column"),
    "bad-timestamp-jsonl": ("badts.jsonl", b'{"ts": "yesterday-ish", "source": "x", "text": "hi"}\n',
                            "unparseable timestamp"),
    "not-json": ("broken.jsonl", b'{"ts": "2024-03-05T12:00:00Z", "source": \n', "unreadable"),
}


@pytest.mark.parametrize("case", list(POLICY_CASES))
def test_malformed_policy_file(case, env):
    _policy_case(env, *POLICY_CASES[case])


HUGE_TEXT = ("tariff china soybeans " * 250_000)  # ~5.5 MB in one event's text


def _huge_policy_file(env: Env) -> Path:
    bad = env.policy / "huge.jsonl"
    pl.DataFrame({"ts": ["2024-03-05T12:00:00Z"], "source": ["truth_social"], "text": [HUGE_TEXT]}).write_ndjson(bad)
    return bad


def test_huge_policy_text_is_refused_by_its_size_before_any_scoring(env):
    """A multi-megabyte text neither crashes nor stalls anything: the load refuses it by its length (the
    size rule, not a failure deep in text scoring), saying how long it is. The time is printed only."""
    import time

    _huge_policy_file(env)
    t0 = time.monotonic()
    msg = _one_error(_run_assets([POLICY_EVENTS], env.instance))
    print(f"huge policy text refused in {time.monotonic() - t0:.1f}s")
    assert f"longer than {MAX_TEXT_CHARS:,} characters" in msg and f"has {len(HUGE_TEXT):,}" in msg, msg


def test_huge_policy_text_is_refused_naming_the_file(env):
    wh = get_warehouse()
    before = snapshot(wh)
    bad = _huge_policy_file(env)
    msg = _one_error(_run_assets([POLICY_EVENTS], env.instance))
    assert str(bad) in msg
    assert_tables_unchanged(before, snapshot(wh), "huge policy text")


def test_overlapping_regimes_yaml_fails_naming_the_file(env, monkeypatch):
    regimes = yaml.safe_load((Path(cli.__file__).parent / "config" / "regimes.yaml").read_text())
    regimes["regimes"].append({"name": "overlapping_2024", "start": date(2024, 1, 1), "end": date(2024, 6, 30),
                               "weight": 300, "description": "overlaps trump_anticipation_2024"})
    bad = env.root / "regimes-overlap.yaml"
    bad.write_text(yaml.safe_dump(regimes))
    monkeypatch.setenv("CHIMERA_REGIMES", str(bad))
    wh = get_warehouse()
    before = snapshot(wh)
    msg = _one_error(_run_assets(["training.regime_calendar"], env.instance))
    assert str(bad) in msg and "overlap" in msg, msg
    assert_tables_unchanged(before, snapshot(wh), "overlapping regimes")


# -- the command line and the universe file ---------------------------------------------------------------
def _cli(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = cli.main(["run", *argv])
    except SystemExit as exc:  # argparse errors
        code = exc.code
    err = capsys.readouterr().err
    return code, err


def _universe(env: Env, name: str, text: str) -> Path:
    path = env.root / name
    path.write_text(text, encoding="utf-8")
    return path


CLI_CASES = {
    "start-after-end": (["--start", "2024-03-05", "--end", "2024-03-01"], "after --end"),
    "start-not-a-date": (["--start", "2024-02-30", "--end", "2024-03-01"], "'2024-02-30' is not a date"),
    "end-in-the-future": (["--start", "2024-03-01", "--end", (date.today() + timedelta(days=400)).isoformat()],
                          "in the future"),
    "no-weekday": (["--start", "2024-03-02", "--end", "2024-03-03"], "holds no trade date"),
    "before-first-partition": (["--start", "2009-01-05", "--end", "2009-01-09"], "before the first trade date"),
    "roots-with-quotes-semicolons-unicode": (["--start", "2024-03-04", "--end", "2024-03-08", "--roots",
                                              "ZL';DROP TABLE x;--,MÉS✓"], "DROP TABLE X"),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_bad_command_line_gives_one_clear_error_and_touches_nothing(case, env, capsys):
    argv, needle = CLI_CASES[case]
    wh = get_warehouse()
    before = snapshot(wh)
    code, err = _cli([*argv, "--landing-dir", str(env.landing)], capsys)
    assert code == 2, err
    assert needle in err, err
    assert err.lower().count("error") == 1 and "Traceback" not in err, err
    assert_tables_unchanged(before, snapshot(wh), case)


UNIVERSE_CASES = {
    "bad-root-name": ("dataset: GLBX.MDP3\nroots:\n  ZL:\n    series: [ZL.v.0]\n  \"ZL'; DROP TABLE x;--\":\n"
                      "    series: [ZL.v.0]\n", "DROP TABLE x"),
    "lower-case-unicode-root": ("roots:\n  zlé:\n    series: [ZL.v.0]\n", "zlé"),
    "bad-series-symbol": ("roots:\n  ZL:\n    series: [\"ZL.v.0; rm -rf /\"]\n", "ZL.v.0; rm -rf /"),
    "not-yaml": ("roots: [ZL: {series: \n", "not valid YAML"),
}


@pytest.mark.parametrize("case", list(UNIVERSE_CASES))
def test_bad_universe_yaml_gives_one_clear_error_naming_the_file(case, env, capsys, monkeypatch):
    text, needle = UNIVERSE_CASES[case]
    bad = _universe(env, f"universe-{case}.yaml", text)
    monkeypatch.setenv("CHIMERA_UNIVERSE", str(bad))
    wh = get_warehouse()
    before = snapshot(wh)
    code, err = _cli(["--start", "2024-03-04", "--end", "2024-03-08", "--roots", "ZL", "--landing-dir",
                      str(env.landing)], capsys)
    assert code == 2, err
    assert str(bad) in err and needle in err, err
    assert err.lower().count("error") == 1 and "Traceback" not in err, err
    assert_tables_unchanged(before, snapshot(wh), case)


def test_the_corpus_has_at_least_twenty_inputs():
    n = len(DBN_CASES) + len(POLICY_CASES) + 1 + 1 + len(CLI_CASES) + len(UNIVERSE_CASES)  # + huge text, regimes
    assert n >= 20, n


# -- what happens after a bad input ---------------------------------------------------------------------------
def _baseline_raw(wh) -> pl.DataFrame:
    from chimera_assets.schemas import OHLCV_1H
    from chimera_assets_tests.reliability.helpers import canonical

    return canonical(OHLCV_1H, wh.read(OHLCV_1H), drop_volatile=True)


def test_a_file_the_audit_rejects_does_not_quarantine_the_good_files_loaded_with_it(env):
    wh = get_warehouse()
    want = _baseline_raw(wh)
    bad = _dbn(env.landing / "hilo.dbn.zst", records=_high_below_low)
    res = run_range([H1, SB], START, END, "ZL", "MES", defs=_defs(), instance=env.instance, raise_on_error=False)
    assert "ohlc_consistent" in _one_error(res)
    bad.unlink()
    # The corrected download: the same bars, other bytes (DBN version 2).
    recs, maps = demo_records(["ZL.v.0", "MES.v.0"], date(2024, 3, 6), date(2024, 3, 7), "ohlcv-1h")
    (env.landing / "corrected.dbn.zst").write_bytes(
        _encode(recs, maps, "ohlcv-1h", _to_ns(date(2024, 3, 6)), _to_ns(date(2024, 3, 7)), 2, True))
    assert run_range([H1, SB], START, END, "ZL", "MES", defs=_defs(), instance=env.instance).success
    got = _baseline_raw(wh)
    assert got.equals(want), f"{want.height} bars before, {got.height} after the corrected rerun"


def test_deleting_a_wrong_file_keeps_its_rows_until_prune_restores_what_the_remaining_files_say(env, capsys):
    """Sources never delete by absence: the rerun after deleting a loaded file leaves its rows (and
    says nothing is missing from the files present); ``chimera prune --apply`` then re-derives the
    partitions it fed from the remaining files, which restores exactly what they say."""
    from chimera_assets.demo.data import demo_dbn_bytes

    wh = get_warehouse()
    want = _baseline_raw(wh)
    wrong = env.landing / "wrong-prices.dbn.zst"  # other prices for 03-06 (another seed), newest file wins
    wrong.write_bytes(demo_dbn_bytes(["ZL.v.0", "MES.v.0"], date(2024, 3, 6), date(2024, 3, 7), "ohlcv-1h", seed=8))
    assert run_range([H1, SB], START, END, "ZL", "MES", defs=_defs(), instance=env.instance).success
    loaded_wrong = _baseline_raw(wh)
    assert not loaded_wrong.equals(want)
    wrong.unlink()
    assert run_range([H1, SB], START, END, "ZL", "MES", defs=_defs(), instance=env.instance).success
    assert _baseline_raw(wh).equals(loaded_wrong), "a deleted file's rows changed without prune"
    assert cli.main(["prune"]) == 0
    out = capsys.readouterr().out
    assert "wrong-prices.dbn.zst" in out and "dry run" in out, out
    assert _baseline_raw(wh).equals(loaded_wrong), "the dry run changed the table"
    assert cli.main(["prune", "--apply"]) == 0
    assert _baseline_raw(wh).equals(want)


def test_a_file_that_failed_to_decode_is_named_when_later_runs_skip_it(env, caplog):
    caplog.set_level(logging.WARNING)
    bad = _truncated_record(env.landing / "cut.dbn")
    assert not run_range([H1, SB], START, END, "ZL", "MES", defs=_defs(), instance=env.instance,
                         raise_on_error=False).success
    res = run_range([H1, SB], START, END, "ZL", "MES", defs=_defs(), instance=env.instance)
    assert str(bad) in _messages(res, env.instance, caplog)
