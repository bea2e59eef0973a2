"""DBN decoding (the chimera_assets.dbn package) against the real Databento files and edge cases."""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from pathlib import Path
from types import SimpleNamespace as NS
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
import zstandard

from chimera_assets.dbn.bounds import count_dbn_records
from chimera_assets.dbn.decode import decode_dbn_file, iter_decoded_chunks
from chimera_assets.dbn.diagnostics import DbnDecodeError, DecodeStats
from chimera_assets.dbn.header import read_dbn_metadata

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BATCH_DIR = SHARED_DATA / "databento-batch" / "GLBX-20251216-WEJLAFALCV"
SAMPLES = SHARED_DATA / "databento-samples"
V3 = SAMPLES / "databento-python" / "GLBX.MDP3"
OLD = SAMPLES / "dbn"
RAW_V3_NOV = SHARED_DATA / "real-bars" / "raw" / "glbx-mdp3-20251101-20251130.ohlcv-1h.dbn.zst"
CHICAGO = ZoneInfo("America/Chicago")

OHLCV_COLS = [
    "ts_event",
    "trade_date",
    "symbol",
    "series",
    "raw_symbol",
    "instrument_id",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "is_spread",
    "publisher_id",
]


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data {path} is absent (it lives in ../shared/data beside the repo)")
    return path


def batch_files() -> list[Path]:
    need(BATCH_DIR)
    files = sorted(BATCH_DIR.glob("*.dbn.zst"))
    if len(files) != 24:
        pytest.skip(f"expected 24 batch files under {BATCH_DIR}, found {len(files)}")
    return files


def _raw_records(path: Path):
    import databento as db

    store = db.DBNStore.from_file(path)
    return store.to_ndarray(), store.metadata


# ---------------------------------------------------------------------------------------------
# Real portal batch (DBN v1, ohlcv-1h, 84 continuous series)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def batch_decoded():
    files = batch_files()
    out = []
    t0 = time.perf_counter()
    for f in files:
        stats = DecodeStats()
        out.append((f, decode_dbn_file(f, stats=stats), stats))
    elapsed = time.perf_counter() - t0
    return out, elapsed


def test_batch_decodes_every_record(batch_decoded):
    decoded, elapsed = batch_decoded
    # The record count comes from databento's own decoder (DBNStore.to_ndarray), not from ours.
    expected = sum(len(_raw_records(path)[0]) for path, _, _ in decoded)
    assert expected > 0
    assert sum(s.records_read for _, _, s in decoded) == expected
    assert sum(df.height for _, df, _ in decoded) == expected
    assert all(s.unmapped_dropped == 0 and s.ambiguous_records == 0 for _, _, s in decoded)
    # Speed is measured by benchmarks/bench_decode.py; here it is only reported.
    print(f"batch decode: {expected:,} records in {elapsed:.2f}s")
    df = decoded[0][1]
    assert df.columns == OHLCV_COLS
    assert df.schema["ts_event"] == pl.Datetime("us", "UTC")
    assert df.schema["trade_date"] == pl.Date
    assert df.schema["volume"] == pl.Int64 and df.schema["instrument_id"] == pl.Int64
    assert df.get_column("raw_symbol").null_count() == df.height
    assert not df.get_column("is_spread").any()


@pytest.mark.parametrize("series", ["ZL.v.0", "MES.v.0", "ES.v.0"])
def test_batch_row_counts_per_series_equal_the_file_records(batch_decoded, series):
    decoded, _ = batch_decoded
    for path, df, _ in decoded:
        recs, meta = _raw_records(path)
        days = (recs["ts_event"] // (86_400 * 10**9)).astype("datetime64[D]")
        expected = 0
        for iv in meta.mappings[series]:
            in_iv = (
                (recs["instrument_id"] == int(iv["symbol"]))
                & (days >= np.datetime64(iv["start_date"]))
                & (days < np.datetime64(iv["end_date"]))
            )
            expected += int(in_iv.sum())
        got = df.filter(pl.col("series") == series)
        assert got.height == expected, (path.name, series)
        assert expected > 0
        assert got.get_column("symbol").unique().to_list() == [series.split(".")[0]]


def test_batch_sampled_bars_trade_date_instrument_and_series(batch_decoded):
    decoded, _ = batch_decoded
    rng = random.Random(11)
    for _ in range(20):
        path, df, _ = decoded[rng.randrange(len(decoded))]
        row = df.row(rng.randrange(df.height), named=True)
        ts = row["ts_event"]
        # Trade date recomputed independently: Chicago wall clock + 7 h, weekend -> Monday.
        local = ts.astimezone(CHICAGO).replace(tzinfo=None) + dt.timedelta(hours=7)
        want = local.date() + dt.timedelta(days={5: 2, 6: 1}.get(local.weekday(), 0))
        assert row["trade_date"] == want, row
        # Series / instrument from the metadata mapping of the bar's UTC date.
        recs, meta = _raw_records(path)
        hits = [
            s
            for s, ivs in meta.mappings.items()
            for iv in ivs
            if int(iv["symbol"]) == row["instrument_id"] and iv["start_date"] <= ts.date() < iv["end_date"]
        ]
        assert hits == [row["series"]], row
        assert row["symbol"] == row["series"].split(".")[0]
        # Values equal the raw record (prices / 1e9 exactly).
        ts_ns = int(ts.timestamp()) * 10**9
        raw = recs[(recs["ts_event"] == ts_ns) & (recs["instrument_id"] == row["instrument_id"])]
        assert len(raw) == 1
        assert row["close"] == raw["close"][0] / 1e9 and row["volume"] == int(raw["volume"][0])


def test_batch_header_metadata():
    f = batch_files()[0]
    info = read_dbn_metadata(f)
    assert info.dbn_version == 1
    assert (info.dataset, info.schema, info.stype_in, info.stype_out) == (
        "GLBX.MDP3",
        "ohlcv-1h",
        "continuous",
        "instrument_id",
    )
    assert len(info.symbols) == 84 and "ZL.v.0" in info.symbols
    assert info.start == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert info.end == dt.datetime(2024, 2, 1, tzinfo=dt.UTC)
    assert info.compressed and info.record_count is None


def test_chunked_iteration_equals_whole_file():
    f = batch_files()[3]
    whole = decode_dbn_file(f)
    chunks = list(iter_decoded_chunks(f, chunk_rows=5_000))
    assert len(chunks) > 5
    assert pl.concat(chunks).equals(whole)


def test_v1_batch_and_v3_original_agree():
    """The second batch's November file (another job) has the same ZL..ES records as the first.

    (Its README calls it DBN v3, but its header says DBN v1; the check here is content equality.)
    """
    need(RAW_V3_NOV)
    v1 = decode_dbn_file(BATCH_DIR / "glbx-mdp3-20251101-20251130.ohlcv-1h.dbn.zst")
    v3 = decode_dbn_file(RAW_V3_NOV)
    roots = ["ZL", "ZS", "ZM", "ZC", "CL", "ES"]
    key = ["symbol", "ts_event"]
    a = v1.filter(pl.col("symbol").is_in(roots)).sort(key)
    b = v3.filter(pl.col("symbol").is_in(roots)).sort(key)
    assert a.height > 0 and a.equals(b)


# ---------------------------------------------------------------------------------------------
# Small real samples (v3 from databento-python, v1/v2 from dbn)
# ---------------------------------------------------------------------------------------------


def test_esh1_daily_bar_known_values():
    df = decode_dbn_file(need(V3 / "test_data.ohlcv-1d.dbn.zst"))
    assert df.columns[:3] == ["ts_event", "trade_date", "date"]
    row = df.row(0, named=True)
    assert row["date"] == dt.date(2020, 12, 28)
    assert row["ts_event"] == dt.datetime(2020, 12, 28, tzinfo=dt.UTC)
    assert (row["open"], row["high"], row["low"], row["close"], row["volume"]) == (
        3702.75,
        3735.00,
        3697.25,
        3735.00,
        718174,
    )
    assert (row["symbol"], row["series"], row["instrument_id"]) == ("ES", "ESH1", 5482)


def test_esh1_hourly_and_minute_samples():
    h = decode_dbn_file(need(V3 / "test_data.ohlcv-1h.dbn.zst"))
    assert h.height == 4
    assert h.row(0)[h.columns.index("open") : h.columns.index("volume") + 1] == (
        3702.75,
        3707.0,
        3697.25,
        3705.75,
        11891,
    )
    m = decode_dbn_file(V3 / "test_data.ohlcv-1m.dbn.zst")
    assert m.height == 4 and m.get_column("volume").to_list()[0] == 306
    # 2020-12-28 00:00 UTC is Sunday 18:00 CST: the Monday session.
    assert set(m.get_column("trade_date")) == {dt.date(2020, 12, 28)}


@pytest.mark.parametrize("version", [1, 2])
def test_old_dbn_versions_load(version):
    h = decode_dbn_file(need(OLD / f"test_data.ohlcv-1h.v{version}.dbn.zst"))
    assert read_dbn_metadata(OLD / f"test_data.ohlcv-1h.v{version}.dbn.zst").dbn_version == version
    assert h.get_column("volume").to_list() == [9385, 112698]
    assert h.get_column("open").to_list()[0] == 372025.0  # the fixture's unrealistic 100x prices
    assert h.get_column("symbol").to_list() == ["ES", "ES"]
    m = decode_dbn_file(OLD / f"test_data.ohlcv-1m.v{version}.dbn.zst")
    assert m.get_column("volume").to_list() == [353, 152]
    # A header-only file (0 records) gives an empty frame with the full schema.
    d = decode_dbn_file(OLD / f"test_data.ohlcv-1d.v{version}.dbn.zst")
    assert d.height == 0 and "date" in d.columns and d.schema["close"] == pl.Float64


def test_statistics_undef_quantity_is_null_v3():
    df = decode_dbn_file(need(V3 / "test_data.statistics.dbn.zst"))
    assert df.height == 4
    assert df.get_column("quantity").null_count() == 4  # UNDEF (i64 max)
    assert df.get_column("price").to_list() == [3707.75, 3708.0, 3708.25, 3708.25]
    assert df.get_column("stat_type").to_list() == [8, 8, 5, 8]  # file order kept
    # ts_ref is UNDEF -> NULL, and the trade date falls back to ts_event's.
    assert df.get_column("ts_ref").null_count() == 4
    assert set(df.get_column("trade_date")) == {dt.date(2020, 12, 28)}
    assert df.schema["ts_recv"] == pl.Datetime("us", "UTC")


@pytest.mark.parametrize("version", [1, 2])
def test_statistics_v1_v2_int32_undef_and_instrument_id_stype(version):
    path = need(OLD / f"test_data.statistics.v{version}.dbn.zst")
    # stype_in=instrument_id, no mappings: the root must be supplied.
    with pytest.raises(DbnDecodeError, match="instrument_roots") as err:
        decode_dbn_file(path)
    assert str(path) in str(err.value)
    df = decode_dbn_file(path, instrument_roots={146945: "ZL"})
    assert df.height == 2
    assert df.get_column("quantity").null_count() == 2  # int32 UNDEF 2147483647
    assert df.get_column("series").null_count() == 2
    assert df.get_column("symbol").to_list() == ["ZL", "ZL"]
    assert df.get_column("stat_type").to_list() == [7, 5]
    assert df.get_column("price").to_list() == [100.0, 100.0]


def test_definition_sample():
    df = decode_dbn_file(need(V3 / "test_data.definition.dbn.zst"))
    row = df.row(0, named=True)
    assert row["instrument_id"] == 5482 and row["raw_symbol"] == "ESH1" and row["root"] == "ES"
    assert row["instrument_class"] == "F" and row["is_spread"] is False
    assert row["expiration"] == dt.datetime(2021, 3, 19, 13, 30, tzinfo=dt.UTC)
    assert row["min_price_increment"] == 0.25
    assert row["valid_date"] == dt.date(2020, 12, 28)
    assert row["series"] == "ESH1"


# ---------------------------------------------------------------------------------------------
# Synthetic edge cases (written with databento_dbn)
# ---------------------------------------------------------------------------------------------


def _write_dbn(path: Path, recs: np.ndarray, mappings: dict, schema: str = "ohlcv-1h", compress=True) -> Path:
    import databento_dbn as dbn

    meta = dbn.Metadata(
        dataset="GLBX.MDP3",
        start=int(recs["ts_event"].min()) if len(recs) else 0,
        end=int(recs["ts_event"].max()) + 1 if len(recs) else 1,
        stype_in=dbn.SType.CONTINUOUS,
        stype_out=dbn.SType.INSTRUMENT_ID,
        schema=dbn.Schema.from_str(schema),
        symbols=list(mappings),
        mappings=[
            NS(raw_symbol=s, intervals=[NS(start_date=a, end_date=b, symbol=str(i)) for a, b, i in ivs])
            for s, ivs in mappings.items()
        ],
        version=3,
    )
    raw = meta.encode() + recs.tobytes()
    path.write_bytes(zstandard.ZstdCompressor().compress(raw) if compress else raw)
    return path


def _bars(iids, ts_list) -> np.ndarray:
    from chimera_assets.demo.data import OHLCV_DTYPE

    recs = np.zeros(len(iids), dtype=OHLCV_DTYPE)
    recs["length"], recs["rtype"], recs["publisher_id"] = 14, 34, 1
    recs["instrument_id"] = iids
    recs["ts_event"] = [int(t.timestamp()) * 10**9 for t in ts_list]
    for f, v in (
        ("open", 45_120_000_000),
        ("high", 45_300_000_000),
        ("low", 45_010_000_000),
        ("close", 45_250_000_000),
    ):
        recs[f] = v
    recs["volume"] = 10
    recs["close"][0] = np.iinfo(np.int64).max  # UNDEF price -> NULL
    return recs


def test_unmapped_records_are_dropped_counted_and_logged(tmp_path, caplog):
    d1, d2 = dt.date(2024, 3, 6), dt.date(2024, 3, 7)
    ts = [
        dt.datetime(2024, 3, 6, 14, tzinfo=dt.UTC),
        dt.datetime(2024, 3, 6, 15, tzinfo=dt.UTC),
        dt.datetime(2024, 3, 7, 14, tzinfo=dt.UTC),  # iid 111 is not mapped on 03-07
        dt.datetime(2024, 3, 7, 14, tzinfo=dt.UTC),
    ]
    recs = _bars([111, 999, 111, 222], ts)
    p = _write_dbn(tmp_path / "x.dbn.zst", recs, {"ZL.v.0": [(d1, d2, 111), (d2, dt.date(2024, 3, 8), 222)]})
    stats = DecodeStats()
    with caplog.at_level(logging.WARNING, logger="chimera_assets.dbn.decode"):
        df = decode_dbn_file(p, stats=stats)
    assert df.get_column("instrument_id").to_list() == [111, 222]
    assert df.get_column("close").to_list() == [None, 45.25]
    assert stats.records_read == 4 and stats.rows_out == 2 and stats.unmapped_dropped == 2
    assert stats.unmapped_instrument_ids == [111, 999]
    assert "dropped 2 of 4 records" in caplog.text and "x.dbn.zst" in caplog.text


def test_ambiguous_and_spread_series(tmp_path):
    d1, d2 = dt.date(2024, 3, 6), dt.date(2024, 3, 7)
    recs = _bars([111, 333], [dt.datetime(2024, 3, 6, 14, tzinfo=dt.UTC)] * 2)
    maps = {"ZL.v.0": [(d1, d2, 111)], "ZL.c.0": [(d1, d2, 111)], "ZLH4-ZLK4": [(d1, d2, 333)]}
    stats = DecodeStats()
    df = decode_dbn_file(_write_dbn(tmp_path / "s.dbn.zst", recs, maps), stats=stats)
    assert df.get_column("series").to_list() == ["ZL.c.0", "ZLH4-ZLK4"]
    assert df.get_column("is_spread").to_list() == [False, True]
    assert stats.ambiguous_records == 1


def test_uncompressed_dbn_and_record_count(tmp_path):
    recs = _bars([111] * 3, [dt.datetime(2024, 3, 6, h, tzinfo=dt.UTC) for h in (1, 2, 3)])
    p = _write_dbn(
        tmp_path / "u.dbn",
        recs,
        {"ZL.v.0": [(dt.date(2024, 3, 6), dt.date(2024, 3, 7), 111)]},
        compress=False,
    )
    assert read_dbn_metadata(p).record_count == 3
    assert count_dbn_records(p) == 3
    assert decode_dbn_file(p).height == 3


def _batch_like(tmp_path: Path) -> Path:
    recs = _bars(
        [111] * 200, [dt.datetime(2024, 3, 6, tzinfo=dt.UTC) + dt.timedelta(minutes=i) for i in range(200)]
    )
    return _write_dbn(
        tmp_path / "ok.dbn",
        recs,
        {"ZL.v.0": [(dt.date(2024, 3, 6), dt.date(2024, 3, 7), 111)]},
        compress=False,
    )


def test_error_empty_file(tmp_path):
    p = tmp_path / "empty.dbn.zst"
    p.write_bytes(b"")
    with pytest.raises(DbnDecodeError, match="empty") as err:
        decode_dbn_file(p)
    assert str(p) in str(err.value)


def test_error_truncated_uncompressed(tmp_path):
    raw = _batch_like(tmp_path).read_bytes()
    p = tmp_path / "cut.dbn"
    p.write_bytes(raw[: len(raw) - 20])
    with pytest.raises(DbnDecodeError, match="truncated") as err:
        decode_dbn_file(p)
    assert str(p) in str(err.value)
    with pytest.raises(DbnDecodeError, match="truncated"):
        count_dbn_records(p)


def test_error_truncated_zstd(tmp_path):
    f = batch_files()[0]
    p = tmp_path / "cut.dbn.zst"
    p.write_bytes(f.read_bytes()[:300_000])  # databento itself would silently return fewer records
    with pytest.raises(DbnDecodeError, match="truncated") as err:
        decode_dbn_file(p)
    assert str(p) in str(err.value)
    with pytest.raises(DbnDecodeError, match="truncated"):
        read_dbn_metadata(p)


@pytest.mark.parametrize(
    "body", [b"hello, this is not a DBN file" * 4, zstandard.ZstdCompressor().compress(b"x" * 500)]
)
def test_error_garbage(tmp_path, body):
    p = tmp_path / "garbage.dbn.zst"
    p.write_bytes(body)
    with pytest.raises(DbnDecodeError) as err:
        decode_dbn_file(p)
    assert str(p) in str(err.value)


def test_error_header_only_fragment(tmp_path):
    raw = _batch_like(tmp_path).read_bytes()
    p = tmp_path / "frag.dbn"
    p.write_bytes(raw[:30])
    with pytest.raises(DbnDecodeError, match="frag.dbn"):
        decode_dbn_file(p)


def test_error_unsupported_schema(tmp_path):
    import databento_dbn as dbn

    meta = dbn.Metadata(
        dataset="GLBX.MDP3",
        start=0,
        stype_in=dbn.SType.RAW_SYMBOL,
        stype_out=dbn.SType.INSTRUMENT_ID,
        schema=dbn.Schema.TRADES,
        symbols=["ESH1"],
        version=3,
    )
    p = tmp_path / "trades.dbn"
    p.write_bytes(meta.encode())
    with pytest.raises(DbnDecodeError, match="unsupported schema 'trades'") as err:
        decode_dbn_file(p)
    assert str(p) in str(err.value)


def test_error_missing_file(tmp_path):
    with pytest.raises(DbnDecodeError, match="does not exist"):
        decode_dbn_file(tmp_path / "nope.dbn.zst")


def test_zstd_stream_cut_anywhere_inside_a_frame_is_refused(tmp_path):
    """Every cut strictly inside a frame (skippable or data; magic, header, block headers, block bodies,
    checksum) is a truncated stream; a cut exactly at a frame boundary is a complete, shorter stream."""
    from chimera_assets.dbn.zstd import check_zstd_complete

    skippable = (0x184D2A53).to_bytes(4, "little") + (6).to_bytes(4, "little") + b"note.."
    # > 128 KiB of content: several blocks in the frame; write_checksum adds the 4-byte trailer.
    data = zstandard.ZstdCompressor(write_checksum=True).compress(bytes(range(256)) * 1200)
    stream = skippable + data
    p = tmp_path / "s.dbn.zst"
    p.write_bytes(stream)
    check_zstd_complete(p)  # intact: no error
    p.write_bytes(skippable)
    check_zstd_complete(p)  # a boundary cut: the stream that is left is complete
    for cut in [*range(1, len(skippable)), *range(len(skippable) + 1, len(stream))]:
        p.write_bytes(stream[:cut])
        with pytest.raises(DbnDecodeError, match="truncated zstd stream") as err:
            check_zstd_complete(p)
        assert str(p) in str(err.value), cut
