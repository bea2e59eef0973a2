"""SYNTHETIC demo DBN generator (chimera_assets.demo.data)."""

from __future__ import annotations

import datetime as dt
import time

import polars as pl
import pytest

from chimera_assets.dbn.decode import decode_dbn_file
from chimera_assets.dbn.diagnostics import DecodeStats
from chimera_assets.dbn.header import read_dbn_metadata
from chimera_assets.demo.data import (
    PROFILES,
    contract_schedule,
    demo_contracts,
    demo_dbn_bytes,
    demo_records,
    write_demo_files,
)

D = dt.date


@pytest.fixture(scope="module")
def q1_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return write_demo_files(out, ["ZL", "MES"], D(2024, 1, 1), D(2024, 4, 1), schema="ohlcv-1h")


@pytest.fixture(scope="module")
def q1(q1_files):
    return pl.concat([decode_dbn_file(p) for p in q1_files])


def test_monthly_files_names_and_headers(q1_files):
    assert [p.name for p in q1_files] == [
        "demo-glbx-ohlcv-1h-20240101-20240131.dbn.zst",
        "demo-glbx-ohlcv-1h-20240201-20240229.dbn.zst",
        "demo-glbx-ohlcv-1h-20240301-20240331.dbn.zst",
    ]
    info = read_dbn_metadata(q1_files[1])
    assert (info.dataset, info.schema, info.stype_in, info.stype_out, info.dbn_version) == (
        "GLBX.MDP3",
        "ohlcv-1h",
        "continuous",
        "instrument_id",
        3,
    )
    assert info.symbols == ["ZL.v.0", "MES.v.0"]
    assert info.start == dt.datetime(2024, 2, 1, tzinfo=dt.UTC)
    assert info.end == dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    assert not list(q1_files[0].parent.glob(".*partial"))


def test_decodes_back_with_plausible_bars(q1, q1_files):
    for p in q1_files:
        stats = DecodeStats()
        decode_dbn_file(p, stats=stats)
        assert stats.unmapped_dropped == 0 and stats.records_read > 0
    assert set(q1.get_column("series")) == {"ZL.v.0", "MES.v.0"}
    ok = q1.select(
        (pl.col("high") >= pl.max_horizontal("open", "close")).all(),
        (pl.col("low") <= pl.min_horizontal("open", "close")).all(),
        (pl.col("volume") > 0).all(),
        (pl.col("trade_date").dt.weekday() <= 5).all(),
    ).row(0)
    assert all(ok)
    levels = q1.group_by("symbol").agg(pl.col("close").median()).rows()
    for root, med in levels:
        assert 0.6 * PROFILES[root].price < med < 1.5 * PROFILES[root].price, (root, med)
    # Prices sit on the tick grid (ZL 0.01, MES 0.25).
    mes = q1.filter(pl.col("symbol") == "MES")
    assert ((mes.get_column("close") * 4).round(9) % 1 == 0).all()
    # About 23 hourly bars per full session, fewer (thin/gap hours) at times, never more.
    per_day = q1.group_by("symbol", "trade_date").len().get_column("len")
    assert per_day.max() <= 23 and per_day.median() >= 20
    # No bar in the Saturday UTC day (the week ends Friday 16:00 CT).
    assert (q1.get_column("ts_event").dt.weekday() != 6).all()


def test_rolls_show_as_new_instrument_ids(q1, q1_files):
    # March 2024: third Friday 03-15, roll 8 days earlier (03-07) at 00:00 UTC.
    sched = contract_schedule("MES", D(2024, 3, 1), D(2024, 4, 1))
    assert sched.filter(pl.col("date") == D(2024, 3, 6)).get_column("raw_symbol").item() == "MESH4"
    assert sched.filter(pl.col("date") == D(2024, 3, 7)).get_column("raw_symbol").item() == "MESM4"
    import databento as db

    maps = db.DBNStore.from_file(q1_files[2]).metadata.mappings["MES.v.0"]
    assert [(m["start_date"], m["end_date"]) for m in maps] == [
        (D(2024, 3, 1), D(2024, 3, 7)),
        (D(2024, 3, 7), D(2024, 4, 1)),
    ]
    mar = q1.filter((pl.col("symbol") == "MES") & (pl.col("ts_event").dt.month() == 3))
    before = mar.filter(pl.col("ts_event") < dt.datetime(2024, 3, 7, tzinfo=dt.UTC))
    after = mar.filter(pl.col("ts_event") >= dt.datetime(2024, 3, 7, tzinfo=dt.UTC))
    assert before.get_column("instrument_id").unique().to_list() == [int(maps[0]["symbol"])]
    assert after.get_column("instrument_id").unique().to_list() == [int(maps[1]["symbol"])]
    contracts = demo_contracts(["MES"], D(2024, 1, 1), D(2024, 4, 1))
    assert contracts.get_column("raw_symbol").to_list() == ["MESH4", "MESM4"]
    assert contracts.get_column("instrument_id").n_unique() == 2


def test_session_grid_shifts_with_daylight_saving():
    jan = decode_dbn_file_bytes(demo_dbn_bytes(["ES"], D(2024, 1, 8), D(2024, 1, 13)))
    jul = decode_dbn_file_bytes(demo_dbn_bytes(["ES"], D(2024, 7, 8), D(2024, 7, 13)))
    jan_hours = set(jan.get_column("ts_event").dt.hour())
    jul_hours = set(jul.get_column("ts_event").dt.hour())
    # The 16:00-17:00 CT break is 22:00 UTC in CST and 21:00 UTC in CDT.
    assert 22 not in jan_hours and 21 in jan_hours
    assert 21 not in jul_hours and 22 in jul_hours
    # Sunday's open: 17:00 CT = 23:00 UTC in winter, 22:00 UTC in summer.
    sun = decode_dbn_file_bytes(demo_dbn_bytes(["ES"], D(2024, 1, 7), D(2024, 1, 8)))
    assert sun.get_column("ts_event").min() == dt.datetime(2024, 1, 7, 23, tzinfo=dt.UTC)
    sun = decode_dbn_file_bytes(demo_dbn_bytes(["ES"], D(2024, 7, 7), D(2024, 7, 8)))
    assert sun.get_column("ts_event").min() == dt.datetime(2024, 7, 7, 22, tzinfo=dt.UTC)


def decode_dbn_file_bytes(data: bytes, tmp=None) -> pl.DataFrame:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.dbn.zst"
        p.write_bytes(data)
        return decode_dbn_file(p)


def test_deterministic_with_seed_and_independent_of_the_window(q1):
    a = demo_dbn_bytes(["ZL.v.0"], D(2024, 2, 5), D(2024, 2, 8), seed=7)
    assert a == demo_dbn_bytes(["ZL.v.0"], D(2024, 2, 5), D(2024, 2, 8), seed=7)
    assert a != demo_dbn_bytes(["ZL.v.0"], D(2024, 2, 5), D(2024, 2, 8), seed=8)
    # The same bars whichever window produced them (monthly files vs. a 3-day request).
    small = decode_dbn_file_bytes(a)
    big = q1.filter(pl.col("symbol") == "ZL").join(small, on=["ts_event", "instrument_id"], how="inner")
    assert big.height == small.height > 0
    assert (big["close"] == big["close_right"]).all() and (big["volume"] == big["volume_right"]).all()


def test_minute_bars_aggregate_to_hourly_and_daily():
    recs_m, _ = demo_records(["MES"], D(2024, 5, 6), D(2024, 5, 7), "ohlcv-1m")
    recs_h, _ = demo_records(["MES"], D(2024, 5, 6), D(2024, 5, 7), "ohlcv-1h")
    recs_d, _ = demo_records(["MES"], D(2024, 5, 6), D(2024, 5, 7), "ohlcv-1d")
    m = pl.DataFrame({k: recs_m[k] for k in ("ts_event", "open", "high", "low", "close", "volume")})
    hourly = (
        m.with_columns(h=pl.col("ts_event") // (3600 * 10**9))
        .group_by("h", maintain_order=True)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
        )
    )
    assert hourly.height == len(recs_h)
    assert hourly.get_column("close").to_list() == recs_h["close"].tolist()
    assert hourly.get_column("volume").to_list() == recs_h["volume"].tolist()
    assert len(recs_d) == 1 and int(recs_d["volume"][0]) == int(recs_m["volume"].sum())
    assert set(recs_m["rtype"]) == {33} and set(recs_h["rtype"]) == {34} and set(recs_d["rtype"]) == {35}


def test_minute_bars_have_thin_overnight_gaps():
    recs, _ = demo_records(["ZL"], D(2024, 5, 6), D(2024, 5, 8), "ohlcv-1m")
    # 2 full sessions = 2 x 1380 open minutes; some thin overnight minutes have no trade.
    assert 2000 < len(recs) < 2 * 1380


@pytest.mark.parametrize("version", [1, 2])
def test_older_dbn_versions(tmp_path, version):
    paths = write_demo_files(
        tmp_path, ["CL"], D(2024, 6, 3), D(2024, 6, 5), "ohlcv-1h", files="daily", version=version
    )
    assert [p.name for p in paths] == [
        "demo-glbx-ohlcv-1h-20240603-20240603.dbn.zst",
        "demo-glbx-ohlcv-1h-20240604-20240604.dbn.zst",
    ]
    assert read_dbn_metadata(paths[0]).dbn_version == version
    assert decode_dbn_file(paths[0]).height > 15


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="schema"):
        demo_dbn_bytes(["ZL"], D(2024, 1, 1), D(2024, 1, 2), schema="trades")
    with pytest.raises(ValueError, match="continuous"):
        demo_dbn_bytes(["ZLZ4"], D(2024, 1, 1), D(2024, 1, 2))
    with pytest.raises(ValueError, match="empty window"):
        write_demo_files(tmp_path, ["ZL"], D(2024, 1, 2), D(2024, 1, 2))


def test_one_month_of_minutes_for_seven_roots():
    """A month of minute bars for seven roots: every root mapped, every bar inside the window, records
    sorted by (ts_event, instrument_id) with one bar per instrument and minute. The time is printed, never
    asserted (the machine is shared; speed belongs to the benchmarks)."""
    roots = ["ZL", "MES", "ES", "ZS", "ZM", "ZC", "CL"]
    t0 = time.perf_counter()
    recs, mappings = demo_records(roots, D(2024, 1, 1), D(2024, 2, 1), "ohlcv-1m")
    elapsed = time.perf_counter() - t0
    print(f"{len(recs)} demo minute records for {len(roots)} roots in {elapsed:.2f}s")
    assert len(recs) > 150_000
    assert {s.split(".")[0] for s in mappings} == set(roots)
    ts, iid = recs["ts_event"].astype("int64"), recs["instrument_id"].astype("int64")
    start_ns = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()) * 10**9
    end_ns = int(dt.datetime(2024, 2, 1, tzinfo=dt.UTC).timestamp()) * 10**9
    assert ts.min() >= start_ns and ts.max() < end_ns
    assert (ts % (60 * 10**9) == 0).all()
    keys = pl.DataFrame({"ts": ts, "iid": iid})
    assert keys.equals(keys.sort("ts", "iid")), "records not sorted by (ts_event, instrument_id)"
    assert not keys.is_duplicated().any(), "two bars of one instrument in one minute"
