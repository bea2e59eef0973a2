"""Dagster-level data quality: the write audit + blocking checks stop a bad partition (published table
unchanged, matrix not materialized), the real batch reports the ZL 2025-09-03 flip as a warning, the
dashboard renders a valid PNG. Real data: ../shared/data/databento-batch (skips when absent)."""

from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from chimera_assets.defs.features.assets import FEATURE_ASSETS
from chimera_assets.defs.market_data.assets import RAW_ASSETS
from chimera_assets.defs.ops.quality_report import QUALITY_ASSETS, REPORT_KEY
from chimera_assets.defs.reference.assets import REFERENCE_ASSETS
from chimera_assets.defs.training.assets import training_assets
from chimera_assets.lib import io_manager
from chimera_assets.lib.checks.audits import audit_for, make_audit
from chimera_assets.lib.checks.build import build_checks
from chimera_assets.lib.io_manager import WarehouseIOManager, WarehouseResource
from chimera_assets.lib.resources import DatabentoSource, PolicySource
from chimera_assets.schemas import ALL_TABLES, DAILY_ML_MATRIX, OHLCV_1H, SESSION_BARS, training_table
from chimera_assets.warehouse.base import AuditFailed, Slice
from chimera_assets.warehouse.duckdb_backend import DuckDBWarehouse
from chimera_assets_tests.conftest import shared_data
from chimera_assets_tests.frames import frame_hash, rows_for, session_rows

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
SB_KEY = dg.AssetKey(["features", "session_bars"])
MATRIX_KEY = dg.AssetKey(["features", "daily_ml_matrix"])
RAW_1H_KEY = dg.AssetKey(["market_data", "databento_futures_ohlcv_1h"])
FEATURE_KEYS = {a.key for a in FEATURE_ASSETS if a.key.path[1] != "policy_features"}
BAD_DAY = "2025-09-02"


@contextmanager
def _env(**values):
    with pytest.MonkeyPatch.context() as mp:
        for k, v in values.items():
            mp.setenv(k, v)
        yield


@pytest.fixture(autouse=True)
def _no_quality_env(monkeypatch):
    for var in ("CHIMERA_PARTITIONED_CHECKS", "CHIMERA_QUALITY_OUTLIER_K", "CHIMERA_QUALITY_THIN_RATIO",
                "CHIMERA_QUALITY_THIN_WINDOW", "CHIMERA_QUALITY_FRESHNESS_LAG", "CHIMERA_QUALITY_PER_PARTITION_LIMIT",
                "CHIMERA_QUALITY_AS_OF"):
        monkeypatch.delenv(var, raising=False)


def _defs(db: Path, landing: Path, partitioned: bool = False) -> dg.Definitions:
    wr = WarehouseResource(duckdb_path=str(db))
    return dg.Definitions(
        assets=[*RAW_ASSETS, *REFERENCE_ASSETS, *FEATURE_ASSETS, *training_assets(), *QUALITY_ASSETS],
        asset_checks=build_checks(partitioned=partitioned),
        resources={"warehouse": wr, "warehouse_io": WarehouseIOManager(warehouse=wr),
                   "databento": DatabentoSource(landing_dir=str(landing)), "policy": PolicySource()},
    )


def _run(defs, instance, first: str, last: str, selection=None) -> dg.ExecuteInProcessResult:
    job = defs.resolve_implicit_global_asset_job_def()
    if selection is None:
        graph = defs.resolve_asset_graph()
        selection = {k for k in graph.get_all_asset_keys()
                     if isinstance(graph.get(k).partitions_def, dg.MultiPartitionsDefinition)}
        # The consolidated frame needs the date-only policy features of its dates (their own run, as in
        # ``chimera run``): a missing upstream partition fails the run instead of publishing NULLs.
        job.get_subset(asset_selection={dg.AssetKey(["features", "policy_features"])}).execute_in_process(
            instance=instance, run_config=QUIET, tags={"dagster/asset_partition_range_start": first.split("|")[0],
                                                       "dagster/asset_partition_range_end": last.split("|")[0]},
        )
    return job.get_subset(asset_selection=selection).execute_in_process(
        instance=instance, raise_on_error=False, run_config=QUIET,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )


def _stored_evaluations(instance: dg.DagsterInstance, run_id: str) -> list[dg.AssetCheckEvaluation]:
    """Every check evaluation the run stored, including those the write audit logged in a failed step."""
    logs = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    return [e.dagster_event.event_specific_data for e in logs]


def _materialized(result: dg.ExecuteInProcessResult) -> set[dg.AssetKey]:
    return {e.asset_key for e in result.get_asset_materialization_events()}


# --- the real batch through Dagster, once per module (ZL, 2025-08-01 .. 2025-09-12: 31 partitions), with
# partitioned checks (as with CHIMERA_PARTITIONED_CHECKS=1): one evaluation per partition and rule ------------------------
@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    landing = shared_data("databento-batch")
    home = tmp_path_factory.mktemp("quality_real")
    db = home / "warehouse.duckdb"
    instance = dg.DagsterInstance.ephemeral()
    with _env(CHIMERA_HOME=str(home), CHIMERA_QUALITY_AS_OF="2025-09-15T23:00:00+00:00"):
        defs = _defs(db, landing, partitioned=True)
        result = _run(defs, instance, "2025-08-01|ZL", "2025-09-12|ZL")
    assert result.success, [e.step_key for e in result.all_events if e.is_step_failure]
    return {"defs": defs, "instance": instance, "db": db, "result": result, "landing": landing}


def test_real_batch_zl_flip_is_a_warning_and_no_hard_rule_fails(real_run):
    evs = real_run["result"].get_asset_check_evaluations()
    failed = [e for e in evs if not e.passed]
    assert [e for e in failed if e.severity == dg.AssetCheckSeverity.ERROR] == []
    flip = [e for e in failed if e.check_name == "flips_and_thin_sessions"]
    assert [(e.asset_key, e.partition, e.severity) for e in flip] == [
        (SB_KEY, "2025-09-03|ZL", dg.AssetCheckSeverity.WARN)]
    keys = flip[0].metadata["offending_keys"].value
    assert keys[0]["kind"] == "one_day_flip+thin" and keys[0]["volume"] == 33
    assert flip[0].blocking is False
    # per-partition results: one evaluation per partition and rule (31 partitions <= per_partition_limit)
    sb_keys = [e.partition for e in evs if e.asset_key == SB_KEY and e.check_name == "ohlc_consistent"]
    assert len(sb_keys) == 31 and "2025-09-02|ZL" in sb_keys
    passed_ohlc = next(e for e in evs if e.asset_key == SB_KEY and e.check_name == "ohlc_consistent")
    assert passed_ohlc.passed and passed_ohlc.blocking and passed_ohlc.metadata["rows_checked"].value == 1
    fresh = next(e for e in evs if e.check_name == "matrix_freshness")
    assert fresh.passed and fresh.metadata["max_lag_observed"].value == 1
    assert {e.check_name for e in evs} >= {"keys_not_null", "no_duplicate_keys", "ohlc_consistent", "regime_coverage",
                                         "struct_members_present", "no_missing_sessions", "no_outlier_returns",
                                         "column_schema_change"}
    assert all(e.passed for e in evs if e.check_name == "column_schema_change")


def test_dashboard_renders_for_the_real_batch(real_run, isolated_home):
    wr = WarehouseResource(duckdb_path=str(real_run["db"]))
    with _env(CHIMERA_QUALITY_AS_OF="2025-09-15T23:00:00+00:00"):
        result = dg.materialize(QUALITY_ASSETS, resources={"warehouse": wr}, instance=real_run["instance"])
    assert result.success
    meta = result.asset_materializations_for_node(REPORT_KEY.to_python_identifier())[0].metadata
    png = Path(meta["chart"].value)
    assert png.parent == isolated_home / "reports" and png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    img = matplotlib.image.imread(png)
    assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 600
    md = meta["report"].value
    assert "| flips_and_thin_sessions | WARN |" in md and "2025-09-03\\|ZL" in md
    assert "data:image/png;base64," in md
    assert meta["results_failing_error"].value == 0 and meta["results_failing_warn"].value >= 1


def test_column_schema_change_warns_on_a_changed_schema(real_run, monkeypatch):
    real_schema = io_manager.column_schema

    def without_r3(spec):
        schema = real_schema(spec)
        return dg.TableSchema(columns=[c for c in schema.columns if c.name != "R3"])

    monkeypatch.setattr(io_manager, "column_schema", without_r3)
    pivots = dg.AssetKey(["features", "pivots"])
    res = _run(real_run["defs"], real_run["instance"], "2025-09-12|ZL", "2025-09-12|ZL", {pivots})
    assert res.success
    ev = next(e for e in res.get_asset_check_evaluations() if e.check_name == "column_schema_change")
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.WARN
    assert ev.metadata["removed_columns"].value == ["R3"]


# --- the gate: a bad partition is stopped before publishing --------------------------------------------------
def test_high_below_low_is_blocked_table_unchanged_matrix_not_materialized(tmp_path, monkeypatch):
    landing = shared_data("databento-batch")
    db = tmp_path / "wh.duckdb"
    wh = DuckDBWarehouse(db)
    instance = dg.DagsterInstance.ephemeral()
    # default: unpartitioned checks, one evaluation per rule and run
    defs = _defs(db, landing)
    base = _run(defs, instance, "2025-08-27|ZL", "2025-09-05|ZL")
    assert base.success
    flips = [e for e in base.get_asset_check_evaluations() if e.check_name == "flips_and_thin_sessions"]
    assert [(e.partition, e.passed, e.severity) for e in flips] == [(None, False, dg.AssetCheckSeverity.WARN)]
    assert flips[0].metadata["partitions_checked"].value == 8
    assert flips[0].metadata["failed_partitions"].value == ["2025-09-03|ZL"]

    before_sb = wh.read(SESSION_BARS)
    before_m = wh.read(DAILY_ML_MATRIX)
    assert before_sb.height == 7 and before_m.height == 7  # 8 partitions, Labor Day has no session

    import chimera_assets.defs.features.assets as features

    real_build = features.build_session_bars

    def corrupt(*args, **kwargs):
        out = real_build(*args, **kwargs)
        bad = pl.col("trade_date") == pl.lit(BAD_DAY).str.to_date()
        return out.with_columns(pl.when(bad).then(pl.col("low") - 1.0).otherwise(pl.col("high")).alias("high"))

    monkeypatch.setattr(features, "build_session_bars", corrupt)
    res = _run(defs, instance, "2025-09-01|ZL", "2025-09-04|ZL", FEATURE_KEYS)

    assert not res.success
    failures = {e.step_key: e.step_failure_data.error for e in res.all_events if e.is_step_failure}
    assert list(failures) == ["features__session_bars"]
    cause = failures["features__session_bars"].cause  # Dagster wraps IO manager errors
    assert cause.cls_name == AuditFailed.__name__
    assert "ohlc_consistent" in cause.message and "nothing was published" in cause.message
    # the blocking check failed for exactly the bad partition, with the offending key in its metadata
    stored = [e for e in _stored_evaluations(instance, res.run_id) if not e.passed]
    assert [(e.asset_key, e.check_name, e.blocking) for e in stored] == [(SB_KEY, "ohlc_consistent", True)]
    meta = {k: v.value for k, v in stored[0].metadata.items()}
    assert meta["failed_partitions"] == [f"{BAD_DAY}|ZL"] and meta["partitions_checked"] == 3
    assert meta["offending_keys"][0]["partition"] == f"{BAD_DAY}|ZL" and "high<low" in meta["offending_keys"][0]["problems"]
    assert meta["stage"].startswith("write audit") and meta["staged_rows"] == 3 and meta["offending_rows"] == 1
    # the published tables are unchanged and the downstream steps never ran
    assert frame_hash(wh.read(SESSION_BARS)) == frame_hash(before_sb)
    assert frame_hash(wh.read(DAILY_ML_MATRIX), exclude=("ingestion_ts",)) == frame_hash(
        before_m, exclude=("ingestion_ts",))
    assert wh.read(DAILY_ML_MATRIX)["ingestion_ts"].to_list() == before_m["ingestion_ts"].to_list()
    assert not _materialized(res) & FEATURE_KEYS
    ran = {e.step_key for e in res.get_step_success_events()}
    assert not ran & {"features__market_features", "features__consolidated_features", "features__daily_ml_matrix"}


def test_bad_raw_bars_stop_session_bars_and_matrix(tmp_path, monkeypatch):
    """Raw assets call warehouse.merge themselves: with the audit passed through (defs/market_data/assets.py)
    the gate rejects the write; without it the bad rows land and the blocking raw check stops everything
    downstream."""
    landing = shared_data("databento-batch")
    db = tmp_path / "wh.duckdb"
    instance = dg.DagsterInstance.ephemeral()
    import chimera_assets.ingest.execute as market_data  # the raw assets' executor builds the frames

    real_build = market_data.build_raw_frame

    def corrupt(spec, *args, **kwargs):
        frame, loads = real_build(spec, *args, **kwargs)
        if spec.fqn == OHLCV_1H.fqn:
            bad = pl.col("trade_date") == pl.lit(BAD_DAY).str.to_date()
            frame = frame.with_columns(pl.when(bad).then(pl.col("low") - 1.0).otherwise(pl.col("high")).alias("high"))
        return frame, loads

    monkeypatch.setattr(market_data, "build_raw_frame", corrupt)
    # partitioned checks over a range longer than the per-partition limit: a summary + the failing partition
    with _env(CHIMERA_QUALITY_PER_PARTITION_LIMIT="1"):
        res = _run(_defs(db, landing, partitioned=True), instance, "2025-09-01|ZL", "2025-09-03|ZL")
    assert not res.success
    failed = [e for e in _stored_evaluations(instance, res.run_id) if not e.passed]
    raw_fail = [e for e in failed if e.asset_key == RAW_1H_KEY and e.check_name == "ohlc_consistent"]
    assert f"{BAD_DAY}|ZL" in [e.partition for e in raw_fail] and all(e.blocking for e in raw_fail)
    assert all(e.partition in (None, f"{BAD_DAY}|ZL") for e in raw_fail)
    assert "high<low" in raw_fail[0].metadata["offending_keys"].value[0]["problems"]
    assert not _materialized(res) & FEATURE_KEYS  # session bars .. matrix never ran
    wh = DuckDBWarehouse(db)
    assert wh.read(SESSION_BARS).is_empty() and wh.read(DAILY_ML_MATRIX).is_empty()
    published_bad = wh.read(OHLCV_1H, Slice.from_keys([(date.fromisoformat(BAD_DAY), "ZL")])).filter(
        pl.col("high") < pl.col("low"))
    if raw_fail[0].description.startswith("write audit"):  # market_data passes the audit: nothing published
        assert published_bad.is_empty()
    else:  # not wired yet: the rows landed, the blocking check (re-reading them) stopped the run
        assert published_bad.height > 0


def test_audit_outside_dagster_raises_with_metadata():
    bad = rows_for(SESSION_BARS, [{"trade_date": date(2025, 9, 2), "symbol": "ZL", "open": 1.0, "high": 0.5,
                                   "low": 0.8, "close": 0.9, "volume": 3}])
    audit = make_audit(SESSION_BARS)
    with pytest.raises(AuditFailed, match="ohlc_consistent") as info:
        audit(bad)  # no Dagster step in scope: nothing is logged, the write is still refused
    assert info.value.metadata["ohlc_consistent"]["offending_keys"][0]["partition"] == f"{BAD_DAY}|ZL"
    audit(bad.with_columns(pl.lit(1.0).alias("high")))  # a consistent row passes
    # every checked table has an audit, derived from its spec alone; reference and ops tables have none
    assert all(callable(audit_for(s)) for s in (SESSION_BARS, OHLCV_1H, DAILY_ML_MATRIX, training_table("ZL")))
    assert audit_for(ALL_TABLES["reference.policy_events"]) is None


def test_io_manager_gates_a_write_without_any_registration(tmp_path):
    """The IO manager finds a table's audit from its spec alone (no registry to fill or monkeypatch): a
    high<low row is refused, the table keeps its rows and the blocking check of the running job fails."""
    from chimera_assets.lib.checks.table_checks import table_checks

    wr = WarehouseResource(duckdb_path=str(tmp_path / "wh.duckdb"))
    good = rows_for(SESSION_BARS, session_rows([(date(2025, 9, 2), "ZL"), (date(2025, 9, 3), "ZL")]))
    DuckDBWarehouse(tmp_path / "wh.duckdb").merge(SESSION_BARS, good, Slice.whole_table())
    bad = good.with_columns((pl.col("low") - 1.0).alias("high"))

    @dg.asset(key=SB_KEY, io_manager_key="warehouse_io")
    def session_bars() -> pl.DataFrame:
        return bad

    instance = dg.DagsterInstance.ephemeral()
    res = dg.materialize([session_bars, table_checks(SESSION_BARS)], instance=instance, raise_on_error=False,
                         resources={"warehouse": wr, "warehouse_io": WarehouseIOManager(warehouse=wr)})
    assert not res.success
    (failure,) = [e for e in res.all_events if e.is_step_failure]
    assert failure.step_failure_data.error.cause.cls_name == AuditFailed.__name__
    assert frame_hash(DuckDBWarehouse(tmp_path / "wh.duckdb").read(SESSION_BARS)) == frame_hash(good)
    stored = [e for e in _stored_evaluations(instance, res.run_id) if not e.passed]
    assert [(e.asset_key, e.check_name, e.blocking, e.partition) for e in stored] == [
        (SB_KEY, "ohlc_consistent", True, None)]
    assert stored[0].metadata["offending_rows"].value == 2
