"""Hand-checked tests of the consolidated frame, daily ML matrix and training tables (SPEC 6.5-6.7)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from chimera_assets import schemas
from chimera_assets.features.matrix import (
    RegimeCoverageError,
    build_consolidated,
    build_daily_ml_matrix,
    split_expr,
)
from chimera_assets.training.targets import build_training_table
from chimera_assets_tests.frames import rows_for

INGESTED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
WINTER, SUMMER = date(2024, 1, 15), date(2024, 7, 15)  # CST (UTC-6) and CDT (UTC-5)


# --- builders ---------------------------------------------------------------------------------------
def _bars(
    keys: list[tuple[date, str]], closes: list[float] | None = None, instruments: list[int] | None = None
) -> pl.DataFrame:
    closes = closes or [100.0] * len(keys)
    instruments = instruments or [1] * len(keys)
    return rows_for(
        schemas.SESSION_BARS,
        [
            {
                "trade_date": d,
                "symbol": s,
                "instrument_id": i,
                "open": c,
                "high": c + 1,
                "low": c - 1,
                "close": c,
                "volume": 10,
                "bar_count": 1,
                "source_freq": "1h",
                "roll_flag": False,
                "thin_flag": False,
            }
            for (d, s), c, i in zip(keys, closes, instruments, strict=True)
        ],
    )


def _roll_flags(instruments: list[int]) -> list[bool]:
    """pivot_roll_flag as compute_pivots defines it: previous session on another instrument."""
    return [False] + [a != b for a, b in zip(instruments, instruments[1:], strict=False)]


def _pivots(keys: list[tuple[date, str]], roll_flags: list[bool] | None = None) -> pl.DataFrame:
    roll_flags = roll_flags or [False] * len(keys)
    return rows_for(
        schemas.PIVOTS,
        [
            {
                "trade_date": d,
                "symbol": s,
                "P": 10.0,
                "R1": 11.0,
                "R2": 12.0,
                "R3": 13.0,
                "S1": 9.0,
                "S2": 8.0,
                "S3": 7.0,
                "distance_to_P": 0.5,
                "price_above_P": True,
                "pivot_roll_flag": f,
            }
            for (d, s), f in zip(keys, roll_flags, strict=True)
        ],
    )


def _regimes(days: list[date], name: str = "baseline", weight: int = 100) -> pl.DataFrame:
    n = len(days)
    return pl.DataFrame(
        {"date": days, "regime_name": [name] * n, "regime_weight": [weight] * n},
        schema={"date": pl.Date, "regime_name": pl.Utf8, "regime_weight": pl.Int64},
    )


def _empty(spec: schemas.TableSpec) -> pl.DataFrame:
    return spec.empty_frame()


def _consolidated(bars: pl.DataFrame, pivots: pl.DataFrame | None = None, **frames: pl.DataFrame):
    return build_consolidated(
        bars,
        frames.get("market", _empty(schemas.MARKET_FEATURES)),
        pivots if pivots is not None else _empty(schemas.PIVOTS),
        frames.get("golden_zone", _empty(schemas.GOLDEN_ZONE)),
        frames.get("policy", _empty(schemas.POLICY_FEATURES)),
    )


def _matrix(keys, closes=None, instruments=None, regime=("baseline", 100)):
    """A matrix built through the real pipeline from session bars (+ pivots carrying the roll flags)."""
    instruments = instruments or [1] * len(keys)
    bars = _bars(keys, closes, instruments)
    pivots = _pivots(keys, _roll_flags(instruments))
    cons = _consolidated(bars, pivots)
    days = sorted({d for d, _ in keys})
    return build_daily_ml_matrix(cons, pivots, _regimes(days, *regime), INGESTED), bars


def _sessions(start: date, end: date, holidays: tuple[date, ...] = ()) -> list[date]:
    """Mon-Fri dates in [start, end] minus ``holidays``."""
    out, d = [], start
    while d <= end:
        if d.weekday() < 5 and d not in holidays:
            out.append(d)
        d += timedelta(days=1)
    return out


def _row(frame: pl.DataFrame, day: date, symbol: str = "ZL") -> dict:
    rows = frame.filter(pl.col("data_date") == day, pl.col("symbol") == symbol).to_dicts()
    assert len(rows) == 1, rows
    return rows[0]


# --- consolidated -----------------------------------------------------------------------------------
def test_consolidated_has_exactly_the_spec_columns_and_types():
    keys = [(WINTER, "ZL"), (WINTER, "MES")]
    cons = _consolidated(_bars(keys), _pivots(keys))
    assert cons.columns == schemas.CONSOLIDATED.column_names
    assert dict(cons.schema) == schemas.CONSOLIDATED.polars_schema()
    assert cons.height == 2


def test_consolidated_timestamp_is_1600_chicago_in_utc_across_dst():
    cons = _consolidated(_bars([(WINTER, "ZL"), (SUMMER, "ZL")]))
    # 16:00 CST = 22:00 UTC (winter); 16:00 CDT = 21:00 UTC (summer).
    assert _row(cons, WINTER)["timestamp"] == datetime(2024, 1, 15, 22, 0, tzinfo=UTC)
    assert _row(cons, SUMMER)["timestamp"] == datetime(2024, 7, 15, 21, 0, tzinfo=UTC)


def test_consolidated_joins_features_policy_by_date_and_golden_zone_only_where_present():
    d1, d2 = date(2024, 1, 2), date(2024, 1, 3)
    keys = [(d1, "ZL"), (d2, "ZL"), (d1, "MES"), (d2, "MES")]
    market = rows_for(
        schemas.MARKET_FEATURES,
        [
            {
                "trade_date": d1,
                "symbol": "ZL",
                "vwap": 45.5,
                "realized_vol_1h": 0.2,
                "vol_percentile": 0.7,
                "k_vol": 1.1,
            },
        ],
    )
    golden = rows_for(
        schemas.GOLDEN_ZONE,
        [
            {
                "trade_date": d,
                "symbol": "MES",
                "golden_zone_state": 1,
                "fib_50": 5000.0,
                "qualified_trigger": True,
            }
            for d in (d1, d2)
        ],
    )
    policy = rows_for(
        schemas.POLICY_FEATURES,
        [
            # Keyed by (trade_date, cutoff): without ``closes`` every root's timestamp is the 16:00 CT
            # fallback (22:00 UTC in January), so both roots join this row.
            {"trade_date": d1, "cutoff": datetime(2024, 1, 2, 22, tzinfo=UTC), "trump_score": 0.25,
             "trump_mentions": 3, "trump_procurement_alert": False},
        ],
    )
    cons = _consolidated(_bars(keys), _pivots(keys), market=market, golden_zone=golden, policy=policy)
    assert cons.height == 4  # one row per session bar, none dropped by a missing feature row
    zl1, zl2, mes1 = _row(cons, d1), _row(cons, d2), _row(cons, d1, "MES")
    assert (zl1["vwap"], zl1["vol_percentile"], zl1["k_vol"]) == (45.5, 0.7, 1.1)
    assert zl2["vwap"] is None and mes1["vwap"] is None
    # Policy joins on (date, cut-off = the row's timestamp): the same values on every symbol sharing
    # that close, NULL where the date has none.
    assert zl1["trump_score"] == mes1["trump_score"] == 0.25
    assert zl1["trump_mentions"] == mes1["trump_mentions"] == 3
    assert zl2["trump_score"] is None
    # Golden zone: MES has it; ZL (absent from the golden_zone frame) is NULL everywhere.
    assert (mes1["golden_zone_state"], mes1["fib_50"], mes1["qualified_trigger"]) == (1, 5000.0, True)
    for col in (
        "golden_zone_state",
        "swing_high",
        "swing_low",
        "fib_50",
        "fib_618",
        "vol_decay_slope",
        "qualified_trigger",
    ):
        assert cons.filter(pl.col("symbol") == "ZL")[col].null_count() == 2, col
    assert (zl1["P"], zl1["S2"], zl1["price_above_P"]) == (10.0, 8.0, True)


def test_consolidated_rejects_duplicate_feature_keys():
    keys = [(WINTER, "ZL")]
    pivots = pl.concat([_pivots(keys), _pivots(keys)])
    with pytest.raises(ValueError, match="pivots frame has 1 duplicate keys"):
        _consolidated(_bars(keys), pivots)


def test_consolidated_of_no_bars_is_an_empty_typed_frame():
    cons = _consolidated(_empty(schemas.SESSION_BARS))
    assert cons.height == 0
    assert dict(cons.schema) == schemas.CONSOLIDATED.polars_schema()


# --- matrix -----------------------------------------------------------------------------------------
def test_matrix_schema_equals_the_spec_field_by_field():
    matrix, _ = _matrix([(WINTER, "ZL"), (WINTER, "MES")])
    expected = schemas.DAILY_ML_MATRIX.polars_schema()
    assert matrix.columns == list(expected)
    for name, dtype in expected.items():
        got = matrix.schema[name]
        assert got == dtype, name
        if isinstance(dtype, pl.Struct):
            assert [f.name for f in got.fields] == [f.name for f in dtype.fields], name
            assert [f.dtype for f in got.fields] == [f.dtype for f in dtype.fields], name
    # Spot-check the STRUCT layouts against the spec text (names and order are not renamed).
    assert [f.name for f in matrix.schema["golden_zone"].fields] == [
        "state",
        "swing_high",
        "swing_low",
        "fib_50",
        "fib_618",
        "vol_decay_slope",
        "qualified_trigger",
    ]
    assert [f.name for f in matrix.schema["regime"].fields] == ["name", "weight", "vol_percentile", "k_vol"]
    assert [f.name for f in matrix.schema["pivots"].fields][-3:] == ["R3", "S3", "pivot_roll_flag"]
    assert [f.name for f in matrix.schema["policy"].fields] == [n for n, _ in schemas.POLICY_FIELDS]


def test_matrix_struct_values_regime_and_ingestion_ts():
    keys = [(WINTER, "ZL"), (WINTER, "MES")]
    golden = rows_for(schemas.GOLDEN_ZONE, [{"trade_date": WINTER, "symbol": "MES", "golden_zone_state": 2}])
    market = rows_for(
        schemas.MARKET_FEATURES,
        [{"trade_date": WINTER, "symbol": "ZL", "vwap": 45.5, "vol_percentile": 0.9, "k_vol": 1.5}],
    )
    bars, pivots = _bars(keys, [45.0, 5000.0]), _pivots(keys)
    cons = _consolidated(bars, pivots, market=market, golden_zone=golden)
    matrix = build_daily_ml_matrix(cons, pivots, _regimes([WINTER], "trump_anticipation_2024", 400), INGESTED)
    zl, mes = _row(matrix, WINTER), _row(matrix, WINTER, "MES")
    assert zl["market_data"]["close"] == 45.0 and zl["market_data"]["vwap"] == 45.5
    assert (zl["pivots"]["R3"], zl["pivots"]["S3"], zl["pivots"]["pivot_roll_flag"]) == (13.0, 7.0, False)
    assert zl["regime"] == {
        "name": "trump_anticipation_2024",
        "weight": 400,
        "vol_percentile": 0.9,
        "k_vol": 1.5,
    }
    assert zl["regime_name"] == "trump_anticipation_2024"
    assert zl["timestamp"] == datetime(2024, 1, 15, 22, 0, tzinfo=UTC)
    assert zl["ingestion_ts"] == INGESTED
    # Non-golden root: the STRUCT is there, every member NULL.
    assert all(v is None for v in zl["golden_zone"].values())
    assert mes["golden_zone"]["state"] == 2


def test_matrix_raises_when_a_date_has_no_regime():
    d1, d2 = date(2024, 1, 2), date(2024, 1, 3)
    keys = [(d1, "ZL"), (d2, "ZL")]
    bars, pivots = _bars(keys), _pivots(keys)
    cons = _consolidated(bars, pivots)
    with pytest.raises(RegimeCoverageError, match="2024-01-03"):
        build_daily_ml_matrix(cons, pivots, _regimes([d1]), INGESTED)


def test_matrix_refuses_a_naive_ingestion_ts():
    keys = [(WINTER, "ZL")]
    cons = _consolidated(_bars(keys), _pivots(keys))
    with pytest.raises(ValueError, match="time-zone aware"):
        build_daily_ml_matrix(cons, _pivots(keys), _regimes([WINTER]), datetime(2025, 1, 1))


# --- training tables --------------------------------------------------------------------------------
def test_training_table_schema_and_root_filter():
    keys = [(d, s) for d in _sessions(date(2024, 1, 2), date(2024, 1, 12)) for s in ("ZL", "MES")]
    matrix, _ = _matrix(keys, regime=("trump_anticipation_2024", 400))
    train = build_training_table(matrix, "ZL")
    assert dict(train.schema) == schemas.training_table("ZL").polars_schema()
    assert train.columns == schemas.training_table("ZL").column_names
    purge_cols = ["purged", "purged_1d", "purged_1w", "purged_1m", "purged_3m", "purged_6m", "purged_12m"]
    assert [c for c in train.columns if c.startswith("purged")] == purge_cols
    assert all(train.schema[c] == pl.Boolean for c in purge_cols)
    assert train["symbol"].unique().to_list() == ["ZL"] and train.height == 9
    assert train["training_weight"].unique().to_list() == [400]
    assert train["regime_name"].unique().to_list() == ["trump_anticipation_2024"]
    assert train["data_date"].is_sorted()
    later = datetime(2025, 4, 1, tzinfo=UTC)
    restamped = build_training_table(matrix, "ZL", ingestion_ts=later)
    assert restamped["ingestion_ts"].unique().to_list() == [later]


def test_training_targets_by_hand():
    # 10 sessions, closes 100, 102, 101, 105, 110, 104, 108, 120, 100, 99.
    days = _sessions(date(2024, 3, 4), date(2024, 3, 15))
    closes = [100.0, 102.0, 101.0, 105.0, 110.0, 104.0, 108.0, 120.0, 100.0, 99.0]
    matrix, _ = _matrix([(d, "ZL") for d in days], closes)
    train = build_training_table(matrix, "ZL")
    t1w, t1d = train["target_1w"].to_list(), train["target_1d"].to_list()
    # target_1w[t] = close[t+5]/close[t] - 1:
    assert t1w[0] == pytest.approx(104 / 100 - 1)  # = +0.04
    assert t1w[1] == pytest.approx(108 / 102 - 1)  # = +0.0588...
    assert t1w[2] == pytest.approx(120 / 101 - 1)  # = +0.1881...
    assert t1w[4] == pytest.approx(99 / 110 - 1)  # = -0.10
    # The last 5 sessions have no session 5 ahead.
    assert t1w[5:] == [None] * 5
    assert t1d[0] == pytest.approx(102 / 100 - 1) and t1d[7] == pytest.approx(100 / 120 - 1)
    assert t1d[9] is None
    assert train["target_1m"].null_count() == 10  # 21 sessions ahead never exists here
    # The feature columns are the row's own (no look-ahead): close is today's.
    assert train["close"].to_list() == closes


def test_training_targets_are_null_when_the_base_close_is_not_positive():
    days = _sessions(date(2024, 3, 4), date(2024, 3, 6))
    matrix, _ = _matrix([(d, "ZL") for d in days], [0.0, 10.0, 11.0])
    train = build_training_table(matrix, "ZL")
    assert train["target_1d"].to_list() == [None, pytest.approx(0.1), None]


HOLIDAYS = (date(2022, 12, 26), date(2023, 1, 2), date(2023, 12, 25), date(2024, 1, 1))


@pytest.mark.parametrize(
    ("start", "end", "purged", "split"),
    [
        # Sessions (Dec 26 and Jan 2 closed): #0 Dec15 #1 Dec16 #2 Dec19 #3 Dec20 #4 Dec21 #5 Dec22
        # #6 Dec23 #7 Dec27 #8 Dec28 #9 Dec29 #10 Dec30 | #11 Jan3 #12 Jan4 #13 Jan5 #14 Jan6 #15 Jan9
        # #16 Jan10. Only 1d and 1w targets exist (17 sessions < 22). #5 Dec22 +5 = #10 Dec30: stays in
        # train, not purged. #6 Dec23 +5 = #11 Jan3 (val): purged; likewise #7..#10 (1w and, for #10, 1d
        # reach 2023). Val rows reach only val dates (or have no target): not purged.
        (
            date(2022, 12, 15),
            date(2023, 1, 10),
            {date(2022, 12, d) for d in (23, 27, 28, 29, 30)},
            {date(2022, 12, 30): "train", date(2023, 1, 3): "val"},
        ),
        # Same shape one year later (Dec 25 and Jan 1 closed): #4 Dec21 +5 = #9 Dec29 stays in val;
        # #5 Dec22 +5 = #10 Jan 2, 2024 (test) -> purged, and so are Dec 26..29.
        (
            date(2023, 12, 15),
            date(2024, 1, 10),
            {date(2023, 12, d) for d in (22, 26, 27, 28, 29)},
            {date(2023, 12, 29): "val", date(2024, 1, 2): "test"},
        ),
    ],
)
def test_training_purges_rows_whose_target_window_crosses_a_split_boundary(start, end, purged, split):
    days = _sessions(start, end, HOLIDAYS)
    assert len(days) == 17
    matrix, _ = _matrix([(d, "ZL") for d in days], [100.0 + i for i in range(len(days))])
    train = build_training_table(matrix, "ZL")
    got = set(train.filter(pl.col("purged"))["data_date"].to_list())
    assert got == purged
    # Per horizon: only the last session before the boundary has a 1d window (t, t+1] reaching across;
    # the 1w flag holds the five sessions whose t+5 is across; longer horizons have no target here.
    last_before = max(d for d in days if split_label(d) == split_label(days[0]))
    assert train.filter(pl.col("purged_1d"))["data_date"].to_list() == [last_before]
    assert set(train.filter(pl.col("purged_1w"))["data_date"].to_list()) == purged
    for h in ("1m", "3m", "6m", "12m"):
        assert not train[f"purged_{h}"].any()
    for c in ["purged", *(f"purged_{h}" for h, _ in schemas.TARGET_HORIZONS)]:
        assert train[c].null_count() == 0
    for day, label in split.items():
        assert _row(train, day)["split"] == label


def test_split_labels_at_the_exact_boundaries():
    days = [date(2022, 12, 31), date(2023, 1, 1), date(2023, 12, 31), date(2024, 1, 1), None]
    frame = pl.DataFrame({"d": days}, schema={"d": pl.Date})
    labels = frame.select(split_expr(pl.col("d")).alias("s"))["s"].to_list()
    assert labels == ["train", "val", "val", "test", None]


def split_label(d: date) -> str:
    return "train" if d < date(2023, 1, 1) else "val" if d < date(2024, 1, 1) else "test"


def test_purge_matches_a_row_by_row_reference_over_all_horizons():
    # Two years of weekdays spanning both boundaries, so the 3m..12m targets exist for some rows.
    days = _sessions(date(2022, 6, 1), date(2024, 6, 28))
    matrix, _ = _matrix([(d, "ZL") for d in days], [100.0 + (i % 17) for i in range(len(days))])
    train = build_training_table(matrix, "ZL")

    def crosses(i: int, h: int) -> bool:  # the window (t, t+h] reaches a session of another split
        return i + h < len(days) and split_label(days[i + h]) != split_label(days[i])

    for name, h in schemas.TARGET_HORIZONS:
        assert train[f"purged_{name}"].to_list() == [crosses(i, h) for i in range(len(days))], name
    expected = [any(crosses(i, h) for _, h in schemas.TARGET_HORIZONS) for i in range(len(days))]
    assert train["purged"].to_list() == expected
    assert train["target_12m"].null_count() == 252
    # The any-horizon flag is conservative: a 2023 row is purged as soon as its 12m target reaches 2024.
    # 2023 has 260 weekdays here, so only its first 8 rows survive (with ~250 CME sessions, none would).
    val = train.filter(pl.col("split") == "val")
    assert val.height == 260 and val["purged"].sum() == 252 and not val["purged"].head(8).any()
    # Per horizon, a 1d model keeps all of 2023 but its last session, a 1w model all but its last five.
    assert val.filter(pl.col("purged_1d"))["data_date"].to_list() == [date(2023, 12, 29)]
    assert val["purged_1w"].sum() == 5 and val["purged_6m"].sum() == 126
    # 12m: 138 rows have a target (the data ends 2024-06-28); the first 8 of them end inside 2023.
    assert val["target_12m"].is_not_null().sum() == 138 and val["purged_12m"].sum() == 130


def test_target_crosses_roll_on_a_synthetic_roll_and_a_one_day_flip():
    # 12 sessions; instrument 1 for #0-#5, 2 from #6 (roll), plus a one-day flip to 3 on #9.
    days = _sessions(date(2024, 3, 4), date(2024, 3, 19))
    instruments = [1, 1, 1, 1, 1, 1, 2, 2, 2, 3, 2, 2]
    matrix, bars = _matrix([(d, "ZL") for d in days], [100.0] * 12, instruments)
    from_flags = build_training_table(matrix, "ZL")
    from_bars = build_training_table(matrix, "ZL", session_bars=bars)
    for train in (from_flags, from_bars):
        c1d, c1w = train["target_crosses_roll_1d"].to_list(), train["target_crosses_roll_1w"].to_list()
        # 1d: (t, t+1] holds another instrument only for #5 (->#6 roll), #8 (->#9 flip), #9 (->#10 back).
        assert c1d == [False, False, False, False, False, True, False, False, True, True, False, None]
        # 1w: #0 reaches #5 (still 1): False; #1..#5 reach #6+: True; #6 window #7..#11 holds #9 (flip):
        # True; #7..#11 have no session 5 ahead, so no target and a NULL flag.
        assert c1w == [False, True, True, True, True, True, True, None, None, None, None, None]
        assert train["target_crosses_roll_1m"].null_count() == 12  # target NULL -> flag NULL


def test_target_crosses_roll_is_null_when_an_instrument_in_the_window_is_unknown():
    days = _sessions(date(2024, 3, 4), date(2024, 3, 8))
    keys = [(d, "ZL") for d in days]
    bars, pivots = _bars(keys), _pivots(keys, [False, False, None, False, False])
    matrix = build_daily_ml_matrix(_consolidated(bars, pivots), pivots, _regimes(days), INGESTED)
    train = build_training_table(matrix, "ZL")
    # #2's flag is unknown: the only 1d window holding it is #1's, (#1, #2]; #4 has no target.
    assert train["target_crosses_roll_1d"].to_list() == [False, None, False, False, None]


def test_training_rejects_session_bars_missing_a_matrix_session():
    days = _sessions(date(2024, 3, 4), date(2024, 3, 8))
    matrix, bars = _matrix([(d, "ZL") for d in days])
    with pytest.raises(ValueError, match="session_bars lacks 1 ZL sessions"):
        build_training_table(matrix, "ZL", session_bars=bars.filter(pl.col("trade_date") != days[2]))
