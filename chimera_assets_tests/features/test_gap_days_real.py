"""Issue 22: real vendor gaps never block a range (SPEC 6.3, 2026-12-08).

Three kinds of gap, crafted from the real batch (../shared/data/databento-batch; skipped when absent)
by dropping records from copies of its monthly files (the headers still claim the whole month):

1. a calendar session with no bars: Labor Day 2025-09-01 for ES and CL (CME_Equity and the energy
   calendar list an early-close session);
2. a vendor outage across roots: ES and ZL bars stop at 17:00 UTC on Thursday 2025-09-11 and resume on
   Sunday evening; CL has a partial Friday (bars stop at 14:00 UTC = 09:00 CT);
3. a root's last day missing at the end of a monthly file: ZL on 2025-09-30, October not loaded.

The run over the range exits 0, publishes every other partition (equal to a run without the gaps
except for the rows that depend on the gap days), the WARN check lists exactly the gap days, and a
corrected file re-loaded later fills them: the tables then equal the clean run's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from chimera_assets.lib.runner import format_summary
from chimera_assets.quality.evaluation import evaluate_rule
from chimera_assets.schemas import DAILY_ML_MATRIX, SESSION_BARS
from chimera_assets.trade_calendar import weekday_dates
from chimera_assets_tests.conftest import shared_data
from chimera_assets_tests.e2e_helpers import comparable, data_tables, run_main_job
from chimera_assets_tests.gap_files import any_of, between, drop_records, on_day

ROOTS = ["ZL", "ES", "CL"]
START, END = date(2025, 8, 18), date(2025, 9, 30)
AUG, SEP = "glbx-mdp3-20250801-20250831.ohlcv-1h.dbn.zst", "glbx-mdp3-20250901-20250930.ohlcv-1h.dbn.zst"
LABOR_DAY, THU, FRI, LAST = date(2025, 9, 1), date(2025, 9, 11), date(2025, 9, 12), date(2025, 9, 30)
GAPS = {
    (LABOR_DAY, "ES"): "no_trades", (LABOR_DAY, "CL"): "no_trades",  # 1: the two files together cover it
    (THU, "ES"): "partial", (FRI, "ES"): "no_trades", (FRI, "ZL"): "no_trades", (FRI, "CL"): "partial",  # 2
    (LAST, "ZL"): "no_trades",  # 3: the September file's records (other roots) reach past ZL's close
}
# ZL's Thursday stops at 12:00 CT, 80 minutes before its 13:20 CT close: inside the 2 h tolerance.
TOUCHED = set(GAPS) | {(THU, "ZL")}

_OUTAGE = (datetime(2025, 9, 11, 17, tzinfo=UTC), datetime(2025, 9, 14, 22, tzinfo=UTC))


def _landing(tmp_path: Path, name: str, gaps: bool) -> Path:
    batch = shared_data("databento-batch")
    land = tmp_path / name
    land.mkdir()
    aug, sep = next(batch.rglob(AUG)), next(batch.rglob(SEP))
    if not gaps:
        for f in (aug, sep):
            (land / f.name).symlink_to(f)
        return land
    assert drop_records(aug, land / AUG.removesuffix(".zst"), on_day(["ES", "CL"], LABOR_DAY)) > 0
    rule = any_of(
        on_day(["ES", "CL"], LABOR_DAY),
        between(["ES", "ZL"], *_OUTAGE),
        between(["CL"], datetime(2025, 9, 12, 14, tzinfo=UTC), _OUTAGE[1]),
        on_day(["ZL"], LAST),
    )
    assert drop_records(sep, land / SEP.removesuffix(".zst"), rule) > 0
    return land


def _run(tmp_path: Path, monkeypatch, home: str, landing: Path, lines: list[str]):
    monkeypatch.setenv("CHIMERA_HOME", str(tmp_path / home))
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(landing))
    return run_main_job(START, END, ROOTS, lines)


def _tables(wh) -> dict[str, pl.DataFrame]:
    return {t.fqn: comparable(t, wh.read(t)) for t in data_tables(ROOTS) if wh.table_exists(t)}


def _key_cols(frame: pl.DataFrame) -> list[str]:
    return ["data_date" if "data_date" in frame.columns else "trade_date", "symbol"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gaps")
    mp = pytest.MonkeyPatch()
    try:
        clean_lines, gap_lines, fixed_lines = [], [], []
        _, clean_wh = _run(tmp, mp, "clean", _landing(tmp, "clean_landing", gaps=False), clean_lines)
        clean = _tables(clean_wh)
        gap_landing = _landing(tmp, "gap_landing", gaps=True)
        summary, gap_wh = _run(tmp, mp, "gap", gap_landing, gap_lines)
        gapped = _tables(gap_wh)
        run_keys = [(d, r) for d in weekday_dates(START, END) for r in ROOTS]
        check = evaluate_rule(gap_wh, SESSION_BARS, "no_missing_sessions", run_keys,
                              calendars={r: c for r, c in (("ZL", "CME_Agriculture"), ("ES", "CME_Equity"),
                                                           ("CL", "CMEGlobex_Crude"))})
        # The corrected files arrive (same names, full content): a re-run of the range fills the gaps.
        for f in gap_landing.iterdir():
            f.unlink()
        for f in _landing(tmp, "fixed_src", gaps=False).iterdir():
            (gap_landing / f.name).symlink_to(f.resolve())
        _, fixed_wh = _run(tmp, mp, "gap", gap_landing, fixed_lines)
        fixed = _tables(fixed_wh)
    finally:
        mp.undo()
    return {"clean": clean, "gapped": gapped, "fixed": fixed, "summary": summary, "check": check,
            "lines": gap_lines}


def test_the_range_with_gaps_exits_0_and_names_the_gap_days(runs):
    summary = runs["summary"]
    assert summary.success and not summary.checks_failed, format_summary(summary)
    assert "features/session_bars:no_missing_sessions" in summary.checks_warned
    listed = {(date.fromisoformat(k.split("|")[0]), k.split("|")[1]): status
              for status, (_, keys) in summary.gap_days.items() for k in keys}
    assert listed == GAPS, format_summary(summary)
    text = format_summary(summary)
    assert "days without a publishable session: 7" in text and "partial: " in text


def test_the_warn_check_lists_exactly_the_gap_days_with_their_status(runs):
    off = runs["check"].offenders
    assert dict(((d, s), st) for d, s, st in off.select("trade_date", "symbol", "status").rows()) == GAPS


def test_every_other_partition_is_published_and_equal_except_what_depends_on_the_gaps(runs):
    clean, gapped = runs["clean"], runs["gapped"]
    assert set(clean) == set(gapped)
    first_gap = {r: min(d for d, s in TOUCHED if s == r) for r in ROOTS}
    for fqn, frame in clean.items():
        if "symbol" not in frame.columns or not any(c in frame.columns for c in ("trade_date", "data_date")):
            continue
        date_col, _ = _key_cols(frame)
        keys = set(frame.select(_key_cols(frame)).rows())
        got = gapped[fqn]
        got_keys = set(got.select(_key_cols(got)).rows())
        if fqn == SESSION_BARS.fqn or fqn.startswith("market_data."):
            # The raw bars and session_bars keep the partial sessions (not complete); no row for days without bars.
            assert got_keys == keys - {k for k, st in GAPS.items() if st != "partial"}, fqn
        else:
            assert got_keys == keys - set(GAPS), fqn
        # Rows before a root's first gap day do not depend on it: identical to the clean run.
        for root in sorted(set(frame["symbol"].to_list())):
            before = pl.col(date_col) < first_gap[root]
            # Targets look ahead (t+h sessions) by definition: the gap days shift them, nothing else.
            ahead = [c for c in frame.columns if c.startswith("target_")]
            a = frame.filter((pl.col("symbol") == root) & before).drop(ahead)
            b = got.filter((pl.col("symbol") == root) & before).drop(ahead)
            assert a.height and a.equals(b), f"{fqn} {root}"
    # A session bar's own prices depend only on its own bars.
    cols = ["trade_date", "symbol", "instrument_id", "open", "high", "low", "close", "volume", "bar_count"]
    untouched = pl.DataFrame(sorted(TOUCHED), schema={"trade_date": pl.Date, "symbol": pl.Utf8}, orient="row")
    a = clean[SESSION_BARS.fqn].join(untouched, on=["trade_date", "symbol"], how="anti").select(cols)
    b = gapped[SESSION_BARS.fqn].join(untouched, on=["trade_date", "symbol"], how="anti").select(cols)
    assert a.equals(b)
    status = gapped[SESSION_BARS.fqn].filter(pl.col("session_status") != "complete")
    assert {(d, s) for d, s in status.select("trade_date", "symbol").rows()} == {
        k for k, st in GAPS.items() if st == "partial"}


def test_a_corrected_file_fills_the_gap_days_and_what_depends_on_them(runs):
    clean, fixed = runs["clean"], runs["fixed"]
    for fqn, frame in clean.items():
        assert frame.equals(fixed[fqn]), fqn
    m = fixed[DAILY_ML_MATRIX.fqn]
    assert set(GAPS) <= set(m.select("data_date", "symbol").rows())
