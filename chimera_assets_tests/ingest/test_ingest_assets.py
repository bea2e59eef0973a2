"""Raw ingestion through the Dagster assets: real batch counts, idempotency, the ledger, bad files."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import numpy as np
import polars as pl
import pytest
from databento import DBNStore

from chimera_assets.demo.data import write_demo_files
from chimera_assets.ingest.ledger import read_ledger
from chimera_assets.lib.runner import root_cause
from chimera_assets.schemas import OHLCV_1H
from chimera_assets.warehouse import get_warehouse
from chimera_assets_tests.conftest import shared_data
from chimera_assets_tests.dagster_helpers import run_range

H1 = "market_data.databento_futures_ohlcv_1h"
ROOTS = ("ZL", "MES", "ES")


def _independent_counts(files: list[Path], series: list[str]) -> dict[str, int]:
    """Records per series counted straight from the DBN (numpy + mapping intervals, no project code)."""
    counts = dict.fromkeys(series, 0)
    for f in files:
        store = DBNStore.from_file(f)
        arr = store.to_ndarray()
        day = (arr["ts_event"] // 86_400_000_000_000).astype(np.int64)
        for s in series:
            for iv in store.metadata.mappings.get(s, []):
                lo = (datetime.combine(iv["start_date"], datetime.min.time(), UTC).timestamp()) // 86400
                hi = (datetime.combine(iv["end_date"], datetime.min.time(), UTC).timestamp()) // 86400
                m = (arr["instrument_id"] == int(iv["symbol"])) & (day >= lo) & (day < hi)
                counts[s] += int(m.sum())
    return counts


def _trade_date(ts: datetime) -> date:
    d = (ts.astimezone(ZoneInfo("America/Chicago")) + timedelta(hours=7)).date()
    return d + timedelta(days=(7 - d.weekday()) % 7) if d.weekday() >= 5 else d


@pytest.fixture(scope="module")
def real_1h(tmp_path_factory):
    """The whole real batch ingested for ZL, MES, ES in ONE Dagster run."""
    batch = shared_data("databento-batch")
    home = tmp_path_factory.mktemp("ingest_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("CHIMERA_HOME", str(home))
    mp.setenv("CHIMERA_LANDING_DIR", str(batch))
    res = run_range([H1], "2024-01-01", "2025-12-16", "ZL", "ES")
    wh = get_warehouse()
    mp.undo()
    return batch, res, wh, home


def test_real_batch_row_counts_equal_file_records_per_series(real_1h):
    batch, res, wh, _ = real_1h
    assert res.success
    files = sorted(batch.rglob("*.dbn.zst"))
    expected = _independent_counts(files, [f"{r}.v.0" for r in ROOTS])
    got = dict(wh.read(OHLCV_1H, columns=["symbol"]).group_by("symbol").len().rows())
    assert {r: got.get(r, 0) for r in ROOTS} == {r: expected[f"{r}.v.0"] for r in ROOTS}
    assert min(got.values()) > 9_000  # two years of hourly bars per root


def test_real_batch_trade_dates_and_instruments_recomputed_for_20_random_bars(real_1h):
    batch, _, wh, _ = real_1h
    rows = wh.read(OHLCV_1H).sample(20, seed=11)
    by_file = {}
    for f in sorted(batch.rglob("*.dbn.zst")):
        store = DBNStore.from_file(f)
        by_file[f] = store
    for r in rows.iter_rows(named=True):
        assert r["trade_date"] == _trade_date(r["ts_event"]), r
        # The instrument must be the one the metadata maps the series to on that UTC day.
        day = r["ts_event"].date()
        ids = {
            int(iv["symbol"])
            for store in by_file.values()
            for iv in store.metadata.mappings.get(r["series"], [])
            if iv["start_date"] <= day < iv["end_date"]
        }
        assert r["instrument_id"] in ids, r
        assert r["symbol"] == r["series"].split(".")[0]


def test_reingest_is_skipped_unchanged_and_counts_do_not_move(real_1h, monkeypatch):
    batch, _, wh, home = real_1h
    monkeypatch.setenv("CHIMERA_HOME", str(home))
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(batch))
    before = wh.read(OHLCV_1H, columns=["symbol"]).height
    res = run_range([H1], "2024-01-01", "2025-12-16", "ZL", "ES")
    assert res.success
    assert wh.read(OHLCV_1H, columns=["symbol"]).height == before
    led = read_ledger(wh).filter(pl.col("schema") == "ohlcv-1h")
    statuses = led.sort("finished_at")["status"].to_list()
    assert statuses.count("loaded") == 24 and statuses.count("skipped_unchanged") == 24
    assert statuses.index("skipped_unchanged") > max(i for i, s in enumerate(statuses) if s == "loaded")


def test_overlapping_second_copy_changes_no_count(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(landing))
    write_demo_files(landing / "monthly", ["ZL", "MES"], date(2024, 3, 1), date(2024, 4, 1))
    assert run_range([H1], "2024-03-01", "2024-03-29", "ZL", "MES").success
    wh = get_warehouse()
    before = wh.read(OHLCV_1H).drop("load_id").sort("ts_event", "symbol")
    # The same days cut another way: daily files overlapping the monthly one (different bytes).
    write_demo_files(landing / "daily", ["ZL", "MES"], date(2024, 3, 10), date(2024, 3, 20), files="daily")
    assert run_range([H1], "2024-03-01", "2024-03-29", "ZL", "MES").success
    after = wh.read(OHLCV_1H).drop("load_id").sort("ts_event", "symbol")
    assert after.equals(before)
    assert after.select("ts_event", "symbol", "instrument_id").is_duplicated().sum() == 0


def _truncate(src: Path, dst: Path) -> None:
    import zstandard

    raw = zstandard.ZstdDecompressor().stream_reader(src.open("rb")).read()
    dst.write_bytes(zstandard.ZstdCompressor().compress(raw[: len(raw) - 17]))


def _unknown_schema(dst: Path) -> None:
    import databento_dbn as dbn

    meta = dbn.Metadata(
        dataset="GLBX.MDP3", schema=dbn.Schema.TRADES, start=1_704_067_200_000_000_000,
        end=1_704_153_600_000_000_000, stype_in=dbn.SType.CONTINUOUS, stype_out=dbn.SType.INSTRUMENT_ID,
        symbols=["ZL.v.0"], mappings=[], version=3,
    )
    dst.write_bytes(meta.encode())


@pytest.mark.parametrize("kind", ["empty", "truncated", "garbage", "unknown_schema"])
def test_bad_file_is_named_once_with_a_failed_ledger_row_and_tables_unchanged(tmp_path, monkeypatch, kind):
    landing = tmp_path / "landing"
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(landing))
    good = write_demo_files(landing, ["ZL"], date(2024, 3, 1), date(2024, 3, 8), files="daily")
    assert run_range([H1], "2024-03-01", "2024-03-07", "ZL").success
    wh = get_warehouse()
    before = wh.read(OHLCV_1H).sort("ts_event")
    bad = landing / f"bad-{kind}.dbn.zst"
    if kind == "empty":
        bad.write_bytes(b"")
    elif kind == "truncated":
        _truncate(good[2], bad)
        good[2].unlink()
    elif kind == "garbage":
        bad.write_bytes(b"this is not DBN at all\n" * 10)
    else:
        _unknown_schema(bad)
    instance = dg.DagsterInstance.ephemeral()
    res = run_range([H1], "2024-03-01", "2024-03-07", "ZL", raise_on_error=False, instance=instance)
    if kind == "truncated":  # its header claims the requested days: the step fails, naming it
        assert not res.success
        failures = [e for e in res.all_events if e.is_step_failure]
        assert len(failures) == 1
        msg = root_cause(failures[0].step_failure_data.error)
        assert str(bad) in msg, msg
    else:  # no readable header: it claims no dates, so it never fails a run (issue 29): a warning names it
        assert res.success
        logs = [e.user_message for e in instance.all_logs(res.run_id) if e.user_message]
        assert any(str(bad) in m and "cannot be loaded" in m for m in logs), logs
    assert wh.read(OHLCV_1H).sort("ts_event").equals(before)
    led = read_ledger(wh)
    failed = led.filter(pl.col("status") == "failed")
    assert failed["file_path"].to_list() == [str(bad)] and failed["error"][0]


def test_copy_of_real_file_under_another_name_is_skipped_by_sha(tmp_path, monkeypatch):
    batch = shared_data("databento-batch")
    src = sorted(batch.rglob("*.dbn.zst"))[0]
    landing = tmp_path / "landing"
    landing.mkdir()
    shutil.copy(src, landing / src.name)
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(landing))
    assert run_range([H1], "2024-01-02", "2024-01-31", "ZL").success
    n = get_warehouse().read(OHLCV_1H).height
    shutil.copy(src, landing / ("copy-" + src.name))
    assert run_range([H1], "2024-01-02", "2024-01-31", "ZL").success
    led = read_ledger(get_warehouse())
    assert get_warehouse().read(OHLCV_1H).height == n
    # The copy has the same sha256 as the loaded original: both are reported unchanged, nothing reloaded.
    assert led.filter(pl.col("status") == "skipped_unchanged").height == 2


def test_blockwise_backfill_equals_one_block_and_a_bad_file_in_a_late_block_writes_nothing(tmp_path, monkeypatch):
    """Long backfills are built in blocks of trade dates (bounded memory) but written as ONE change."""
    from chimera_assets.defs.market_data import assets as market_data

    landing = tmp_path / "landing"
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(landing))
    files = write_demo_files(landing, ["ZL", "MES"], date(2024, 3, 1), date(2024, 4, 1), files="daily")
    monkeypatch.setenv("CHIMERA_HOME", str(tmp_path / "one_block"))
    assert run_range([H1], "2024-03-01", "2024-03-29", "ZL", "MES").success
    one_block = get_warehouse().read(OHLCV_1H).drop("load_id").sort("ts_event", "symbol")

    monkeypatch.setattr(market_data, "BLOCK_TRADE_DATES", 4)  # 21 trade dates -> 6 blocks
    assert len(market_data._date_blocks([(d, "ZL") for d in pl.date_range(date(2024, 3, 1), date(2024, 3, 29),
                                                                             eager=True) if d.weekday() < 5])) == 6
    monkeypatch.setenv("CHIMERA_HOME", str(tmp_path / "blocks"))
    res = run_range([H1], "2024-03-01", "2024-03-29", "ZL", "MES")
    assert res.success
    blocks = get_warehouse().read(OHLCV_1H).drop("load_id").sort("ts_event", "symbol")
    assert blocks.height == one_block.height > 0
    assert blocks.equals(one_block)
    led = read_ledger(get_warehouse()).filter(pl.col("status") == "loaded")
    # One ledger row per file even though a file may be read for two blocks, rows summed over blocks.
    assert led.height == led["file_path"].n_unique()
    assert led["rows_written"].sum() == blocks.height

    # A bad file whose bars fall in the last two blocks (trade dates 03-28, 03-29): it is refused when its
    # coverage is decoded, before any block is built; the other files load (issue 29: a failing file never
    # blocks the others) and the step then fails naming it, with its failed ledger row.
    monkeypatch.setenv("CHIMERA_HOME", str(tmp_path / "bad_late"))
    last = next(p for p in files if "-20240328-" in p.name)
    _truncate(last, landing / ("bad-" + last.name))
    last.unlink()
    res = run_range([H1], "2024-03-01", "2024-03-29", "ZL", "MES", raise_on_error=False)
    assert not res.success
    wh = get_warehouse()
    loaded = wh.read(OHLCV_1H).drop("load_id").sort("ts_event", "symbol")
    assert 0 < loaded.height < one_block.height
    assert loaded.equals(one_block.join(loaded.select("ts_event", "symbol"), on=["ts_event", "symbol"], how="semi"))
    failed = read_ledger(wh).filter(pl.col("status") == "failed")
    assert failed["file_path"].to_list() == [str(landing / ("bad-" + last.name))]


def test_an_audit_failing_in_one_block_names_that_blocks_files_only(tmp_path, monkeypatch):
    """The next block is decoded ahead (prefetch) while one is written; a failing audit must still be
    pinned on the files of the block it judged, and nothing is published."""
    from chimera_assets.defs.market_data import assets as market_data
    from chimera_assets.warehouse.base import AuditFailed

    landing = tmp_path / "landing"
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(landing))
    write_demo_files(landing, ["ZL"], date(2024, 3, 1), date(2024, 4, 1), files="daily")
    monkeypatch.setattr(market_data, "BLOCK_TRADE_DATES", 4)

    def audit_for(spec):
        def audit(frame):
            if frame.filter(pl.col("trade_date") == date(2024, 3, 14)).height:
                raise AuditFailed("injected: a bad bar on 2024-03-14")
        return audit

    monkeypatch.setattr(market_data, "audit_for", audit_for)
    res = run_range([H1], "2024-03-01", "2024-03-29", "ZL", raise_on_error=False)
    assert not res.success
    wh = get_warehouse()
    assert not wh.table_exists(OHLCV_1H)
    failed = read_ledger(wh).filter(pl.col("status") == "failed")
    names = sorted(Path(p).name for p in failed["file_path"].to_list())
    # Block 3 holds trade dates 03-13..03-18; its files are those selected for it (from three days
    # before 03-13, the weekend margin, to 03-18). Block 4's files (03-19 on) were already being
    # decoded ahead, but they were not judged and must not be named.
    stamps = sorted({n.split("-")[-1].split(".")[0] for n in names})
    assert "20240314" in stamps and all("20240310" <= s <= "20240318" for s in stamps), names
    assert all("injected" in e for e in failed["error"].to_list())


def test_raw_assets_without_landing_files_are_named_and_a_bad_file_keeps_them_all(tmp_path):
    from chimera_assets.lib.resources import DatabentoSource
    from chimera_assets.lib.runner import raw_assets_with_nothing_to_load

    landing = tmp_path / "landing"
    write_demo_files(landing, ["ZL"], date(2024, 3, 1), date(2024, 3, 8), files="daily")
    source = DatabentoSource(mode="landing", landing_dir=str(landing))
    dates = [date(2024, 3, d) for d in (4, 5, 6)]
    skipped = {k.path[-1]: why for k, why in raw_assets_with_nothing_to_load(source, dates, ["ZL"]).items()}
    assert set(skipped) == {"databento_futures_ohlcv_1m", "databento_futures_ohlcv_1d",
                            "databento_futures_statistics", "databento_definitions"}
    assert "no ohlcv-1m file" in skipped["databento_futures_ohlcv_1m"] and str(landing) in skipped[
        "databento_futures_ohlcv_1m"]
    # Dates no 1h file covers: the 1h asset has nothing to load either.
    later = raw_assets_with_nothing_to_load(source, [date(2024, 6, 3)], ["ZL"])
    assert "databento_futures_ohlcv_1h" in {k.path[-1] for k in later}
    # An unreadable file could be of any schema: every raw asset runs, so the bad file fails loudly.
    (landing / "garbage.dbn").write_bytes(b"not DBN\n" * 10)
    assert raw_assets_with_nothing_to_load(source, dates, ["ZL"]) == {}
    # The API mode fetches what it is asked: never skipped here.
    assert raw_assets_with_nothing_to_load(DatabentoSource(mode="api"), dates, ["ZL"]) == {}
