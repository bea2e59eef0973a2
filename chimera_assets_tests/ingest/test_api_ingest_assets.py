"""The raw assets in API mode: the real databento client against the loopback fake gateway."""

from __future__ import annotations

import polars as pl
import pytest

from chimera_assets.definitions import build_definitions
from chimera_assets.ingest.ledger import read_ledger
from chimera_assets.lib.runner import root_cause
from chimera_assets.schemas import OHLCV_1H
from chimera_assets.warehouse import get_warehouse
from chimera_assets_tests.dagster_helpers import run_range
from chimera_assets_tests.fake_databento_gateway import FakeDatabentoGateway, Fault

H1 = "market_data.databento_futures_ohlcv_1h"


@pytest.fixture
def gateway(monkeypatch):
    gw = FakeDatabentoGateway().start()
    monkeypatch.setenv("DATABENTO_API_KEY", gw.key)
    monkeypatch.setenv("DATABENTO_GATEWAY", gw.url)
    yield gw
    gw.stop()


def _api_run(raise_on_error=True):
    return run_range([H1], "2024-03-04", "2024-03-15", "ZL", "MES", defs=build_definitions("api"),
                     raise_on_error=raise_on_error)


def test_two_week_hourly_range_for_two_roots_through_the_real_client(gateway):
    assert _api_run().success
    bars = get_warehouse().read(OHLCV_1H)
    per_root = dict(bars.group_by("symbol").len().rows())
    assert set(per_root) == {"ZL", "MES"} and min(per_root.values()) > 150  # ~23 bars x 10 sessions
    assert bars["trade_date"].min().isoformat() >= "2024-03-04"
    assert bars.select("ts_event", "symbol", "instrument_id").is_duplicated().sum() == 0
    led = read_ledger(get_warehouse())
    api_rows = led.filter(pl.col("source_kind") == "api")
    assert api_rows.filter(pl.col("status") == "loaded").height >= 2
    assert gateway.key not in str(led.rows())


def test_401_names_the_env_var_and_never_the_key(gateway):
    gateway.add_fault("timeseries.get_range", "401")
    res = _api_run(raise_on_error=False)
    assert not res.success
    msg = root_cause(next(e for e in res.all_events if e.is_step_failure).step_failure_data.error)
    assert "DATABENTO_API_KEY" in msg and gateway.key not in msg
    failed = read_ledger(get_warehouse()).filter(pl.col("status") == "failed")
    assert failed.height == 1 and gateway.key not in failed["error"][0]
    assert get_warehouse().read(OHLCV_1H).height == 0


def test_429_with_retry_after_is_retried_then_succeeds(gateway):
    gateway.add_fault("timeseries.get_range", "429", retry_after=1)
    assert _api_run().success
    assert len(gateway.requests_to("timeseries.get_range")) == 3  # 429, then the two chunks


def test_interrupted_backfill_resumes_without_refetching_or_duplicates(gateway, monkeypatch):
    """Chunk 1 (ZL) is fetched, chunk 2 (MES) is refused: the run stops between chunks. The rerun
    fetches only chunk 2 and the table ends with no duplicates."""
    original = gateway._next_fault
    state = {"n": 0}

    def second_request_fails(endpoint):
        if endpoint == "timeseries.get_range":
            state["n"] += 1
            if state["n"] == 2:
                return Fault("401", None, 0)
        return original(endpoint)

    monkeypatch.setattr(gateway, "_next_fault", second_request_fails)
    assert not _api_run(raise_on_error=False).success
    led = read_ledger(get_warehouse()).filter(pl.col("source_kind") == "api")
    assert led.filter(pl.col("status") == "loaded").height == 1
    assert get_warehouse().read(OHLCV_1H).height == 0  # nothing published from a partial pull
    monkeypatch.setattr(gateway, "_next_fault", original)
    assert _api_run().success
    assert len(gateway.requests_to("timeseries.get_range")) == 3  # chunk 1, refused chunk 2, chunk 2 again
    bars = get_warehouse().read(OHLCV_1H)
    assert set(bars["symbol"].unique()) == {"ZL", "MES"}
    assert bars.select("ts_event", "symbol", "instrument_id").is_duplicated().sum() == 0


def test_an_api_backfill_writes_the_ledger_once_for_its_fetches_and_once_for_its_load(gateway, monkeypatch):
    """Ledger rows are batched per run: not one write (staging table + MERGE) per API chunk."""
    from chimera_assets.ingest import ledger

    writes = []
    real = ledger.record

    def spy(wh, rows):
        if rows:
            writes.append([r["status"] for r in rows])
        return real(wh, rows)

    monkeypatch.setattr(ledger, "record", spy)
    res = run_range([H1], "2024-01-02", "2024-03-29", "ZL", "MES", defs=build_definitions("api"))
    assert res.success
    fetches = [w for w in writes if w and len(w) >= 6]
    assert len(writes) == 2, writes  # 3 months x 2 series = 6 chunks fetched in one write, then the load's rows
    assert fetches and all(s == "loaded" for s in fetches[0])
