"""Focused tests of each custom automation condition (``lib/automation/conditions.py``) on a tiny graph
of its own: the behaviour no public ``AutomationCondition`` composition reproduces, one piece at a time.

(The whole chimera graph over ticks is ``test_automation.py``.)"""

import warnings
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from chimera_assets.defs.ops.whole_graph import WHOLE_GRAPH_JOB
from chimera_assets.lib.automation.conditions import (
    UNFINISHED_RUN_STATUSES,
    DepsUpdated,
    WholeGraphRunActive,
    WithinLookback,
    next_trade_dates,
    since_last_handled,
)
from chimera_assets.lib.partitions import DATE_DIM, SYMBOL_DIM, trade_date_partitions

AC = dg.AutomationCondition
CT = ZoneInfo("America/Chicago")
MULTI = dg.MultiPartitionsDefinition(
    {DATE_DIM: trade_date_partitions(), SYMBOL_DIM: dg.StaticPartitionsDefinition(["ES", "ZL"])}
)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _asset(name: str, deps=(), cond=None, pdef=MULTI) -> dg.AssetsDefinition:
    @dg.asset(name=name, deps=list(deps), partitions_def=pdef, automation_condition=cond)
    def _a():
        return None

    return _a


def _report(instance, name: str, partitions) -> None:
    for p in partitions:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=name, partition=p))


def _true(result, name: str) -> set:
    for r in result.results:
        if r.key == dg.AssetKey(name):
            sub = r.true_subset
            if not sub.is_partitioned:
                return set() if sub.is_empty else {None}
            return set(sub.expensively_compute_partition_keys())
    raise KeyError(name)


def _ticks(defs, instance, when: datetime, between) -> dg.EvaluateAutomationConditionsResult:
    """A first tick, ``between(instance)``, then the second tick (a minute later), returned."""
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=when)
    between(instance)
    return dg.evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=first.cursor, evaluation_time=when + timedelta(minutes=1)
    )


def test_next_trade_dates_skips_weekends_and_stops_at_the_last_partition():
    d = datetime(2024, 3, 7).date()  # a Thursday
    assert [x.isoformat() for x in next_trade_dates(d, 3, d + timedelta(days=30))] == [
        "2024-03-08", "2024-03-11", "2024-03-12"]
    assert [x.isoformat() for x in next_trade_dates(d, 300, datetime(2024, 3, 11).date())] == [
        "2024-03-08", "2024-03-11"]
    assert len(next_trade_dates(d, 300, d + timedelta(days=1000))) == 300
    assert next_trade_dates(d, 0, d + timedelta(days=30)) == []


def test_within_lookback_fans_an_update_out_to_the_next_trade_dates_of_the_same_root():
    defs = dg.Definitions(assets=[
        _asset("parent"),
        _asset("child", ["parent"], WithinLookback(AC.any_deps_match(AC.newly_updated()), 3)),
    ])
    # Friday's update reaches Mon and Tue (3 trade dates would reach Wed: not a partition yet on Tue)
    got = _ticks(defs, dg.DagsterInstance.ephemeral(), datetime(2024, 3, 12, 18, 0, tzinfo=CT),
                 lambda i: _report(i, "parent", ["2024-03-08|ZL"]))
    assert _true(got, "child") == {"2024-03-08|ZL", "2024-03-11|ZL", "2024-03-12|ZL"}
    got = _ticks(defs, dg.DagsterInstance.ephemeral(), datetime(2024, 3, 20, 18, 0, tzinfo=CT),
                 lambda i: _report(i, "parent", ["2024-03-08|ES"]))
    assert _true(got, "child") == {"2024-03-08|ES", "2024-03-11|ES", "2024-03-12|ES", "2024-03-13|ES"}


def test_deps_updated_counts_parents_updated_or_requested_in_the_same_tick_and_honours_ignore():
    defs = dg.Definitions(assets=[
        _asset("a"),
        _asset("other"),
        _asset("b", ["a"], AC.any_deps_match(AC.newly_updated())),
        _asset("c", ["b", "other"], DepsUpdated(ignore=[dg.AssetKey("other")])),
    ])
    when = datetime(2024, 3, 12, 18, 0, tzinfo=CT)
    got = _ticks(defs, dg.DagsterInstance.ephemeral(), when, lambda i: _report(i, "a", ["2024-03-11|ZL"]))
    assert _true(got, "b") == {"2024-03-11|ZL"}
    assert _true(got, "c") == {"2024-03-11|ZL"}  # requested in this tick with b: one run
    got = _ticks(defs, dg.DagsterInstance.ephemeral(), when, lambda i: _report(i, "other", ["2024-03-11|ZL"]))
    assert _true(got, "c") == set()  # an ignored parent does not count
    got = _ticks(defs, dg.DagsterInstance.ephemeral(), when, lambda i: _report(i, "b", ["2024-03-11|ZL"]))
    assert _true(got, "c") == {"2024-03-11|ZL"}


def test_deps_updated_reads_keys_that_are_not_parents_through_the_date_dimension():
    daily = trade_date_partitions()
    defs = dg.Definitions(assets=[
        _asset("policy", pdef=daily),
        _asset("rows", cond=DepsUpdated(operand=AC.newly_updated(), keys=[dg.AssetKey("policy")], label="x")),
    ])
    got = _ticks(defs, dg.DagsterInstance.ephemeral(), datetime(2024, 3, 12, 18, 0, tzinfo=CT),
                 lambda i: _report(i, "policy", ["2024-03-11"]))
    assert _true(got, "rows") == {"2024-03-11|ES", "2024-03-11|ZL"}


@pytest.mark.parametrize("parent_last", [True, False])
def test_handled_keeps_update_times_so_a_parent_update_after_the_child_still_triggers(parent_last):
    """Parent and child both updated since the last tick: the child re-runs only if the parent came later.

    Dagster's own ``since_last_handled()`` cannot tell (its ``|`` reset drops the update times): the
    reset wins both ways, which is why ``Handled`` exists."""
    defs = dg.Definitions(assets=[
        _asset("parent"),
        _asset("child", ["parent"], since_last_handled(AC.any_deps_match(AC.newly_updated()))),
        _asset("public", ["parent"], AC.any_deps_match(AC.newly_updated()).since_last_handled()),
    ])
    day = "2024-03-11|ZL"
    order = ["child", "public", "parent"] if parent_last else ["parent", "child", "public"]
    got = _ticks(defs, dg.DagsterInstance.ephemeral(), datetime(2024, 3, 12, 18, 0, tzinfo=CT),
                 lambda i: [_report(i, name, [day]) for name in order])
    assert _true(got, "child") == ({day} if parent_last else set())
    assert _true(got, "public") == set()


@pytest.mark.parametrize("status", list(dg.DagsterRunStatus))
def test_whole_graph_run_active_holds_for_every_unfinished_status_only(status):
    # the explicit list is the statuses Dagster itself counts as not finished (checked on upgrades)
    from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES

    assert (status in UNFINISHED_RUN_STATUSES) == (status in NOT_FINISHED_STATUSES), status
    if status == dg.DagsterRunStatus.QUEUED:
        return  # Dagster refuses a QUEUED run record without a code-location origin
    defs = dg.Definitions(assets=[_asset("x", cond=WholeGraphRunActive(), pdef=None)])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_run(dg.DagsterRun(job_name="another_job", run_id="other", status=dg.DagsterRunStatus.STARTED))
    when = datetime(2024, 3, 12, 18, 0, tzinfo=CT)
    assert dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=when).total_requested == 0
    instance.add_run(dg.DagsterRun(job_name=WHOLE_GRAPH_JOB, run_id="whole", status=status))
    requested = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=when).total_requested
    assert requested == (1 if status in NOT_FINISHED_STATUSES else 0), status
