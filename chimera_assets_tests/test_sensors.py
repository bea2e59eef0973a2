"""The landing-directory sensor, the Databento availability sensor and the daily safety net, each
evaluated with a built context (``build_sensor_context`` / ``build_schedule_context``).

Every DBN file here is SYNTHETIC demo data (``chimera_assets.demo.data``).
"""

import shutil
import warnings
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from chimera_assets.definitions import build_definitions
from chimera_assets.defs.market_data.landing_sensor import LANDING_SENSOR_NAME
from chimera_assets.defs.market_data.run_requests import (
    POLICY_JOB_NAME,
    RANGE_END,
    RANGE_START,
    RAW_JOB_NAME,
    raw_key,
)
from chimera_assets.defs.market_data.sensors import API_SENSOR_NAME, SAFETY_NET_NAME
from chimera_assets.demo.data import demo_dbn_bytes, write_demo_files
from chimera_assets.ingest import ledger
from chimera_assets.lib.asset_keys import DAILY_ML_MATRIX, SESSION_BARS
from chimera_assets.lib.automation.sensor import AUTOMATION_SENSOR_NAME
from chimera_assets.lib.io_manager import WarehouseResource
from chimera_assets.lib.partitions import date_symbol_partitions, weekday_dates
from chimera_assets.lib.resources import DatabentoSource
from chimera_assets_tests.dagster_helpers import run_range
from chimera_assets_tests.fake_databento_gateway import FakeDatabentoGateway

H1 = raw_key("ohlcv-1h")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def repo():
    return build_definitions().get_repository_def()


@pytest.fixture
def landing(tmp_path):
    path = tmp_path / "landing"
    path.mkdir()
    return path


class Ticker:
    """Evaluates one sensor tick after another, carrying the cursor like the daemon does."""

    def __init__(self, sensor, resources):
        self.sensor = sensor
        self.resources = resources
        self.cursor = None
        self.instance = dg.DagsterInstance.ephemeral()

    def tick(self):
        ctx = dg.build_sensor_context(instance=self.instance, cursor=self.cursor, resources=self.resources)
        result = self.sensor(ctx)
        if isinstance(result, dg.SensorResult):
            self.cursor = result.cursor if result.cursor is not None else self.cursor
            return list(result.run_requests or []), result.skip_reason
        if isinstance(result, dg.SkipReason):
            return [], result
        return list(result or []), None


def requested_partitions(requests) -> set[tuple[str, str]]:
    """{(asset, partition key)} the raw (date x root) run requests ask for (ranges expanded)."""
    pdef = date_symbol_partitions()
    out = set()
    for rr in requests:
        if rr.job_name == POLICY_JOB_NAME:
            continue
        if rr.partition_key:
            keys = [rr.partition_key]
        else:
            keys = pdef.get_partition_keys_in_range(dg.PartitionKeyRange(rr.tags[RANGE_START], rr.tags[RANGE_END]))
        out |= {(k.to_user_string(), str(p)) for k in rr.asset_selection for p in keys}
    return out


def policy_dates(requests) -> set[str]:
    """Trade dates the policy-features run requests ask for (ranges expanded)."""
    out = set()
    for rr in requests:
        if rr.job_name != POLICY_JOB_NAME:
            continue
        if rr.partition_key:
            out.add(rr.partition_key)
        else:
            lo, hi = date.fromisoformat(rr.tags[RANGE_START]), date.fromisoformat(rr.tags[RANGE_END])
            out |= {d.isoformat() for d in weekday_dates(lo, hi)}
    return out


def expected(asset: dg.AssetKey, dates, roots) -> set[tuple[str, str]]:
    return {(asset.to_user_string(), f"{d.isoformat()}|{r}") for d in dates for r in roots}


@pytest.fixture
def landing_ticker(repo, landing):
    return Ticker(
        repo.get_sensor_def(LANDING_SENSOR_NAME),
        {"databento": DatabentoSource(landing_dir=str(landing)), "warehouse": WarehouseResource()},
    )


# A file over UTC days 2024-03-01 .. 2024-03-08 holds records of trade dates Mar 1 (its first bars,
# from 00:00 UTC, are Mar 1's evening session; the Feb 29 evening part is not in it) to Mar 8. Coverage
# comes from the records, not the header period: the Friday evening has no session, so Mon Mar 11 is not
# covered. The sensor requests exactly those: 6 dates x 2 roots of ohlcv-1h.
FILE_DATES = weekday_dates(date(2024, 3, 1), date(2024, 3, 8))
COMPLETE_DATES = weekday_dates(date(2024, 3, 4), date(2024, 3, 8))


def _write_week(landing):
    return write_demo_files(landing, ["ZL", "MES"], date(2024, 3, 1), date(2024, 3, 9))[0]


def test_new_file_requests_exactly_its_partitions_once(landing_ticker, landing):
    requests, skip = landing_ticker.tick()
    assert requests == [] and "no new complete DBN files" in skip.skip_message  # empty directory
    path = _write_week(landing)
    requests, skip = landing_ticker.tick()  # first sight: completeness not proven yet
    assert requests == [] and "not complete yet" in skip.skip_message and path.name in skip.skip_message
    requests, _ = landing_ticker.tick()
    assert requested_partitions(requests) == expected(H1, FILE_DATES, ["ZL", "MES"])
    raw = [rr for rr in requests if rr.job_name == RAW_JOB_NAME]
    assert len(raw) == 1  # one range run: 6 dates x 2 neighbouring roots
    # ... and, beside it, the policy features of those trade dates (none exist yet): one range run
    assert policy_dates(requests) == {d.isoformat() for d in FILE_DATES}
    assert len(requests) == 2
    rr = raw[0]
    assert rr.asset_selection == [H1] and rr.tags[RANGE_START] == "2024-03-01|ZL"
    assert rr.tags[RANGE_END] == "2024-03-08|MES" and rr.run_key
    assert rr.tags["chimera/files"] == path.name
    # the same file on the next ticks: nothing
    for _ in range(2):
        requests, skip = landing_ticker.tick()
        assert requests == [] and skip is not None


def test_policy_features_already_present_are_not_requested(landing_ticker, landing):
    for d in FILE_DATES[:-1]:
        landing_ticker.instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=dg.AssetKey(["features", "policy_features"]), partition=d.isoformat())
        )
    landing_ticker.tick()
    _write_week(landing)
    landing_ticker.tick()
    requests, _ = landing_ticker.tick()
    assert requested_partitions(requests) == expected(H1, FILE_DATES, ["ZL", "MES"])
    assert policy_dates(requests) == {FILE_DATES[-1].isoformat()}


def test_growing_file_is_requested_only_once_stable(landing_ticker, landing):
    data = demo_dbn_bytes(["ZL.v.0"], date(2024, 3, 1), date(2024, 3, 9), "ohlcv-1h")
    path = landing / "glbx-mdp3-20240301-20240308.ohlcv-1h.dbn.zst"
    landing_ticker.tick()
    cuts = [len(data) // 3, 2 * len(data) // 3, len(data)]
    written = 0
    for cut in cuts:  # an in-place download: each tick sees a bigger file
        with open(path, "ab") as fh:
            fh.write(data[written:cut])
        written = cut
        requests, skip = landing_ticker.tick()
        assert requests == [], f"requested a file still being written ({cut} of {len(data)} bytes)"
        assert "not complete yet" in skip.skip_message
    requests, _ = landing_ticker.tick()  # unchanged since the previous tick: complete
    assert requested_partitions(requests) == expected(H1, FILE_DATES, ["ZL"])
    assert landing_ticker.tick()[0] == []


def test_file_renamed_into_place_is_registered_at_once(landing_ticker, landing):
    data = demo_dbn_bytes(["MES.v.0"], date(2024, 3, 1), date(2024, 3, 9), "ohlcv-1h")
    final = landing / "glbx-mdp3-mes-20240301-20240308.ohlcv-1h.dbn.zst"
    partial = landing / f".{final.name}.partial"
    partial.write_bytes(data[: len(data) // 2])
    assert landing_ticker.tick()[0] == []  # hidden partial download: never listed
    with open(partial, "ab") as fh:
        fh.write(data[len(data) // 2:])
    partial.rename(final)
    requests, _ = landing_ticker.tick()
    assert requested_partitions(requests) == expected(H1, FILE_DATES, ["MES"])


def test_already_loaded_content_is_recorded_skipped_unchanged_and_not_requested(
    landing_ticker, landing, tmp_path, monkeypatch
):
    src = _write_week(tmp_path / "elsewhere")
    with monkeypatch.context() as mp:  # loaded for real, from another directory, for every date and root
        mp.setenv("CHIMERA_LANDING_DIR", str(src.parent))
        assert run_range([H1], "2024-03-01", "2024-03-11", "ZL", "MES").success
    wh = WarehouseResource().get()
    copy = landing / "copy-of-the-same-file.dbn.zst"
    shutil.copy2(src, copy)
    landing_ticker.tick()
    requests, skip = landing_ticker.tick()
    assert requests == [] and "skipped_unchanged" in skip.skip_message
    led = ledger.read_ledger(wh)
    rows = led.filter(led["status"] == "skipped_unchanged")
    assert rows.height == 1 and rows["file_path"][0] == str(copy)
    assert rows["content_sha256"][0] == ledger.file_sha256(copy)
    landing_ticker.tick()
    assert ledger.read_ledger(wh).filter(led["status"] == "skipped_unchanged").height == 1  # recorded once


def test_same_content_under_another_name_or_touched_is_not_requested_again(landing_ticker, landing):
    path = _write_week(landing)
    landing_ticker.tick()
    assert landing_ticker.tick()[0]
    shutil.copy(path, landing / "duplicate.dbn.zst")
    path.touch()
    for _ in range(3):
        assert landing_ticker.tick()[0] == []


def test_unreadable_or_foreign_files_are_skipped_without_error(landing_ticker, landing):
    (landing / "garbage.dbn").write_bytes(b"this is not DBN")
    (landing / "notes.txt").write_text("ignored: not a DBN name")
    landing_ticker.tick()
    requests, skip = landing_ticker.tick()
    assert requests == [] and "skipped" in skip.skip_message
    # a good file next to them is still requested
    _write_week(landing)
    landing_ticker.tick()
    assert landing_ticker.tick()[0]


def test_monthly_files_request_the_boundary_date_again_when_its_neighbour_lands(landing_ticker, landing):
    # Jan then Feb 2024 monthly files: trade date Feb 1 (its evening session is Jan 31 21:00 UTC)
    # is partly in the January file and complete only with the February one: requested with each.
    write_demo_files(landing, ["ZL"], date(2024, 1, 1), date(2024, 2, 1))
    landing_ticker.tick()
    jan = {k for _, k in requested_partitions(landing_ticker.tick()[0])}
    write_demo_files(landing, ["ZL"], date(2024, 2, 1), date(2024, 3, 1))
    landing_ticker.tick()
    feb = {k for _, k in requested_partitions(landing_ticker.tick()[0])}
    assert jan == {f"{d.isoformat()}|ZL" for d in weekday_dates(date(2024, 1, 1), date(2024, 2, 1))}
    assert feb == {f"{d.isoformat()}|ZL" for d in weekday_dates(date(2024, 2, 1), date(2024, 3, 1))}
    assert jan & feb == {"2024-02-01|ZL"}
    assert landing_ticker.tick()[0] == []


# --------------------------------------------------------------------------------------------------
# Databento availability sensor
# --------------------------------------------------------------------------------------------------


def test_api_sensor_without_key_skips_with_the_reason(repo, monkeypatch):
    monkeypatch.delenv("DATABENTO_API_KEY", raising=False)
    t = Ticker(repo.get_sensor_def(API_SENSOR_NAME), {"databento": DatabentoSource()})
    requests, skip = t.tick()
    assert requests == [] and "DATABENTO_API_KEY is not set" in skip.skip_message


def test_api_sensor_uses_the_key_of_its_resource(repo, monkeypatch):
    """The key may come from the resource's ``api_key`` EnvVar field alone (the code location sets it)."""
    monkeypatch.delenv("DATABENTO_API_KEY", raising=False)
    with FakeDatabentoGateway(dataset_end=datetime(2025, 12, 16, tzinfo=UTC)) as gw:
        monkeypatch.setenv("CHIMERA_TEST_DATABENTO_KEY", gw.key)
        monkeypatch.setenv("CHIMERA_API_ROOTS", "ZL")
        source = DatabentoSource(api_gateway=gw.url, api_key=dg.EnvVar("CHIMERA_TEST_DATABENTO_KEY"))
        requests, _ = Ticker(repo.get_sensor_def(API_SENSOR_NAME), {"databento": source}).tick()
        assert requests and all(r.authorized for r in gw.requests_to("metadata.get_dataset_range"))


def test_api_sensor_requests_only_newly_available_dates(repo, monkeypatch):
    with FakeDatabentoGateway(dataset_end=datetime(2025, 12, 16, tzinfo=UTC)) as gw:
        monkeypatch.setenv("DATABENTO_API_KEY", gw.key)
        monkeypatch.setenv("CHIMERA_API_ROOTS", "ZL,MES")
        t = Ticker(repo.get_sensor_def(API_SENSOR_NAME), {"databento": DatabentoSource(api_gateway=gw.url)})
        first, _ = t.tick()
        # first tick: only the newest complete trade date of each schema (no history backfill);
        # statistics of D need D+1 (open interest) so they lag: Fri 12-12 when the data ends Tue 12-16.
        got = requested_partitions(first)
        roots = ["ZL", "MES"]
        assert got == (
            expected(raw_key("ohlcv-1h"), [date(2025, 12, 15)], roots)
            | expected(raw_key("ohlcv-1d"), [date(2025, 12, 15)], roots)
            | expected(raw_key("definition"), [date(2025, 12, 15)], roots)
            | expected(raw_key("statistics"), [date(2025, 12, 12)], roots)
        )
        raw = [rr for rr in first if rr.job_name == RAW_JOB_NAME]
        assert raw and all(rr.run_config["resources"]["databento"]["config"]["mode"] == "api" for rr in raw)
        assert policy_dates(first) == {"2025-12-12", "2025-12-15"}  # policy features of the new dates
        assert gw.requests_to("metadata.get_dataset_range") and all(
            r.authorized for r in gw.requests_to("metadata.get_dataset_range")
        )
        again, skip = t.tick()
        assert again == [] and "no newly available" in skip.skip_message
        gw.dataset_end = datetime(2025, 12, 18, tzinfo=UTC)  # two more days published
        new, _ = t.tick()
        assert requested_partitions(new) == (
            expected(raw_key("ohlcv-1h"), [date(2025, 12, 16), date(2025, 12, 17)], roots)
            | expected(raw_key("ohlcv-1d"), [date(2025, 12, 16), date(2025, 12, 17)], roots)
            | expected(raw_key("definition"), [date(2025, 12, 16), date(2025, 12, 17)], roots)
            | expected(raw_key("statistics"), [date(2025, 12, 15), date(2025, 12, 16)], roots)
        )
        assert not {rr.run_key for rr in new} & {rr.run_key for rr in first}


def test_api_sensor_with_a_rejected_key_fails_the_tick_without_showing_it(repo, monkeypatch):
    from chimera_assets.ingest.databento_api import DatabentoAuthError

    with FakeDatabentoGateway() as gw:
        bad = "db-WRONGKEY-0000000000000000"
        monkeypatch.setenv("DATABENTO_API_KEY", bad)
        t = Ticker(repo.get_sensor_def(API_SENSOR_NAME), {"databento": DatabentoSource(api_gateway=gw.url)})
        with pytest.raises(DatabentoAuthError) as err:
            t.tick()
        assert "DATABENTO_API_KEY" in str(err.value) and bad not in str(err.value)
        assert t.cursor is None  # nothing recorded: the next tick asks again


# --------------------------------------------------------------------------------------------------
# Daily safety net and wiring
# --------------------------------------------------------------------------------------------------


def test_safety_net_requests_missing_raw_and_sessions_then_skips(repo, landing, tmp_path):
    _write_week(landing)
    schedule = repo.get_schedule_def(SAFETY_NET_NAME)
    when = datetime(2024, 3, 8, 18, 30, tzinfo=ZoneInfo("America/Chicago"))
    resources = {"databento": DatabentoSource(landing_dir=str(landing))}
    # a persistent instance (schedule contexts need an instance ref; instance_for_test's temporary
    # home would be deleted under Dagster's cached definitions-load context of later tests)
    (tmp_path / "dagster_home").mkdir()
    with dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster_home")) as instance:
        # contexts are entered/exited explicitly: exiting them out of order (at garbage collection)
        # would leave Dagster's defs-state storage context variable pointing at a closed instance
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=when, resources=resources) as ctx:
            requests = schedule.evaluate_tick(ctx).run_requests
        got = requested_partitions(requests)
        # the last 5 trade dates up to the schedule's date, for the roots the landing files cover
        for key in (H1, SESSION_BARS, DAILY_ML_MATRIX):
            assert expected(key, COMPLETE_DATES, ["ZL", "MES"]) == {x for x in got if x[0] == key.to_user_string()}
        for asset, pk in got:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(asset_key=dg.AssetKey(asset.split("/")), partition=pk)
            )
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=when, resources=resources) as ctx:
            data = schedule.evaluate_tick(ctx)
        assert not data.run_requests and "loaded and materialized" in data.skip_message


def test_sensors_and_schedule_are_wired_and_running_by_default(repo):
    for name in (LANDING_SENSOR_NAME, API_SENSOR_NAME, AUTOMATION_SENSOR_NAME):
        assert repo.get_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING
    schedule = repo.get_schedule_def(SAFETY_NET_NAME)
    assert schedule.execution_timezone == "America/Chicago" and schedule.cron_schedule == "30 18 * * 1-5"


def test_sensor_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("CHIMERA_SENSOR_INTERVAL_S", "2")
    repo = build_definitions().get_repository_def()
    for name in (LANDING_SENSOR_NAME, API_SENSOR_NAME, AUTOMATION_SENSOR_NAME):
        assert repo.get_sensor_def(name).minimum_interval_seconds == 2
