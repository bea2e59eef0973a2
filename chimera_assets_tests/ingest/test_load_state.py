"""Load state per raw partition on REAL data (../shared/data/databento-batch, or files crafted from it):
issue 14 cases 2 (a cut copy never shrinks), 3 (the landing sensor loads the rest of a partly loaded
file), 4 (a lost ledger write is repaired; a deleted file's rows stay, are warned about and pruned),
5 (foreign dataset, UNDEF prices refused) and 6 (no materialization without a source)."""

from __future__ import annotations

import shutil
import warnings
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
import zstandard
from databento import DBNStore

from chimera_assets import cli
from chimera_assets.definitions import build_definitions
from chimera_assets.defs.market_data.landing_sensor import LANDING_SENSOR_NAME
from chimera_assets.defs.market_data.run_requests import RANGE_END, RANGE_START, RAW_JOB_NAME
from chimera_assets.ingest import execute as execute_mod
from chimera_assets.ingest import ledger
from chimera_assets.ingest.ledger import read_ledger
from chimera_assets.lib.io_manager import WarehouseResource
from chimera_assets.lib.resources import DatabentoSource
from chimera_assets.lib.runner import root_cause
from chimera_assets.schemas import OHLCV_1H, OHLCV_1M
from chimera_assets.universe import get_universe
from chimera_assets.warehouse import get_warehouse
from chimera_assets_tests.conftest import shared_data
from chimera_assets_tests.dagster_helpers import QUIET, asset_key, run_range
from chimera_assets_tests.reliability.helpers import (
    assert_ledger_consistent,
    canonical,
    ledger_orphans,
    snapshot,
)

H1 = "market_data.databento_futures_ohlcv_1h"
M1 = "market_data.databento_futures_ohlcv_1m"
MAR = "glbx-mdp3-20240301-20240331.ohlcv-1h.dbn.zst"
FEB = "glbx-mdp3-20240201-20240229.ohlcv-1h.dbn.zst"


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _batch_file(name: str) -> Path:
    return next(shared_data("databento-batch").rglob(name))


@pytest.fixture
def landing(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "landing"
    d.mkdir()
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(d))
    return d


def _raw(path: Path) -> bytes:
    return zstandard.ZstdDecompressor().stream_reader(path.open("rb")).read()


def _layout(raw: bytes) -> tuple[int, int]:
    """(header length, record length) of an uncompressed DBN stream."""
    head = 8 + int.from_bytes(raw[4:8], "little")
    return head, raw[head] * 4


def _bars(wh, roots=("ZL", "MES"), lo=date(2024, 3, 1), hi=date(2024, 3, 29)) -> pl.DataFrame:
    f = wh.read(OHLCV_1H).filter(pl.col("symbol").is_in(list(roots)) & pl.col("trade_date").is_between(lo, hi))
    return canonical(OHLCV_1H, f, drop_volatile=True)


def _clean(tmp_path: Path, monkeypatch, files: list[Path], start: str, end: str, first: str, last: str):
    """A clean warehouse: only ``files`` in a fresh landing directory, one run."""
    home, land = tmp_path / "clean_home", tmp_path / "clean_landing"
    land.mkdir()
    for f in files:
        shutil.copy(f, land / f.name)
    with monkeypatch.context() as mp:
        mp.setenv("CHIMERA_HOME", str(home))
        mp.setenv("CHIMERA_LANDING_DIR", str(land))
        assert run_range([H1], start, end, first, last).success
        return get_warehouse()


# -- case 2 ------------------------------------------------------------------------------------------------
def test_a_copy_cut_halfway_never_shrinks_the_partitions_and_the_ledger_has_its_real_span(landing):
    src = _batch_file(MAR)
    shutil.copy(src, landing / MAR)
    instance = dg.DagsterInstance.ephemeral()
    assert run_range([H1], "2024-03-01", "2024-03-29", "ZL", "MES", instance=instance).success
    wh = get_warehouse()
    before = _bars(wh)
    parts_before = instance.get_materialized_partitions(asset_key(H1))
    print(f"ZL+MES March 2024 hourly bars: {before.height}")
    assert before.height > 800
    # The same file, uncompressed and cut at the record boundary halfway (a copy in progress), replaces it.
    raw = _raw(src)
    head, rec = _layout(raw)
    n = (len(raw) - head) // rec
    cut = landing / MAR.replace(".zst", "")
    cut.write_bytes(raw[: head + (n // 2) * rec])
    (landing / MAR).unlink()
    assert run_range([H1], "2024-03-01", "2024-03-29", "ZL", "MES", instance=instance).success
    after = _bars(wh)
    assert after.height == before.height and after.equals(before), "the cut copy changed March's rows"
    assert instance.get_materialized_partitions(asset_key(H1)) == parts_before
    # The ledger row of the cut copy records ITS records' first and last ts_event, not the header period.
    arr = DBNStore.from_file(cut).to_ndarray()
    first = datetime.fromtimestamp(int(arr["ts_event"].min()) / 1e9, UTC)
    last = datetime.fromtimestamp(int(arr["ts_event"].max()) / 1e9, UTC)
    row = read_ledger(wh).filter((pl.col("file_path") == str(cut)) & (pl.col("status") == "loaded"))
    assert row.height >= 1 and row["record_count"][0] == n // 2
    assert row["first_ts_event"][0] == first and row["last_ts_event"][0] == last < datetime(2024, 3, 20, tzinfo=UTC)


# -- case 3 ------------------------------------------------------------------------------------------------
def _run_request(defs: dg.Definitions, rr: dg.RunRequest, instance) -> None:
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=set(rr.asset_selection))
    tags = dict(rr.tags)
    if rr.partition_key:
        tags["dagster/partition"] = rr.partition_key
    res = job.execute_in_process(instance=instance, tags=tags, run_config=QUIET, raise_on_error=False)
    assert res.success, [root_cause(e.step_failure_data.error) for e in res.all_events if e.is_step_failure]


def test_the_landing_sensor_loads_the_rest_of_a_file_first_loaded_for_2_dates_and_1_root(
    tmp_path, monkeypatch, landing
):
    src = _batch_file(MAR)
    shutil.copy(src, landing / MAR)
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    assert run_range([H1], "2024-03-04", "2024-03-05", "ZL", defs=defs, instance=instance).success
    wh = get_warehouse()
    assert wh.read(OHLCV_1H)["symbol"].unique().to_list() == ["ZL"]
    sensor = defs.get_repository_def().get_sensor_def(LANDING_SENSOR_NAME)
    resources = {"databento": DatabentoSource(landing_dir=str(landing)), "warehouse": WarehouseResource()}
    cursor, requests = None, []
    for _ in range(3):  # first sight, then complete
        res = sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))
        cursor = res.cursor
        requests = [rr for rr in (res.run_requests or []) if rr.job_name == RAW_JOB_NAME]
        if requests:
            break
    assert requests, "the sensor requested nothing for a partly loaded file"
    pdef = defs.get_assets_def(asset_key(H1)).partitions_def
    asked = set()
    for rr in requests:
        keys = [rr.partition_key] if rr.partition_key else pdef.get_partition_keys_in_range(
            dg.PartitionKeyRange(rr.tags[RANGE_START], rr.tags[RANGE_END]))
        asked |= {str(k) for k in keys}
    assert "2024-03-04|ZL" not in asked and "2024-03-05|ZL" not in asked  # already loaded: not asked again
    assert {"2024-03-04|MES", "2024-03-15|ZL", "2024-04-01|CL"} <= asked
    for rr in requests:
        _run_request(defs, rr, instance)
    roots = get_universe().root_names
    clean = _clean(tmp_path, monkeypatch, [src], "2024-03-01", "2024-04-01", roots[0], roots[-1])
    got, want = (canonical(OHLCV_1H, w.read(OHLCV_1H), drop_volatile=True) for w in (wh, clean))
    assert got.height == want.height and got.equals(want), f"{got.height} rows, a clean run {want.height}"
    assert set(got["symbol"].unique()) == set(roots)
    assert_ledger_consistent(wh)
    # Everything is loaded now: the next change (a copy of the file) requests nothing, and says why.
    shutil.copy(src, landing / ("copy-" + MAR))
    for _ in range(2):
        res = sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))
        cursor = res.cursor
        assert not res.run_requests
    assert "already loaded" in res.skip_reason.skip_message or "skipped_unchanged" in res.skip_reason.skip_message


# -- case 4 ------------------------------------------------------------------------------------------------
def test_a_load_whose_ledger_write_was_lost_is_repaired_by_the_next_run(tmp_path, monkeypatch, landing):
    src = _batch_file(MAR)
    shutil.copy(src, landing / MAR)
    assert run_range([H1], "2024-03-04", "2024-03-08", "ZL", "MES").success  # B loads and records
    real_record = ledger.record

    def lost(wh, rows):
        if any(r.get("status") == "loaded" for r in rows):
            raise OSError("the ledger write was lost (test)")
        return real_record(wh, rows)

    with monkeypatch.context() as mp:  # A planned before B recorded: it MERGEs, then loses its ledger write
        mp.setattr(execute_mod, "loaded_rects", lambda *a, **k: {})
        mp.setattr(ledger, "record", lost)
        assert not run_range([H1], "2024-03-04", "2024-03-08", "ZL", "MES", raise_on_error=False).success
    wh = get_warehouse()
    assert ledger_orphans(wh), "the simulated lost write left no orphan rows: the test proves nothing"
    assert run_range([H1], "2024-03-04", "2024-03-08", "ZL", "MES").success  # the next run repairs
    assert_ledger_consistent(wh)
    clean = _clean(tmp_path, monkeypatch, [src], "2024-03-04", "2024-03-08", "ZL", "MES")
    assert _bars(wh).equals(_bars(clean))


def test_a_deleted_files_rows_stay_the_check_warns_and_prune_removes_exactly_them(
    tmp_path, monkeypatch, landing, capsys
):
    feb, mar = _batch_file(FEB), _batch_file(MAR)
    for f in (feb, mar):
        shutil.copy(f, landing / f.name)
    assert run_range([H1], "2024-02-01", "2024-03-29", "ZL", "MES").success
    wh = get_warehouse()
    full = _bars(wh, lo=date(2024, 2, 1))
    (landing / MAR).unlink()
    assert run_range([H1], "2024-02-01", "2024-03-29", "ZL", "MES").success
    assert _bars(wh, lo=date(2024, 2, 1)).equals(full), "a deleted file's rows changed"
    warn = _stale_check()
    assert not warn.passed and warn.severity == dg.AssetCheckSeverity.WARN
    stale_rows = warn.metadata["stale_rows"].value
    assert stale_rows > 800 and "2024-03" in str(warn.metadata["examples"].value), warn.metadata
    before = snapshot(wh)
    assert cli.main(["prune"]) == 0
    out = capsys.readouterr().out
    assert "would delete" in out and "2024-03-15|ZL" in out and MAR in out and "dry run" in out, out
    after = snapshot(wh)
    assert all(after[k].equals(v) for k, v in before.items()), "the dry run changed a table"
    assert cli.main(["prune", "--apply"]) == 0
    out = capsys.readouterr().out
    assert "deleted" in out, out
    clean = _clean(tmp_path, monkeypatch, [feb], "2024-02-01", "2024-03-29", "ZL", "MES")
    got, want = _bars(wh, lo=date(2024, 2, 1)), _bars(clean, lo=date(2024, 2, 1))
    assert got.equals(want), f"after prune {got.height} rows, the remaining file gives {want.height}"
    assert full.height - got.height > 800
    assert _stale_check().passed
    assert cli.main(["prune"]) == 0 and "nothing to prune" in capsys.readouterr().out


def _stale_check():
    """The WARN check alone, as the UI's "execute check" runs it."""
    ck = dg.AssetCheckKey(asset_key(H1), "source_files_present")
    job = build_definitions().resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(), asset_check_selection={ck})
    res = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), run_config=QUIET)
    (ev,) = [e for e in res.get_asset_check_evaluations() if e.check_name == ck.name]
    return ev


# -- case 5 ------------------------------------------------------------------------------------------------
def _one_error(res) -> str:
    assert not res.success, "the bad file was accepted"
    failures = [e for e in res.all_events if e.is_step_failure]
    assert len(failures) == 1, [e.step_key for e in failures]
    return root_cause(failures[0].step_failure_data.error)


def test_a_file_of_another_dataset_is_refused_naming_file_and_dataset(landing):
    shutil.copy(_batch_file(FEB), landing / FEB)
    assert run_range([H1], "2024-02-01", "2024-02-29", "ZL", "MES").success
    wh = get_warehouse()
    before = snapshot(wh)
    raw = bytearray(_raw(_batch_file(MAR)))
    assert raw[8:17] == b"GLBX.MDP3"
    raw[8:24] = b"XNAS.ITCH".ljust(16, b"\0")  # the header's dataset field (16 bytes)
    bad = landing / "xnas-20240301-20240331.ohlcv-1h.dbn"
    bad.write_bytes(bytes(raw))
    msg = _one_error(run_range([H1], "2024-03-01", "2024-03-29", "ZL", "MES", raise_on_error=False))
    assert str(bad) in msg and "XNAS.ITCH" in msg and "GLBX.MDP3" in msg, msg
    after = snapshot(wh)
    # Nothing of the refused file is written. A failing file never blocks the others (issue 29 item 4):
    # the February file's own bars of the 03-01 session (its evening of Feb 29) may load in this run.
    new = after[OHLCV_1H.fqn].join(before[OHLCV_1H.fqn], on=list(OHLCV_1H.key), how="anti")
    assert set(new["trade_date"].to_list()) <= {date(2024, 3, 1)}, new
    assert new.height == 0 or (new["ts_event"].max() < datetime(2024, 3, 1, tzinfo=UTC)), new
    for k, v in before.items():
        if k not in ("ops.databento_load_state", OHLCV_1H.fqn):
            assert after[k].equals(v), k


def test_a_bar_with_an_undef_price_is_refused_naming_file_and_bar(landing):
    src = _batch_file(MAR)
    raw = bytearray(_raw(src))
    head, rec = _layout(raw)
    arr = DBNStore.from_file(src).to_ndarray()
    zl = {int(iv["symbol"]) for iv in DBNStore.from_file(src).metadata.mappings["ZL.v.0"]}
    i = int(np.flatnonzero(np.isin(arr["instrument_id"], list(zl)))[10])
    close_at = head + i * rec + 40  # OHLCV record: 16-byte header, then open, high, low, close (int64)
    assert int.from_bytes(raw[close_at: close_at + 8], "little", signed=True) == int(arr["close"][i])
    raw[close_at: close_at + 8] = np.iinfo(np.int64).max.to_bytes(8, "little", signed=True)
    bad = landing / MAR.replace(".zst", "")
    bad.write_bytes(bytes(raw))
    msg = _one_error(run_range([H1], "2024-03-01", "2024-03-29", "ZL", "MES", raise_on_error=False))
    ts = datetime.fromtimestamp(int(arr["ts_event"][i]) // 1_000_000_000, UTC)
    assert str(bad) in msg and "UNDEF" in msg and str(ts)[:16] in msg and str(arr["instrument_id"][i]) in msg, msg
    assert not get_warehouse().table_exists(OHLCV_1H)


# -- case 6 (raw) -------------------------------------------------------------------------------------------
def test_raw_partitions_without_a_source_are_not_recorded_as_materialized(landing):
    shutil.copy(_batch_file(MAR), landing / MAR)
    instance = dg.DagsterInstance.ephemeral()
    # The market_data group from the UI: every raw asset for dates the March file covers and dates it does not.
    raw_keys = ["market_data.databento_futures_ohlcv_1m", H1, "market_data.databento_futures_ohlcv_1d",
                "market_data.databento_futures_statistics", "market_data.databento_definitions"]
    assert run_range(raw_keys, "2024-03-28", "2024-04-03", "ZL", instance=instance).success
    assert instance.get_materialized_partitions(asset_key(M1)) == set()
    for k in raw_keys[2:]:
        assert instance.get_materialized_partitions(asset_key(k)) == set(), k
    got = instance.get_materialized_partitions(asset_key(H1))
    # The March file's last ZL bar is on trade date Mar 28 (Good Friday closed; Sunday's evening session
    # is in the April file): Mar 29 .. Apr 3 have no source and are not shown as materialized.
    bars = get_warehouse().read(OHLCV_1H).filter(pl.col("symbol") == "ZL")
    assert bars["trade_date"].unique().to_list() == [date(2024, 3, 28)]
    assert got == {"2024-03-28|ZL"}, got
    assert not get_warehouse().table_exists(OHLCV_1M)
