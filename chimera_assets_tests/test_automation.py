"""Declarative automation over ticks (``evaluate_automation_conditions``): a new raw partition flows to
session bars, features, the matrix (next tick) and the training tables (the tick after).

History is recorded as materialization events (no data needed: conditions read the instance); the
new raw partition is a real materialization of the 1h asset from a SYNTHETIC demo DBN file.
"""

import warnings
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from chimera_assets.definitions import build_definitions
from chimera_assets.demo.data import write_demo_files
from chimera_assets.lib.asset_keys import (
    CONSOLIDATED,
    DAILY_ML_MATRIX,
    GOLDEN_ZONE,
    MARKET_FEATURES,
    PIVOTS,
    POLICY_FEATURES,
    RAW_1H,
    SESSION_BARS,
)
from chimera_assets.lib.automation.sensor import AUTOMATION_SENSOR_NAME
from chimera_assets.lib.partitions import weekday_dates

CHAIN = [SESSION_BARS, MARKET_FEATURES, PIVOTS, GOLDEN_ZONE, CONSOLIDATED, DAILY_ML_MATRIX]
HOLIDAY = date(2024, 3, 29)  # Good Friday: CME closed, so no partition of that date ever exists
GAP = date(2024, 3, 12)  # a session whose data arrives late
HISTORY = [d for d in weekday_dates(date(2024, 3, 1), date(2024, 3, 28)) if d != GAP]
NEW_DAY = "2024-04-01"
CT = ZoneInfo("America/Chicago")
EVENING = datetime(2024, 4, 1, 18, 0, tzinfo=CT)  # the new day's data arrives after its 16:00 CT close
AFTERNOON = datetime(2024, 4, 1, 14, 0, tzinfo=CT)  # ... or before the policy cutoff


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def defs():
    return build_definitions()


def _report(instance: dg.DagsterInstance, key: dg.AssetKey, partitions) -> None:
    for p in partitions:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=p))


def _history(instance: dg.DagsterInstance, root: str = "ZL", policy_dates=()) -> None:
    """Raw 1h and the whole date x root chain materialized for HISTORY (GAP and HOLIDAY absent)."""
    keys = [f"{d.isoformat()}|{root}" for d in HISTORY]
    for key in [RAW_1H, *CHAIN]:
        _report(instance, key, keys)
    _report(instance, POLICY_FEATURES, [d.isoformat() for d in HISTORY] + list(policy_dates))


def _requested(result) -> dict[str, set]:
    """{asset: requested partition keys} of one tick (unpartitioned assets map to {None})."""
    out = {}
    for r in result.results:
        if not r.true_subset.is_empty:
            keys = r.true_subset.expensively_compute_partition_keys() if r.true_subset.is_partitioned else {None}
            out[r.key.to_user_string()] = set(keys)
    return out


def _only(got: dict[str, set], prefix: str) -> dict[str, set]:
    return {k: v for k, v in got.items() if k.startswith(prefix)}


def _tick(defs, instance, cursor=None, when: datetime = EVENING):
    """One automation tick at ``when`` (plus a minute per earlier tick of the same cursor)."""
    n = cursor.evaluation_id if cursor is not None else 0
    return dg.evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=cursor, evaluation_time=when + timedelta(minutes=n)
    )


def _first_tick(defs, instance, when: datetime = EVENING):
    """The first tick: nothing to do yet (history is not backfilled by automation)."""
    tick = _tick(defs, instance, when=when)
    got = _requested(tick)
    # at most recent past dates without policy features (two weeks), nothing else
    assert set(got) <= {"features/policy_features"}, got
    assert all(d >= "2024-03-15" and d < NEW_DAY for d in got.get("features/policy_features", set())), got
    return tick


def _materialize_raw_1h(defs, instance, landing, partition: str) -> None:
    write_demo_files(landing, ["ZL", "MES"], date(2024, 3, 28), date(2024, 4, 3))
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={RAW_1H})
    result = job.execute_in_process(
        partition_key=partition, instance=instance,
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
    )
    assert result.success


def test_every_downstream_asset_is_automated_and_the_sensor_runs_by_default(defs):
    graph = defs.resolve_asset_graph()
    automated = {*CHAIN, POLICY_FEATURES, dg.AssetKey(["ops", "databento_load_state"])}
    automated |= {k for k in graph.get_all_asset_keys() if k.path[0] == "training" and k.path[-1].endswith("_daily")}
    assert dg.AssetKey(["training", "zl_training_daily"]) in automated
    for key in graph.get_all_asset_keys():
        cond = graph.get(key).automation_condition
        if key in automated:
            assert cond is not None, f"{key.to_user_string()} has no automation condition"
        elif key.path[0] in ("market_data", "reference") or key.path[-1] in ("regime_calendar", "regime_weights"):
            assert cond is None, f"{key.to_user_string()} is driven by sensors/users, not automation"
    # the lookback each feature asset declares reaches its condition
    assert "within_lookback(300)" in str(graph.get(MARKET_FEATURES).automation_condition.get_snapshot())
    sensor = defs.get_repository_def().get_sensor_def(AUTOMATION_SENSOR_NAME)
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    # No implicit (STOPPED) default automation sensor is added next to ours.
    names = [s.name for s in defs.get_repository_def().sensor_defs]
    assert "default_automation_condition_sensor" not in names


def test_new_raw_partition_flows_to_the_matrix_next_tick_then_training(defs, tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(landing))
    instance = dg.DagsterInstance.ephemeral()
    # policy features of the new day exist already (computed at 16:05 CT, before the evening data)
    _history(instance, policy_dates=[NEW_DAY])

    tick1 = _first_tick(defs, instance)

    _materialize_raw_1h(defs, instance, landing, f"{NEW_DAY}|ZL")
    tick2 = _tick(defs, instance, tick1.cursor)
    want = {k.to_user_string(): {f"{NEW_DAY}|ZL"} for k in CHAIN}
    got = _requested(tick2)
    assert _only(got, "features/") == want  # exactly (new day, ZL) for every asset up to daily_ml_matrix
    assert not _only(got, "training/")
    assert got.get("ops/databento_load_state") == {None}  # the ledger summary refreshes after the load

    # The run of tick 2 lands (events in graph order, as the run would write them).
    for key in CHAIN:
        _report(instance, key, [f"{NEW_DAY}|ZL"])
    tick3 = _tick(defs, instance, tick2.cursor)
    got = _requested(tick3)
    assert set(got) == set(_only(got, "training/")), got
    assert "training/zl_training_daily" in got and "training/mes_training_daily" in got

    _report(instance, dg.AssetKey(["training", "zl_training_daily"]), [None])
    tick4 = _tick(defs, instance, tick3.cursor)
    assert "features/session_bars" not in _requested(tick4)
    assert not {k for k in _requested(tick4) if k.startswith("features/")}


def test_nothing_is_requested_twice_while_waiting(defs, tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(landing))
    instance = dg.DagsterInstance.ephemeral()
    _history(instance, policy_dates=[NEW_DAY])
    tick1 = _first_tick(defs, instance)
    _materialize_raw_1h(defs, instance, landing, f"{NEW_DAY}|ZL")
    tick2 = _tick(defs, instance, tick1.cursor)
    assert len(_only(_requested(tick2), "features/")) == len(CHAIN)
    tick3 = _tick(defs, instance, tick2.cursor)  # the requested run has not finished yet
    assert tick3.total_requested == 0, _requested(tick3)


def test_late_partition_recomputes_later_sessions_only_where_sessions_exist(defs):
    instance = dg.DagsterInstance.ephemeral()
    _history(instance, policy_dates=[GAP.isoformat()])
    tick1 = _first_tick(defs, instance)
    _report(instance, RAW_1H, [f"{GAP.isoformat()}|ZL"])
    tick2 = _tick(defs, instance, tick1.cursor)
    got = _only(_requested(tick2), "features/")
    later = {f"{d.isoformat()}|ZL" for d in HISTORY if d >= GAP}
    # session bars (35-session lookback) and every feature reading them: the gap day plus the later
    # existing sessions whose rolling windows include it; never the holiday, never earlier dates.
    for key in CHAIN:
        assert got[key.to_user_string()] == {f"{GAP.isoformat()}|ZL"} | later, key
        assert f"{HOLIDAY.isoformat()}|ZL" not in got[key.to_user_string()]
    assert "features/policy_features" not in got


def test_missing_policy_date_is_computed_first_then_matrix(defs, tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(landing))
    instance = dg.DagsterInstance.ephemeral()
    _history(instance)  # no policy features for the new day yet: its data arrives before the cutoff
    tick1 = _first_tick(defs, instance, when=AFTERNOON)
    _materialize_raw_1h(defs, instance, landing, f"{NEW_DAY}|ZL")
    tick2 = _tick(defs, instance, tick1.cursor, when=AFTERNOON)
    got = _only(_requested(tick2), "features/")
    assert got.pop("features/policy_features") == {NEW_DAY}
    # consolidated/matrix wait for the policy partition (it cannot share their run)
    assert got == {k.to_user_string(): {f"{NEW_DAY}|ZL"} for k in CHAIN[:4]}

    _report(instance, POLICY_FEATURES, [NEW_DAY])
    for key in CHAIN[:4]:
        _report(instance, key, [f"{NEW_DAY}|ZL"])
    tick3 = _tick(defs, instance, tick2.cursor, when=AFTERNOON)
    assert _only(_requested(tick3), "features/") == {k.to_user_string(): {f"{NEW_DAY}|ZL"} for k in (CONSOLIDATED, DAILY_ML_MATRIX)}


@pytest.mark.parametrize("raw_last", [True, False])
def test_update_order_within_one_tick_decides_whether_to_rerun(defs, raw_last):
    """Both a parent and the asset updated since the last tick: re-run only if the parent came later."""
    instance = dg.DagsterInstance.ephemeral()
    _history(instance)
    tick1 = _first_tick(defs, instance)
    day = "2024-03-28|ZL"
    order = [SESSION_BARS, RAW_1H] if raw_last else [RAW_1H, SESSION_BARS]
    for key in order:
        _report(instance, key, [day])
    got = _requested(_tick(defs, instance, tick1.cursor))
    if raw_last:
        assert got["features/session_bars"] == {day}
    else:
        assert "features/session_bars" not in got
        assert got["features/market_features"] == {day}  # ... its own children still follow it


# --------------------------------------------------------------------------------------------------
# The whole-graph job (the UI's "Materialize all" path) and automation
# --------------------------------------------------------------------------------------------------


def _whole_graph_config(start: str, end: str, roots: str, **extra) -> dict:
    return {"ops": {"run_whole_graph": {"config": {"start": start, "end": end, "roots": roots, **extra}}},
            "loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def test_automation_waits_while_a_whole_graph_run_is_active(defs, tmp_path, monkeypatch):
    """A run of chimera_whole_graph is about to produce the range: automation requests nothing until
    it ends (between its stages no asset run is in progress, so in_progress alone would not hold)."""
    from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

    from chimera_assets.lib.job_names import WHOLE_GRAPH_JOB

    landing = tmp_path / "landing"
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(landing))
    instance = dg.DagsterInstance.ephemeral()
    _history(instance, policy_dates=[NEW_DAY])
    tick1 = _first_tick(defs, instance)
    # Launched from the UI, not started yet (NOT_STARTED/QUEUED: the run queue), then STARTED.
    run = instance.add_run(DagsterRun(job_name=WHOLE_GRAPH_JOB, run_id="whole-graph-run",
                                      status=DagsterRunStatus.NOT_STARTED))
    _materialize_raw_1h(defs, instance, landing, f"{NEW_DAY}|ZL")
    tick2 = _tick(defs, instance, tick1.cursor)
    assert tick2.total_requested == 0, _requested(tick2)
    instance.report_run_failed(run)  # the whole-graph run ended without producing the new day
    tick3 = _tick(defs, instance, tick2.cursor)
    assert _only(_requested(tick3), "features/") == {k.to_user_string(): {f"{NEW_DAY}|ZL"} for k in CHAIN}


def test_automation_waits_for_a_started_whole_graph_run_even_on_its_first_tick(defs):
    """A fresh instance's first tick requests recent missing policy dates, unless the whole-graph
    job is running (it computes them in order)."""
    from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

    from chimera_assets.lib.job_names import WHOLE_GRAPH_JOB

    instance = dg.DagsterInstance.ephemeral()
    assert _requested(_tick(defs, instance)).get("features/policy_features")  # without the job: requested
    instance = dg.DagsterInstance.ephemeral()
    instance.add_run(DagsterRun(job_name=WHOLE_GRAPH_JOB, run_id="r", status=DagsterRunStatus.STARTED))
    assert _tick(defs, instance).total_requested == 0


@pytest.mark.slow
def test_whole_graph_job_runs_like_the_cli_and_leaves_nothing_to_rerun(defs, tmp_path, monkeypatch):
    from chimera_assets.definitions import build_definitions
    from chimera_assets.defs.ops.whole_graph import whole_graph_job
    from chimera_assets.lib.job_names import PARENT_RUN_TAG

    landing = tmp_path / "landing"
    write_demo_files(landing, ["ZL"], date(2024, 2, 26), date(2024, 3, 9))
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(landing))
    instance = dg.DagsterInstance.ephemeral()
    when = datetime(2024, 3, 8, 18, 0, tzinfo=CT)
    tick1 = _tick(defs, instance, when=when)
    result = whole_graph_job(build_definitions).execute_in_process(
        run_config=_whole_graph_config("2024-03-04", "2024-03-08", "ZL"), instance=instance
    )
    assert result.success
    children = instance.get_runs(filters=dg.RunsFilter(tags={PARENT_RUN_TAG: result.run_id}))
    assert 4 <= len(children) <= 6  # reference, policy, the date x root range, training, report
    week = {f"2024-03-0{d}|ZL" for d in range(4, 9)}
    assert week <= set(instance.get_materialized_partitions(DAILY_ML_MATRIX))
    assert instance.get_latest_materialization_event(dg.AssetKey(["training", "zl_training_daily"])) is not None
    # Policy features were computed before the matrix, training after it: automation has nothing to redo
    # (the training tables of OTHER roots do rebuild: they depend on the whole matrix asset).
    cursor = tick1.cursor
    for _ in range(2):
        tick = _tick(defs, instance, cursor, when=when)
        got = _requested(tick)
        assert not _only(got, "features/") and "training/zl_training_daily" not in got, got
        cursor = tick.cursor


def test_whole_graph_job_rejects_bad_config_naming_the_input(tmp_path, monkeypatch):
    from chimera_assets.defs.ops.whole_graph import whole_graph_job

    instance = dg.DagsterInstance.ephemeral()
    for config, needle in (
        (_whole_graph_config("2024-03-04", "2024-03-08", "ZL,XYZ"), "XYZ"),
        (_whole_graph_config("2024-03-08", "2024-03-04", "ZL"), "after"),
        (_whole_graph_config("2024-3-x", "2024-03-04", "ZL"), "2024-3-x"),
        (_whole_graph_config("2024-03-04", "2024-03-08", "ZL", source="ftp"), "ftp"),
    ):
        result = whole_graph_job(build_definitions).execute_in_process(run_config=config, instance=instance, raise_on_error=False)
        assert not result.success
        failure = next(ev for ev in result.all_events if ev.is_step_failure)
        assert needle in failure.step_failure_data.error.message
