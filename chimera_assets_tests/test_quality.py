"""Data quality rules (chimera_assets.quality): every rule fails on a crafted bad partition (with the
offending keys in its metadata) and passes on the same partition of the real batch; the real batch
(ZL, MES, ES, 2024-01-02 .. 2025-12-12) passes every hard rule; the known real warnings are reported."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from chimera_assets.quality.evaluation import audit_offenders, evaluate_rule, frame_rule_offenders, rules_for
from chimera_assets.quality.frames import partition_key_expr, rows_as_dicts
from chimera_assets.quality.hard_rules import ohlc_violation_rows, regime_gap_rows
from chimera_assets.quality.outcomes import outcome, outcomes_by_partition
from chimera_assets.quality.registry import (
    HARD_RULES,
    MAX_OFFENDING_KEYS,
    PARTITION,
    CheckOutcome,
    QualityConfig,
    Severity,
)
from chimera_assets.quality.soft_rules import (
    flip_and_thin_rows,
    freshness_outcome,
    missing_session_rows,
    outlier_return_rows,
)
from chimera_assets.schemas import (
    CONSOLIDATED,
    DAILY_ML_MATRIX,
    GOLDEN_ZONE,
    MARKET_FEATURES,
    OHLCV_1H,
    PIVOTS,
    SESSION_BARS,
    TableSpec,
    training_table,
)
from chimera_assets.trade_calendar import early_close_keys, expected_sessions, latest_closed_session
from chimera_assets_tests.real_frames import real_feature_frames

ROOTS = ["ZL", "MES", "ES"]
START, END = date(2024, 1, 2), date(2025, 12, 12)
CALENDARS = {"ZL": "CME_Agriculture", "MES": "CME_Equity", "ES": "CME_Equity"}
QUIET_DAY = date(2025, 8, 14)  # an ordinary ZL session
PK = f"{QUIET_DAY}|ZL"
FLIP_DAY = date(2025, 9, 3)  # ZL.v.0 maps to a 33-lot contract for one day


@pytest.fixture(scope="module")
def real() -> dict[str, pl.DataFrame]:
    """The real batch through the pure builders (no Dagster): raw 1h bars -> ... -> matrix, training."""
    from chimera_assets.training.targets import build_training_table

    out = real_feature_frames(START, END, ROOTS)
    now = datetime(2025, 12, 15, tzinfo=UTC)
    for r in ROOTS:
        out[f"training_{r}"] = build_training_table(out["matrix"], r, out["session_bars"], now)
    return out


def partition_outcome(rule: str, spec: TableSpec, frame: pl.DataFrame, pk: str) -> CheckOutcome:
    """The rule's outcome for one partition of ``frame`` (rules that need only the table's rows)."""
    off, extra = frame_rule_offenders(rule, spec, frame)
    counts = frame.with_columns(partition_key_expr(spec.date_column, spec.symbol_column)).group_by(
        PARTITION).len()
    n = dict(zip(counts[PARTITION].to_list(), counts["len"].to_list(), strict=True))
    return outcomes_by_partition(rule, off, [pk], n, extra)[pk]


def _one_partition(frame: pl.DataFrame, d: date = QUIET_DAY, root: str = "ZL", date_col="trade_date",
                   sym="symbol") -> pl.DataFrame:
    out = frame.filter((pl.col(date_col) == d) & (pl.col(sym) == root))
    assert out.height >= 1
    return out


def _set(frame: pl.DataFrame, mask: pl.Expr, **values) -> pl.DataFrame:
    return frame.with_columns(
        [pl.when(mask).then(pl.lit(v, dtype=frame.schema[c])).otherwise(pl.col(c)).alias(c) for c, v in values.items()]
    )


def _is_day(d: date = QUIET_DAY, root: str = "ZL", date_col: str = "trade_date") -> pl.Expr:
    return (pl.col(date_col) == d) & (pl.col("symbol") == root)


# --- hard rules: crafted bad partition fails, the real partition passes -------------------------------------
def test_keys_not_null(real):
    sb = _one_partition(real["session_bars"])
    assert partition_outcome("keys_not_null", SESSION_BARS, sb, PK).passed
    raw = _one_partition(real["raw"])
    ok = partition_outcome("keys_not_null", OHLCV_1H, raw, PK)
    assert ok.passed and ok.metadata["rows_checked"] == raw.height

    # a NULL required non-key column (trade_date of one raw bar) and a NULL key column (instrument_id)
    first_ts = raw["ts_event"].min()
    bad = raw.with_columns(
        pl.when(pl.col("ts_event") == first_ts).then(None).otherwise(pl.col("instrument_id")).alias("instrument_id")
    )
    oc = partition_outcome("keys_not_null", OHLCV_1H, bad, PK)
    assert not oc.passed and oc.severity == Severity.ERROR
    assert oc.metadata["offending_rows"] == 1
    assert oc.offending_keys[0]["null_columns"] == "instrument_id"
    assert oc.offending_keys[0]["symbol"] == "ZL" and oc.offending_keys[0]["partition"] == PK
    assert "trade_date" in oc.metadata["required_columns"]  # NOT NULL, though not part of the key

    bad_date = raw.with_columns(pl.lit(None, pl.Date).alias("trade_date"))
    oc = partition_outcome("keys_not_null", OHLCV_1H, bad_date, PK)
    assert not oc.passed and oc.metadata["offending_rows"] == raw.height  # no partition: counted everywhere
    assert oc.offending_keys[0]["null_columns"] == "trade_date"


def test_no_duplicate_keys(real):
    sb = _one_partition(real["session_bars"])
    assert partition_outcome("no_duplicate_keys", SESSION_BARS, sb, PK).passed
    oc = partition_outcome("no_duplicate_keys", SESSION_BARS, pl.concat([sb, sb]), PK)
    assert not oc.passed
    assert oc.offending_keys == [{"partition": PK, "trade_date": str(QUIET_DAY), "symbol": "ZL", "copies": 2}]
    assert oc.metadata["key"] == ["trade_date", "symbol"]


def test_ohlc_consistent_session_bars_raw_matrix_training(real):
    sb = _one_partition(real["session_bars"])
    assert partition_outcome("ohlc_consistent", SESSION_BARS, sb, PK).passed
    bad = sb.with_columns((pl.col("low") - 1.0).alias("high"))
    oc = partition_outcome("ohlc_consistent", SESSION_BARS, bad, PK)
    assert not oc.passed and oc.severity == Severity.ERROR
    assert "high<low" in oc.offending_keys[0]["problems"] and oc.offending_keys[0]["partition"] == PK

    neg = sb.with_columns(pl.lit(-5, pl.Int64).alias("volume"))
    assert partition_outcome("ohlc_consistent", SESSION_BARS, neg, PK).offending_keys[0]["problems"] == "volume<0"

    raw = _one_partition(real["raw"])
    assert partition_outcome("ohlc_consistent", OHLCV_1H, raw, PK).passed
    first = raw["ts_event"].min()
    bad_raw = raw.with_columns(pl.when(pl.col("ts_event") == first).then(pl.col("high") + 5).otherwise(
        pl.col("close")).alias("close"))
    oc = partition_outcome("ohlc_consistent", OHLCV_1H, bad_raw, PK)
    assert oc.metadata["offending_rows"] == 1 and oc.offending_keys[0]["problems"] == "close>high"

    m = _one_partition(real["matrix"], date_col="data_date")
    assert partition_outcome("ohlc_consistent", DAILY_ML_MATRIX, m, PK).passed
    bad_m = m.with_columns(pl.col("market_data").struct.with_fields(pl.field("low") + 100.0))
    oc = partition_outcome("ohlc_consistent", DAILY_ML_MATRIX, bad_m, PK)
    assert not oc.passed and "high<low" in oc.offending_keys[0]["problems"]

    tr = _one_partition(real["training_ZL"], date_col="data_date")
    spec = training_table("ZL")
    assert outcome("ohlc_consistent", ohlc_violation_rows(tr, spec), tr.height).passed
    bad_tr = tr.with_columns(pl.lit(None, pl.Float64).alias("high"), (pl.col("close") * 2).alias("open"))
    assert ohlc_violation_rows(bad_tr, spec).height == 0  # NULL high: nothing to compare against high
    bad_tr = tr.with_columns((pl.col("low") - 1).alias("open"))
    assert ohlc_violation_rows(bad_tr, spec)["problems"].to_list() == ["open<low"]


def test_regime_coverage_matrix_and_training(real):
    m = _one_partition(real["matrix"], date_col="data_date")
    ok = partition_outcome("regime_coverage", DAILY_ML_MATRIX, m, PK)
    assert ok.passed and ok.metadata["coverage_pct"] == 100.0
    bad = m.with_columns(pl.col("regime").struct.with_fields(pl.lit(None, pl.Utf8).alias("name")))
    oc = partition_outcome("regime_coverage", DAILY_ML_MATRIX, bad, PK)
    assert not oc.passed and oc.metadata["coverage_pct"] == 0.0
    hit = oc.offending_keys[0]
    assert (hit["partition"], hit["data_date"], hit["regime_name"], hit["problem"]) == (
        PK, str(QUIET_DAY), None, "regime name NULL")
    mismatch = m.with_columns(pl.lit("other", pl.Utf8).alias("regime_name"))
    assert partition_outcome("regime_coverage", DAILY_ML_MATRIX, mismatch, PK).offending_keys[0]["problem"] == (
        "regime_name != regime.name")

    spec = training_table("ZL")
    tr = _one_partition(real["training_ZL"], date_col="data_date")
    assert outcome("regime_coverage", regime_gap_rows(tr, spec), tr.height).passed
    bad_tr = tr.with_columns(pl.lit(None, pl.Int64).alias("regime_weight"))
    assert regime_gap_rows(bad_tr, spec)["problem"].to_list() == ["regime weight NULL"]


def test_struct_members_present(real):
    m = _one_partition(real["matrix"], date_col="data_date")
    ok = partition_outcome("struct_members_present", DAILY_ML_MATRIX, m, PK)
    assert ok.passed and ok.metadata["missing_members"] == []
    assert "golden_zone.state" in ok.metadata["all_null_members"]  # ZL has no golden-zone family (info only)
    fields = [f.name for f in m.schema["pivots"].fields if f.name != "R3"]
    no_r3 = m.with_columns(pl.struct([pl.col("pivots").struct.field(n) for n in fields]).alias("pivots"))
    oc = partition_outcome("struct_members_present", DAILY_ML_MATRIX, no_r3, PK)
    assert not oc.passed and oc.metadata["missing_members"] == ["pivots.R3"]
    assert oc.offending_keys[0]["partition"] == PK

    null_struct = m.with_columns(pl.lit(None, m.schema["golden_zone"]).alias("golden_zone"))
    oc = partition_outcome("struct_members_present", DAILY_ML_MATRIX, null_struct, PK)
    assert not oc.passed and oc.offending_keys[0]["null_structs"] == "golden_zone"


# --- warn rules --------------------------------------------------------------------------------------------------
def test_missing_sessions_uses_the_cme_calendar(real):
    sb = real["session_bars"]
    aug = [(d, "ZL") for d in expected_sessions("CME_Agriculture", date(2025, 8, 1), date(2025, 8, 29))]
    assert missing_session_rows(sb, aug, CALENDARS).height == 0
    assert date(2025, 9, 1) not in expected_sessions("CME_Agriculture", date(2025, 9, 1), date(2025, 9, 1))

    holed = sb.filter(~_is_day())
    off = missing_session_rows(holed, aug, CALENDARS)
    oc = outcomes_by_partition("no_missing_sessions", off, [PK], {})[PK]
    assert not oc.passed and oc.severity == Severity.WARN
    assert oc.offending_keys == [{"partition": PK, "trade_date": str(QUIET_DAY), "symbol": "ZL",
                                  "calendar": "CME_Agriculture"}]
    # Labor Day 2025-09-01: the calendar expects no session, so a missing bar is not reported
    assert missing_session_rows(holed, [(date(2025, 9, 1), "ZL")], CALENDARS).height == 0
    # before a root's first date nothing is expected
    assert missing_session_rows(holed, aug, CALENDARS, {"ZL": date(2025, 8, 20)}).height == 0


def test_flips_and_thin_sessions(real):
    sb = real["session_bars"]
    rows = flip_and_thin_rows(sb)
    assert rows.filter(pl.col(PARTITION) == PK).is_empty()  # the real quiet day passes
    flip = rows.filter(pl.col(PARTITION) == f"{FLIP_DAY}|ZL").to_dicts()
    assert len(flip) == 1 and flip[0]["kind"] == "one_day_flip+thin"
    assert flip[0]["volume"] == 33 and flip[0]["instrument_id"] != flip[0]["prev_instrument_id"]
    assert flip[0]["next_instrument_id"] == flip[0]["prev_instrument_id"]

    # crafted: the quiet day on another contract with 10 lots
    bad = _set(sb, _is_day(), instrument_id=999, volume=10)
    off = flip_and_thin_rows(bad)
    oc = outcomes_by_partition("flips_and_thin_sessions", off, [PK], {PK: 1})[PK]
    assert not oc.passed and oc.severity == Severity.WARN
    assert oc.offending_keys[0]["kind"] == "one_day_flip+thin" and oc.offending_keys[0]["instrument_id"] == 999

    # thresholds are configurable: at ratio 0.0001 a 33-lot session is no longer thin
    strict = flip_and_thin_rows(sb, QualityConfig(thin_ratio=0.0001))
    assert strict.filter(pl.col(PARTITION) == f"{FLIP_DAY}|ZL")["kind"].to_list() == ["one_day_flip"]


def test_outlier_returns(real):
    sb, mf = real["session_bars"], real["market"]
    rows, counts = outlier_return_rows(sb, mf)
    assert rows.filter(pl.col(PARTITION) == PK).is_empty()
    assert counts["returns_compared"] > 1300 and counts["skipped_roll"] > 0
    # a return across a contract change is never compared: the ZL flip day is not an outlier
    assert rows.filter(pl.col("symbol") == "ZL").is_empty()

    bad = sb.with_columns(pl.when(_is_day()).then(pl.col("close") * 1.2).otherwise(pl.col("close")).alias("close"))
    off, _ = outlier_return_rows(bad, mf)
    oc = outcomes_by_partition("no_outlier_returns", off, [PK], {PK: 1}, {"k": 6.0})[PK]
    assert not oc.passed and oc.metadata["k"] == 6.0
    hit = oc.offending_keys[0]
    assert hit["partition"] == PK and hit["z"] > 6 and hit["log_return"] > 0.1

    # k is configurable; lower k flags more sessions
    loose, _ = outlier_return_rows(sb, mf, QualityConfig(outlier_k=4.0))
    assert loose.height > rows.height


def test_matrix_freshness():
    as_of = datetime(2025, 12, 15, 23, 0, tzinfo=UTC)  # after the 2025-12-15 close
    ok = freshness_outcome({"ZL": date(2025, 12, 12), "ES": date(2025, 12, 12)}, CALENDARS, as_of, 3)
    assert ok.passed and ok.metadata["per_root"]["ZL"]["lag_sessions"] == 1
    assert ok.metadata["per_root"]["ES"]["latest_expected"] == "2025-12-15"

    stale = freshness_outcome({"ZL": date(2025, 11, 28), "ES": date(2025, 12, 12)}, CALENDARS, as_of, 3)
    assert not stale.passed and stale.severity == Severity.WARN
    assert stale.offending_keys == [{"partition": "2025-11-28|ZL", "symbol": "ZL", "latest_date": "2025-11-28",
                                     "latest_expected": "2025-12-15", "lag_sessions": 11}]
    assert freshness_outcome({"ZL": date(2025, 11, 28)}, CALENDARS, as_of, 20).passed  # configurable


# --- the real batch ------------------------------------------------------------------------------------------------
def test_real_batch_passes_every_hard_rule(real):
    tables = [(OHLCV_1H, "raw"), (SESSION_BARS, "session_bars"), (MARKET_FEATURES, "market"), (PIVOTS, "pivots"),
              (GOLDEN_ZONE, "golden"), (CONSOLIDATED, "consolidated"), (DAILY_ML_MATRIX, "matrix")]
    tables += [(training_table(r), f"training_{r}") for r in ROOTS]
    checked = 0
    for spec, name in tables:
        frame = real[name]
        expected_roots = {name.split("_")[1]} if name.startswith("training") else set(ROOTS)
        assert set(frame["symbol"].unique().to_list()) == expected_roots, name
        for rule in rules_for(spec):
            if rule in HARD_RULES or rule == "struct_members_present":
                off, _ = frame_rule_offenders(rule, spec, frame)
                assert off.height == 0, (spec.fqn, rule, rows_as_dicts(off, 5))
                checked += 1
        assert audit_offenders(spec, frame) == {}
    assert checked == 32  # 10 tables: 3+3+2+2+2+3+5 rules, 4 per training table
    # The row counts, from two paths instead of typed-in numbers: one session bar per (trade date, root)
    # holding raw bars, and per session of the roots' exchange calendars but the two Good Fridays the
    # calendar lists for the equity roots although CME was closed, plus the Carter day of mourning
    # (2025-01-09) the calendars list as closed although CME held a short session (see
    # test_real_batch_warnings).
    raw, sb = real["raw"], real["session_bars"]
    bar_keys = set(sb.select("trade_date", "symbol").rows())
    assert len(bar_keys) == sb.height and bar_keys == set(raw.select("trade_date", "symbol").unique().rows())
    sessions = {(d, r) for r in ROOTS for d in expected_sessions(CALENDARS[r], START, END)}
    closed = {(date(2024, 3, 29), "ES"), (date(2024, 3, 29), "MES"), (date(2025, 4, 18), "ES"),
              (date(2025, 4, 18), "MES")}
    mourning = {(date(2025, 1, 9), r) for r in ROOTS}
    assert bar_keys == (sessions - closed) | mourning, (sorted(bar_keys - sessions)[:5], sorted(sessions - closed - bar_keys)[:5])
    # Every bar of a session's instrument is counted once (a roll day's other contract is not).
    own = raw.join(sb.select("trade_date", "symbol", "instrument_id"), on=["trade_date", "symbol", "instrument_id"])
    assert sb["bar_count"].sum() == own.height < raw.height


def test_real_batch_warnings(real):
    """The warnings the real batch produces (explained in docs/data_quality.md)."""
    sb = real["session_bars"]
    ft = flip_and_thin_rows(sb)
    flips = ft.filter(pl.col("kind").str.contains("flip"))
    assert sorted(flips.filter(pl.col("symbol") == "ZL")[PARTITION].to_list()) == [
        "2024-06-26|ZL", "2024-06-28|ZL", "2025-04-21|ZL", "2025-09-03|ZL"]
    assert flips.filter(pl.col("symbol") != "ZL").is_empty()
    parts = [(d, r) for r in ROOTS for d in expected_sessions(CALENDARS[r], START, END)]
    missing = missing_session_rows(sb, parts, CALENDARS)
    # pandas_market_calendars' CME_Equity lists Good Friday as a half session; CME was closed both years
    assert sorted(missing[PARTITION].to_list()) == ["2024-03-29|ES", "2024-03-29|MES", "2025-04-18|ES",
                                                    "2025-04-18|MES"]
    # thin sessions: ES/MES on US holidays (calendar early closes, not reported by default), plus two
    thin = ft.filter(pl.col("kind") == "thin")
    assert thin.filter(pl.col("symbol") == "ES").height == 16
    reported = flip_and_thin_rows(sb, early_closes=early_close_keys(sb, CALENDARS))
    assert sorted(reported.filter(pl.col("symbol") == "ES")[PARTITION].to_list()) == [
        "2024-06-18|ES", "2025-01-09|ES"]  # the day before the June roll; the Carter day of mourning
    assert sorted(reported.filter(pl.col("symbol") == "MES")[PARTITION].to_list()) == [
        "2024-06-18|MES", "2025-01-09|MES", "2025-09-16|MES"]  # + the day before the September 2025 roll
    assert sorted(reported.filter(pl.col("symbol") == "ZL")[PARTITION].to_list()) == [
        "2024-06-26|ZL", "2024-06-28|ZL", "2025-04-21|ZL", "2025-07-07|ZL", "2025-07-08|ZL", "2025-09-03|ZL"]
    outliers, _ = outlier_return_rows(sb, real["market"])
    assert sorted(outliers[PARTITION].to_list()) == ["2025-10-10|ES", "2025-10-10|MES"]


def test_evaluate_rule_against_a_warehouse(real, duckdb_warehouse):
    wh = duckdb_warehouse
    from chimera_assets.warehouse.base import Slice

    # The pure builder has no completeness (the asset shell adds it); every session of this range is complete.
    bars = real["session_bars"].with_columns(session_complete=pl.lit(True), session_status=pl.lit("complete"))
    for spec, frame in ((SESSION_BARS, bars), (MARKET_FEATURES, real["market"])):
        wh.merge(spec, frame.filter(pl.col("symbol") == "ZL").select(spec.column_names), None)
    # the daily case: only 2025-09-04 is checked; the flip of 09-03 is confirmed by it and reported there
    ev = evaluate_rule(wh, SESSION_BARS, "flips_and_thin_sessions", [(date(2025, 9, 4), "ZL")])
    res = ev.by_partition()["2025-09-04|ZL"]
    assert not res.passed and res.offending_keys[0]["trade_date"] == "2025-09-03"
    ev = evaluate_rule(wh, SESSION_BARS, "flips_and_thin_sessions", [(FLIP_DAY, "ZL"), (QUIET_DAY, "ZL")])
    by = ev.by_partition()
    assert not by[f"{FLIP_DAY}|ZL"].passed and by[PK].passed
    assert ev.summary().metadata["partitions_failed"] == 1

    ev = evaluate_rule(wh, SESSION_BARS, "no_missing_sessions", [(QUIET_DAY, "ZL"), (date(2025, 9, 1), "ZL")],
                         calendars=CALENDARS)
    assert all(o.passed for o in ev.by_partition().values())
    wh.merge(SESSION_BARS, SESSION_BARS.empty_frame(), Slice.from_keys([(QUIET_DAY, "ZL")]))  # delete the day
    ev = evaluate_rule(wh, SESSION_BARS, "no_missing_sessions", [(QUIET_DAY, "ZL")], calendars=CALENDARS)
    assert not ev.by_partition()[PK].passed

    ev = evaluate_rule(wh, MARKET_FEATURES, "no_outlier_returns", [(date(2025, 10, 10), "ZL")])
    assert ev.summary().passed and ev.summary().metadata["returns_compared"] == 1
    whole = evaluate_rule(wh, SESSION_BARS, "ohlc_consistent")
    stored = wh.read(SESSION_BARS).height  # every ZL session bar but the deleted day
    assert stored == bars.filter(pl.col("symbol") == "ZL").height - 1
    assert whole.summary().passed and whole.summary().metadata["partitions_checked"] == stored


def test_config_from_env():
    cfg = QualityConfig.from_env({"CHIMERA_QUALITY_OUTLIER_K": "4.5", "CHIMERA_QUALITY_FRESHNESS_LAG": "5",
                                    "CHIMERA_QUALITY_AS_OF": "2025-12-15T23:00:00"})
    assert cfg.outlier_k == 4.5 and cfg.freshness_max_lag == 5 and cfg.as_of == datetime(2025, 12, 15, 23, tzinfo=UTC)
    assert QualityConfig.from_env({}) == QualityConfig()
    with pytest.raises(ValueError, match="CHIMERA_QUALITY_OUTLIER_K"):
        QualityConfig.from_env({"CHIMERA_QUALITY_OUTLIER_K": "six"})
    with pytest.raises(ValueError, match="positive"):
        QualityConfig.from_env({"CHIMERA_QUALITY_FRESHNESS_LAG": "0"})


def test_offending_keys_are_capped_at_20():
    frame = pl.DataFrame({"trade_date": [date(2025, 8, 1)] * 30, "symbol": ["ZL"] * 30,
                          "open": [1.0] * 30, "high": [0.0] * 30, "low": [1.0] * 30, "close": [1.0] * 30})
    spec = SESSION_BARS
    off = ohlc_violation_rows(frame, spec)
    oc = outcome("ohlc_consistent", off, frame.height)
    assert oc.metadata["offending_rows"] == 30 and len(oc.offending_keys) == MAX_OFFENDING_KEYS == 20


def test_latest_closed_session_turns_at_the_close_and_across_a_weekend():
    # CME_Agriculture closes at 13:20 Chicago time: 19:20 UTC in early March 2024 (CST).
    assert latest_closed_session("CME_Agriculture", datetime(2024, 3, 5, 19, 19, tzinfo=UTC)) == date(2024, 3, 4)
    assert latest_closed_session("CME_Agriculture", datetime(2024, 3, 5, 19, 20, tzinfo=UTC)) == date(2024, 3, 5)
    # Sunday: Friday's session is the latest closed one (the cached schedule serves both calls of a day).
    assert latest_closed_session("CME_Agriculture", datetime(2024, 3, 10, 12, 0, tzinfo=UTC)) == date(2024, 3, 8)
