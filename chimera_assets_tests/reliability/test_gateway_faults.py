"""Guarantee 5: Databento API faults are retried where retrying is right, end in a clear error where it is
not, and leave the load ledger consistent either way.

The raw 1h asset runs in API mode through the real ``databento`` client against the loopback fake
gateway (two chunks: ZL.v.0 and MES.v.0 for March 2024). The retry policy is the product's; only its
pace is shortened for the test (1 s request timeout, 3 attempts, sleeps recorded instead of slept).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from chimera_assets.definitions import build_definitions
from chimera_assets.ingest import api_chunks
from chimera_assets.ingest.databento_api import DatabentoApi
from chimera_assets.ingest.ledger import file_sha256, read_ledger
from chimera_assets.lib.runner import root_cause
from chimera_assets.schemas import OHLCV_1H
from chimera_assets.settings import get_settings
from chimera_assets.warehouse import get_warehouse
from chimera_assets_tests.dagster_helpers import run_range
from chimera_assets_tests.fake_databento_gateway import DATASET_RANGE, GET_RANGE, FakeDatabentoGateway
from chimera_assets_tests.reliability.helpers import H1, assert_ledger_consistent, assert_no_duplicate_keys

ATTEMPTS = 3
SERIES = ("ZL.v.0", "MES.v.0")


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def gateway(monkeypatch):
    gw = FakeDatabentoGateway().start()
    monkeypatch.setenv("DATABENTO_API_KEY", gw.key)
    monkeypatch.setenv("DATABENTO_GATEWAY", gw.url)
    yield gw
    gw.stop()


@pytest.fixture
def sleeps(monkeypatch) -> Sleeps:
    recorded = Sleeps()

    class QuickApi(DatabentoApi):
        def __init__(self, *args, **kwargs):
            kwargs.update(timeout_s=1.0, backoff_base_s=0.01, jitter=0.0, max_attempts=ATTEMPTS, sleep=recorded)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(api_chunks, "DatabentoApi", QuickApi)
    return recorded


def _run():
    return run_range([H1], "2024-03-04", "2024-03-08", "ZL", "MES", defs=build_definitions("api"),
                     raise_on_error=False)


def _fetch_rows() -> pl.DataFrame:
    """Ledger rows of chunk fetches (the ingestion's own rows have a record count)."""
    led = read_ledger(get_warehouse())
    return led.filter((pl.col("source_kind") == "api") & pl.col("record_count").is_null())


def _cache_files() -> list[Path]:
    cache = get_settings().home / "api_cache"
    return sorted(p for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


def _assert_clean_success(gateway: FakeDatabentoGateway, failed_before: int = 0) -> None:
    """Every chunk loaded once (a chunk that failed earlier has its failed row, then its loaded row),
    cached exactly as the ledger says, and the bars loaded without a duplicate."""
    wh = get_warehouse()
    fetches = _fetch_rows()
    failed = fetches.filter(pl.col("status") == "failed")
    assert failed.height == failed_before, failed.select("status", "error").rows()
    latest = fetches.sort("finished_at").group_by("file_path").last()
    assert (latest["status"] == "loaded").all(), latest.select("file_path", "status").rows()
    loaded = fetches.filter(pl.col("status") == "loaded")
    assert sorted(loaded["series"].to_list()) == sorted(SERIES), loaded.select("series", "file_path").rows()
    files = _cache_files()
    assert not [p for p in files if p.name.startswith(".")], f"partial download left behind: {files}"
    assert {str(p) for p in files} == set(loaded["file_path"].to_list())
    for path, sha in loaded.select("file_path", "content_sha256").rows():
        assert file_sha256(Path(path)) == sha, f"{path}: the cached chunk is not the file the ledger recorded"
    bars = wh.read(OHLCV_1H)
    assert set(bars["symbol"].unique().to_list()) == {"ZL", "MES"} and bars.height > 150
    assert_no_duplicate_keys(wh, [OHLCV_1H])
    assert_ledger_consistent(wh)
    assert gateway.key not in str(read_ledger(wh).rows())


RETRIED = {
    # fault: (endpoint, kind, kwargs)
    "429-with-retry-after": (GET_RANGE, "429", {"retry_after": 7}),
    "429-without-retry-after": (GET_RANGE, "429", {"retry_after": None}),
    "500": (GET_RANGE, "500", {}),
    "503": (GET_RANGE, "503", {}),
    "connection-reset": (GET_RANGE, "reset", {}),
    "timeout": (GET_RANGE, "hang", {"hang_s": 20}),
    "body-cut-mid-transfer": (GET_RANGE, "truncate", {}),
    "truncated-dbn-body": (GET_RANGE, "truncated_dbn", {}),
    "dataset-range-503": (DATASET_RANGE, "503", {}),
}


@pytest.mark.parametrize("fault", list(RETRIED))
def test_transient_fault_is_retried_and_the_load_completes(fault, gateway, sleeps):
    endpoint, kind, kwargs = RETRIED[fault]
    gateway.add_fault(endpoint, kind, **kwargs)
    res = _run()
    assert res.success, root_cause(next(e for e in res.all_events if e.is_step_failure).step_failure_data.error)
    hits = gateway.requests_to(endpoint)
    assert [r.fault for r in hits].count(kind) == 1
    assert len(hits) == (1 if endpoint == DATASET_RANGE else 2) + 1, "exactly one retry"
    assert len(sleeps) == 1, sleeps
    if fault == "429-with-retry-after":
        assert sleeps == [7.0], "the wait is the server's Retry-After"
    _assert_clean_success(gateway)


FATAL = {
    # fault: (kind, text the error must hold)
    "401-bad-key": ("401", "DATABENTO_API_KEY"),
    "422-bad-request": ("422", "HTTP 422"),
}


@pytest.mark.parametrize("fault", list(FATAL))
def test_client_error_is_not_retried_and_fails_clearly(fault, gateway, sleeps):
    kind, needle = FATAL[fault]
    gateway.add_fault(GET_RANGE, kind)
    res = _run()
    assert not res.success
    failures = [e for e in res.all_events if e.is_step_failure]
    assert len(failures) == 1
    msg = root_cause(failures[0].step_failure_data.error)
    assert needle in msg and "GLBX.MDP3|ohlcv-1h|" in msg, msg  # names the request (chunk id)
    assert gateway.key not in msg
    assert sleeps == [], "a client error must not be retried"
    assert len(gateway.requests_to(GET_RANGE)) == 1, "no retry, and no further chunk after the failure"
    fetches = _fetch_rows()
    assert fetches["status"].to_list() == ["failed"], fetches.select("status", "series").rows()
    assert needle in fetches["error"][0] and gateway.key not in fetches["error"][0]
    assert _cache_files() == [], "nothing cached for a failed chunk"
    assert get_warehouse().read(OHLCV_1H).is_empty()
    assert_ledger_consistent(get_warehouse())
    # Fixed (the fault is gone): the rerun loads everything; the failed row stays as history.
    assert _run().success
    _assert_clean_success(gateway, failed_before=1)


def test_a_fault_that_outlasts_every_attempt_fails_clearly_then_resumes(gateway, sleeps):
    for _ in range(ATTEMPTS):
        gateway.add_fault(GET_RANGE, "503")
    res = _run()
    assert not res.success
    msg = root_cause(next(e for e in res.all_events if e.is_step_failure).step_failure_data.error)
    assert f"gave up after {ATTEMPTS} attempts" in msg and "HTTP 503" in msg and "GLBX.MDP3|ohlcv-1h|" in msg, msg
    assert len(sleeps) == ATTEMPTS - 1
    assert _fetch_rows()["status"].to_list() == ["failed"]
    assert get_warehouse().read(OHLCV_1H).is_empty()
    assert _run().success
    _assert_clean_success(gateway, failed_before=1)


def test_a_single_root_api_run_loads_its_rows(gateway, sleeps):
    """Regression (fixed in ledger.already_loaded): the chunk's own fetch row ('loaded', the whole month,
    series ZL.v.0) made a one-root API run look 'already loaded': it succeeded and wrote nothing. That is
    every incremental update, which runs one (date, root) at a time."""
    res = run_range([H1], "2024-03-04", "2024-03-08", "ZL", defs=build_definitions("api"))
    assert res.success
    bars = get_warehouse().read(OHLCV_1H)
    assert bars.height > 100 and set(bars["symbol"].unique().to_list()) == {"ZL"}
    # One date x root, as the sensor-driven update requests it, after the backfill.
    res = run_range([H1], "2024-03-11", "2024-03-11", "MES", defs=build_definitions("api"))
    assert res.success
    assert get_warehouse().read(OHLCV_1H).filter(pl.col("symbol") == "MES").height > 15
    assert_ledger_consistent(get_warehouse())


def test_a_damaged_cached_chunk_is_fetched_again(gateway, sleeps):
    assert _run().success
    victim = next(p for p in _cache_files() if "ZL.v.0" in p.name)
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    later = ("2024-03-11", "2024-03-15")  # same month: the same cached chunks serve it

    def run_later():
        return run_range([H1], *later, "ZL", "MES", defs=build_definitions("api"), raise_on_error=False)

    run_later()  # one loud failure would be acceptable...
    assert run_later().success  # ...but then the chunk must be fetched again and loaded
    bars = get_warehouse().read(OHLCV_1H).filter(pl.col("trade_date") >= pl.date(2024, 3, 11))
    assert set(bars["symbol"].unique().to_list()) == {"ZL", "MES"}, "a series is missing after the rerun"
