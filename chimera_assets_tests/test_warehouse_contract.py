"""The warehouse contract: every backend passes the same suite (DuckDB always; BigQuery on the emulator)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from chimera_assets import schemas
from chimera_assets.warehouse.base import FrameRejected, Slice
from chimera_assets_tests.frames import rows_for, session_rows

SB = schemas.SESSION_BARS
D1, D2, D3 = date(2024, 1, 3), date(2024, 1, 4), date(2024, 1, 5)


def _sorted(frame: pl.DataFrame, spec=SB) -> pl.DataFrame:
    return frame.sort(list(spec.key))


def test_same_partition_written_three_times_keeps_one_row_per_key(warehouse):
    keys = [(D1, "ZL"), (D1, "ES")]
    frame = rows_for(SB, session_rows(keys))
    for _ in range(3):
        warehouse.merge(SB, frame, Slice.from_keys(keys))
    back = warehouse.read(SB)
    assert back.height == 2
    assert back.select(["trade_date", "symbol"]).is_duplicated().sum() == 0


def test_rewrite_with_fewer_rows_deletes_only_that_slice(warehouse):
    keys = [(d, s) for d in (D1, D2) for s in ("ZL", "ES")]
    warehouse.merge(SB, rows_for(SB, session_rows(keys)), Slice.from_keys(keys))
    # Rewrite the slice (D1..D2, ZL) with only D2: D1|ZL must go, every ES row must stay.
    zl_keys = [(D1, "ZL"), (D2, "ZL")]
    warehouse.merge(SB, rows_for(SB, session_rows([(D2, "ZL")], close=5.0)), Slice.from_keys(zl_keys))
    back = _sorted(warehouse.read(SB))
    assert back.select(["trade_date", "symbol"]).rows() == [(D1, "ES"), (D2, "ES"), (D2, "ZL")]
    assert back.filter(pl.col("symbol") == "ZL")["close"].to_list() == [5.0]
    assert back.filter(pl.col("symbol") == "ES")["close"].to_list() == [1.0, 1.0]


def test_upsert_updates_values_in_place(warehouse):
    keys = [(D1, "ZL")]
    warehouse.merge(SB, rows_for(SB, session_rows(keys, close=1.0)), Slice.from_keys(keys))
    warehouse.merge(SB, rows_for(SB, session_rows(keys, close=2.5)), Slice.from_keys(keys))
    assert warehouse.read(SB)["close"].to_list() == [2.5]


def test_duplicate_keys_are_rejected_naming_table_and_keys(warehouse):
    keys = [(D1, "ZL")]
    frame = rows_for(SB, session_rows(keys + keys))
    with pytest.raises(FrameRejected, match=r"features\.session_bars.*duplicate.*2024, 1, 3.*ZL"):
        warehouse.merge(SB, frame, Slice.from_keys(keys))
    assert warehouse.read(SB).height == 0


def test_rows_outside_the_slice_are_rejected(warehouse):
    frame = rows_for(SB, session_rows([(D1, "ZL"), (D3, "ES")]))
    with pytest.raises(FrameRejected, match=r"features\.session_bars.*outside.*2024, 1, 5.*ES"):
        warehouse.merge(SB, frame, Slice.from_keys([(D1, "ZL")]))
    assert warehouse.read(SB).height == 0


def test_null_key_is_rejected(warehouse):
    frame = rows_for(SB, session_rows([(D1, "ZL")])).with_columns(pl.lit(None, pl.Utf8).alias("symbol"))
    with pytest.raises(FrameRejected, match="NULL key"):
        warehouse.merge(SB, frame, Slice.from_keys([(D1, "ZL")]))


def test_failure_after_staging_before_commit_leaves_previous_contents(warehouse):
    keys = [(D1, "ZL"), (D2, "ZL")]
    warehouse.merge(SB, rows_for(SB, session_rows(keys, close=1.0)), Slice.from_keys(keys))
    before = _sorted(warehouse.read(SB))

    def boom(spec):
        raise RuntimeError("injected crash before commit")

    warehouse.before_commit = boom
    try:
        with pytest.raises(RuntimeError, match="injected"):
            warehouse.merge(SB, rows_for(SB, session_rows([(D1, "ZL")], close=9.0)), Slice.from_keys(keys))
    finally:
        warehouse.before_commit = None
    assert _sorted(warehouse.read(SB)).equals(before)


def test_blocks_are_one_atomic_change_equal_to_one_merge(warehouse):
    dates = (D1, D2, D3)
    keys = [(d, s) for d in dates for s in ("ZL", "ES")]
    warehouse.merge(SB, rows_for(SB, session_rows(keys, close=1.0)), Slice.from_keys(keys))
    before = _sorted(warehouse.read(SB))

    def blocks(fail_at: int | None):
        for i, d in enumerate(dates):
            if i == fail_at:
                raise RuntimeError("injected: a bad input found while building a late block")
            block = [(d, "ZL")] if d != D2 else []  # D2|ZL is dropped: the rewrite must delete it
            yield rows_for(SB, session_rows(block, close=2.0)), Slice.from_keys([(d, "ZL")])

    with pytest.raises(RuntimeError, match="injected"):
        warehouse.merge_blocks(SB, blocks(fail_at=2), Slice.from_keys([(d, "ZL") for d in dates]))
    assert _sorted(warehouse.read(SB)).equals(before)  # blocks 1 and 2 were not published either

    result = warehouse.merge_blocks(SB, blocks(fail_at=None), Slice.from_keys([(d, "ZL") for d in dates]))
    assert result.rows_written == 2
    back = _sorted(warehouse.read(SB))
    assert back.select(["trade_date", "symbol", "close"]).rows() == [
        (D1, "ES", 1.0), (D1, "ZL", 2.0), (D2, "ES", 1.0), (D3, "ES", 1.0), (D3, "ZL", 2.0)]


def test_read_filters_by_slice(warehouse):
    keys = [(d, s) for d in (D1, D2, D3) for s in ("ZL", "ES")]
    warehouse.merge(SB, rows_for(SB, session_rows(keys)), Slice.from_keys(keys))
    got = warehouse.read(SB, Slice.from_keys([(D2, "ES"), (D3, "ES")]))
    assert sorted(got.select(["trade_date", "symbol"]).rows()) == [(D2, "ES"), (D3, "ES")]


def test_date_only_slice_reads_every_root_of_the_range(warehouse):
    """A slice range with symbol None filters on the date only: how a whole-universe read of a date
    window stays prunable (BigQuery: partition filter) without listing the roots."""
    keys = [(d, s) for d in (D1, D2, D3) for s in ("ZL", "ES")]
    warehouse.merge(SB, rows_for(SB, session_rows(keys)), Slice.from_keys(keys))
    got = warehouse.read(SB, Slice(((None, D2, D3),)), columns=["trade_date", "symbol"])
    assert sorted(got.rows()) == [(D2, "ES"), (D2, "ZL"), (D3, "ES"), (D3, "ZL")]


def test_struct_columns_round_trip(warehouse):
    spec = schemas.DAILY_ML_MATRIX
    row = {
        "symbol": "ZL", "data_date": D1, "timestamp": datetime(2024, 1, 3, 22, tzinfo=UTC),
        "market_data": {"open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 7, "vwap": 1.2,
                        "realized_vol_1h": None},
        "pivots": None, "policy": None,
        "golden_zone": {"state": 1, "swing_high": 2.0, "swing_low": 1.0, "fib_50": 1.5, "fib_618": 1.382,
                        "vol_decay_slope": -0.1, "qualified_trigger": True},
        "regime": {"name": "trump_anticipation_2024", "weight": 400, "vol_percentile": 0.5, "k_vol": 1.0},
        "regime_name": "trump_anticipation_2024", "ingestion_ts": datetime(2024, 1, 4, tzinfo=UTC),
    }
    frame = rows_for(spec, [row])
    warehouse.merge(spec, frame, Slice.from_keys([(D1, "ZL")]))
    back = warehouse.read(spec)
    assert back.schema == frame.schema
    assert back.row(0, named=True)["golden_zone"] == row["golden_zone"]
    assert back.row(0, named=True)["market_data"]["vwap"] == 1.2


def test_unpartitioned_table_is_replaced_whole(warehouse):
    spec = schemas.REGIME_WEIGHTS
    first = pl.DataFrame({"regime": ["a", "b"], "weight": [1, 2], "description": ["x", "y"]})
    warehouse.merge(spec, first, Slice.whole_table())
    warehouse.merge(spec, first.head(1), Slice.whole_table())
    assert warehouse.read(spec)["regime"].to_list() == ["a"]


def test_monday_partition_owns_the_weekend_days():
    s = Slice.from_keys([(date(2024, 1, 8), "ZL")])  # a Monday
    assert s.ranges == (("ZL", date(2024, 1, 6), date(2024, 1, 8)),)
    # Fri + Mon are contiguous partitions: one range.
    s2 = Slice.from_keys([(date(2024, 1, 5), "ZL"), (date(2024, 1, 8), "ZL")])
    assert s2.ranges == (("ZL", date(2024, 1, 5), date(2024, 1, 8)),)


def _staging_tables(wh) -> list[str]:
    from chimera_assets.warehouse.duckdb_backend import STAGING_SCHEMA

    return wh.sql("SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
                  [STAGING_SCHEMA])["table_name"].to_list()


def test_duckdb_blocks_leave_no_staging_table_and_a_killed_writers_is_dropped(duckdb_warehouse):
    import subprocess
    import sys

    from chimera_assets.warehouse.duckdb_backend import STAGING_SCHEMA

    wh = duckdb_warehouse
    keys = [(d, "ZL") for d in (D1, D2, D3)]
    blocks = [(rows_for(SB, session_rows([k])), Slice.from_keys([k])) for k in keys]
    wh.merge_blocks(SB, blocks, Slice.from_keys(keys))
    assert _staging_tables(wh) == []

    def failing():
        yield blocks[0]
        yield blocks[1]
        raise RuntimeError("injected")

    with pytest.raises(RuntimeError):
        wh.merge_blocks(SB, failing(), Slice.from_keys(keys))
    assert _staging_tables(wh) == []

    # A writer killed between its blocks leaves its staging table; the next block-wise write drops it
    # (its pid no longer runs) but never one of a live process.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    con = wh.connect()
    con.execute(f'CREATE TABLE "{STAGING_SCHEMA}"."stage_{dead}_0123456789ab" (x INT)')
    con.execute(f'CREATE TABLE "{STAGING_SCHEMA}"."stage_1_0123456789ab" (x INT)')  # pid 1 is alive
    con.close()
    wh.merge_blocks(SB, blocks, Slice.from_keys(keys))
    assert _staging_tables(wh) == ["stage_1_0123456789ab"]
    assert wh.read(SB).height == 3


def test_stored_column_types_read_back_as_the_spec_types_on_both_backends(warehouse):
    """What the schema-change check compares (issue 29 item 11): a table created from the spec reads back
    with the spec's own type names; a table not stored yet has none."""
    from chimera_assets.schemas import DAILY_ML_MATRIX, SESSION_BARS

    assert warehouse.stored_column_types(SESSION_BARS) == {}
    for spec in (SESSION_BARS, DAILY_ML_MATRIX):  # scalars of every type, and STRUCT columns
        warehouse.ensure_table(spec)
        assert warehouse.stored_column_types(spec) == {c.name: c.type for c in spec.columns}, spec.fqn
