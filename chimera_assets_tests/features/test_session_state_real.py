"""Issue 14 cases 7 (partial sessions are not published) and 6 downstream (no green partition without
data), on the real Databento batch in ../shared/data/databento-batch (skipped when absent)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from chimera_assets.definitions import build_definitions
from chimera_assets.schemas import (
    CONSOLIDATED,
    DAILY_ML_MATRIX,
    GOLDEN_ZONE,
    MARKET_FEATURES,
    OHLCV_1H,
    PIVOTS,
    SESSION_BARS,
    training_table,
)
from chimera_assets.settings import get_settings
from chimera_assets.warehouse import get_warehouse
from chimera_assets_tests.conftest import shared_data
from chimera_assets_tests.dagster_helpers import QUIET, run_range
from chimera_assets_tests.e2e_helpers import run_main_job

JOB = "GLBX-20251216-WEJLAFALCV"
FEATURE_TABLES = (MARKET_FEATURES, PIVOTS, GOLDEN_ZONE)
CHAIN = [
    "market_data.databento_futures_ohlcv_1h", "features.session_bars", "features.market_features",
    "features.pivots", "features.golden_zone", "features.consolidated_features", "features.daily_ml_matrix",
]


def _weekdays(start: date, end: date) -> list[date]:
    """Mon-Fri of [start, end], counted here (the expected partition counts come from the calendar)."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1) if (start + timedelta(days=i)).weekday() < 5]


def _landing(tmp_path: Path, *months: str) -> Path:
    """A landing directory holding the real monthly ohlcv-1h files of ``months`` ("202507", ...)."""
    batch = shared_data("databento-batch", JOB)
    land = tmp_path / "landing"
    land.mkdir(exist_ok=True)
    for m in months:
        (src,) = batch.glob(f"glbx-mdp3-{m}01-*.ohlcv-1h.dbn.zst")
        if not (land / src.name).exists():
            (land / src.name).symlink_to(src)
    return land


def _chain(start: str, end: str, root: str, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    """The policy features of [start, end] (date partitions, their own run), then raw -> matrix for ``root``."""
    job = build_definitions().resolve_implicit_global_asset_job_def()
    job.get_subset(asset_selection={dg.AssetKey(["features", "policy_features"])}).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), run_config=QUIET,
        tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end},
    )
    return run_range(CHAIN, start, end, root, raise_on_error=raise_on_error)


def _metadata(result: dg.ExecuteInProcessResult, fqn: str) -> dict:
    key = dg.AssetKey(fqn.split("."))
    mats = [m for m in result.get_asset_materialization_events() if m.asset_key == key]
    assert mats, f"{fqn} was not materialized"
    return {k: v.value for k, v in mats[0].materialization.metadata.items()}


def _step_error(result: dg.ExecuteInProcessResult) -> str:
    failures = [ev for ev in result.all_events if ev.is_step_failure]
    assert failures, "the run did not fail"
    err, texts = failures[0].step_failure_data.error, []
    while err is not None:
        texts.append(err.message)
        err = err.cause
    return "\n".join(texts)


def test_the_evening_fragment_at_the_end_of_a_monthly_file_is_not_published_until_complete(tmp_path, monkeypatch):
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(_landing(tmp_path, "202507")))
    frag = date(2025, 8, 1)
    run_main_job(date(2025, 7, 1), frag, ["ES"])
    wh = get_warehouse(get_settings())
    sb = wh.read(SESSION_BARS).sort("trade_date")
    row = sb.filter(pl.col("trade_date") == frag).row(0, named=True)
    # The July file ends at 2025-08-01 00:00 UTC: two evening bars of the 08-01 session (27,034 lots).
    assert row["session_complete"] is False and row["bar_count"] == 2 and row["volume"] < 100_000
    assert sb.filter(pl.col("trade_date") < frag)["session_complete"].all()
    # One session bar per trade date holding raw bars (the fragment's included), none from nothing.
    raw_dates = wh.read(OHLCV_1H, columns=["trade_date"])["trade_date"].unique().sort().to_list()
    assert sb["trade_date"].to_list() == raw_dates and raw_dates[-1] == frag
    for spec in (*FEATURE_TABLES, CONSOLIDATED):
        assert wh.read(spec)["trade_date" if "trade_date" in spec.column_names else "data_date"].max() == date(
            2025, 7, 31
        ), spec.fqn
    assert frag not in wh.read(DAILY_ML_MATRIX)["data_date"].to_list()
    assert frag not in wh.read(training_table("ES"))["data_date"].to_list()

    # The August file arrives: a re-run completes and publishes the session.
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(_landing(tmp_path, "202507", "202508")))
    run_main_job(frag, frag, ["ES"])
    row = wh.read(SESSION_BARS).filter(pl.col("trade_date") == frag).row(0, named=True)
    assert row["session_complete"] is True and row["bar_count"] > 20 and row["volume"] > 1_000_000
    m = wh.read(DAILY_ML_MATRIX).filter(pl.col("data_date") == frag)
    assert m.height == 1 and m["market_data"].struct.field("volume").item() == row["volume"]
    assert frag in wh.read(training_table("ES"))["data_date"].to_list()


def test_a_stale_incomplete_session_before_later_sessions_stops_the_features(tmp_path, monkeypatch):
    """July only: 08-01 stored incomplete. August arrives but only 08-04..08-05 are re-run: the pivots of
    08-04 would skip 08-01 (its previous session), so the run stops naming it; re-running 08-01 fixes it."""
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(_landing(tmp_path, "202507")))
    run_range(CHAIN[:2], "2025-07-28", "2025-08-01", "ES")
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(_landing(tmp_path, "202507", "202508")))
    run_range(CHAIN[:2], "2025-08-04", "2025-08-05", "ES")
    res = run_range(["features.pivots"], "2025-08-04", "2025-08-05", "ES", raise_on_error=False)
    msg = _step_error(res)
    assert "features/pivots: session bars of 2025-08-01|ES are marked incomplete although later sessions" in msg
    run_range(CHAIN[:2], "2025-08-01", "2025-08-01", "ES")
    assert run_range(["features.pivots"], "2025-08-04", "2025-08-05", "ES").success
    piv = get_warehouse(get_settings()).read(PIVOTS).filter(pl.col("trade_date") == date(2025, 8, 4))
    sb = get_warehouse(get_settings()).read(SESSION_BARS).filter(pl.col("trade_date") == date(2025, 8, 1))
    assert piv["prev_close"].item() == sb["close"].item()


def test_incomplete_sessions_are_listed_in_metadata_and_do_not_fail_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(_landing(tmp_path, "202507")))
    res = _chain("2025-07-28", "2025-08-01", "ES")
    for fqn in CHAIN[1:]:
        md = _metadata(res, fqn)
        incomplete = md["chimera/incomplete"]
        assert incomplete["partitions"] == ["2025-08-01|ES"], fqn
        # Every other weekday partition of the range is published.
        assert md["chimera/partitions_published"] == len(_weekdays(date(2025, 7, 28), date(2025, 8, 1))) - 1, fqn


def test_materializing_the_matrix_alone_without_upstream_rows_fails_naming_them(tmp_path, monkeypatch):
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(_landing(tmp_path, "202403")))
    # Raw bars are loaded, nothing downstream was materialized.
    run_range(["market_data.databento_futures_ohlcv_1h"], "2024-03-04", "2024-03-08", "ZL")
    res = run_range(["features.daily_ml_matrix"], "2024-03-04", "2024-03-08", "ZL", raise_on_error=False)
    assert not res.success
    msg = _step_error(res)
    assert "features/daily_ml_matrix: no session bars for 2024-03-04|ZL, 2024-03-05|ZL" in msg
    assert "materialize features/session_bars" in msg
    wh = get_warehouse(get_settings())
    assert not wh.table_exists(DAILY_ML_MATRIX) or wh.read(DAILY_ML_MATRIX).height == 0

    # Session bars present but the feature families not: the consolidated frame names what is missing.
    run_range(["features.session_bars"], "2024-03-04", "2024-03-08", "ZL")
    res = run_range(["features.consolidated_features"], "2024-03-04", "2024-03-08", "ZL", raise_on_error=False)
    assert "features/consolidated_features: no features/market_features rows for 2024-03-04|ZL" in _step_error(res)


def test_session_bars_past_the_loaded_raw_data_are_missing_and_do_not_fail(tmp_path, monkeypatch):
    """Raw bars loaded to 08-01 only: a session-bars run to 08-05 builds what exists and lists 08-04..08-05
    as missing (0 rows, the reason and the raw asset to load), SPEC 6.3 (2026-12-08)."""
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(_landing(tmp_path, "202507")))
    run_range(["market_data.databento_futures_ohlcv_1h"], "2025-07-28", "2025-08-01", "ES")
    res = run_range(["features.session_bars"], "2025-07-30", "2025-08-05", "ES")
    md = _metadata(res, "features.session_bars")
    assert md["chimera/missing"]["partitions"] == ["2025-08-04|ES", "2025-08-05|ES"]
    assert "no loaded source covers it" in md["chimera/missing"]["reason"]
    assert md["chimera/incomplete"]["partitions"] == ["2025-08-01|ES"]
    assert md["chimera/partitions_published"] == 2  # 07-30, 07-31
    sb = get_warehouse(get_settings()).read(SESSION_BARS)
    assert sorted(sb["trade_date"].to_list()) == [date(2025, 7, 30), date(2025, 7, 31), date(2025, 8, 1)]


def test_empty_partitions_only_on_days_without_a_session_and_metadata_says_why(tmp_path, monkeypatch):
    """ZL on Independence Day 2025 (CME_Agriculture closed) and ES on Good Friday 2025 (the calendar library
    lists a session, the exchange did not trade: the April file spans the day without an ES bar)."""
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(_landing(tmp_path, "202504", "202507")))
    res = _chain("2025-07-01", "2025-07-08", "ZL")
    for fqn in CHAIN[1:]:
        md = _metadata(res, fqn)
        assert md["chimera/no_session"]["partitions"] == ["2025-07-04|ZL"], fqn
        assert "no CME session" in md["chimera/no_session"]["reason"]
    wh = get_warehouse(get_settings())
    assert date(2025, 7, 4) not in wh.read(DAILY_ML_MATRIX)["data_date"].to_list()
    assert wh.read(DAILY_ML_MATRIX)["data_date"].sort().to_list() == [
        d for d in _weekdays(date(2025, 7, 1), date(2025, 7, 8)) if d != date(2025, 7, 4)]

    res = _chain("2025-04-14", "2025-04-22", "ES")
    md = _metadata(res, "features.daily_ml_matrix")
    assert md["chimera/no_trades"]["partitions"] == ["2025-04-18|ES"]
    assert json.dumps(md).count("2025-04-18") == 1
    assert md["chimera/partitions_published"] == len(_weekdays(date(2025, 4, 14), date(2025, 4, 22))) - 1


def test_a_day_never_loaded_between_loaded_days_is_missing_not_a_failure(tmp_path, monkeypatch):
    """Raw bars loaded for 03-04..03-05 and 03-07..03-08 only (two partial loads of the March file): 03-06
    lies inside the file's records but no load wrote it, so it is missing (0 rows, listed), not no_trades;
    once its raw data is loaded a re-run publishes it."""
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(_landing(tmp_path, "202403")))
    run_range(["market_data.databento_futures_ohlcv_1h"], "2024-03-04", "2024-03-05", "ZL")
    run_range(["market_data.databento_futures_ohlcv_1h"], "2024-03-07", "2024-03-08", "ZL")
    res = run_range(["features.session_bars"], "2024-03-04", "2024-03-08", "ZL")
    md = _metadata(res, "features.session_bars")
    assert md["chimera/missing"]["partitions"] == ["2024-03-06|ZL"] and "chimera/no_trades" not in md
    run_range(["market_data.databento_futures_ohlcv_1h"], "2024-03-06", "2024-03-06", "ZL")
    md = _metadata(run_range(["features.session_bars"], "2024-03-04", "2024-03-08", "ZL"), "features.session_bars")
    assert md["chimera/partitions_published"] == 5 and "chimera/missing" not in md
