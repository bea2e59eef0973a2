"""Historical API access through the real databento client against the loopback fake gateway."""

from __future__ import annotations

import base64
import datetime as dt
import logging

import polars as pl
import pytest

from chimera_assets.dbn.decode import decode_dbn_file
from chimera_assets.ingest import databento_api
from chimera_assets.ingest.databento_api import (
    API_KEY_ENV,
    DatabentoApi,
    DatabentoAuthError,
    DatabentoCostLimitExceeded,
    DatabentoKeyMissingError,
    DatabentoRequestError,
    DatabentoRetryExhausted,
    infer_stype_in,
    plan_chunks,
    redact,
)
from chimera_assets_tests.fake_databento_gateway import (
    DATASET_RANGE,
    GET_COST,
    GET_RANGE,
    FakeDatabentoGateway,
    fake_gateway,  # noqa: F401 - pytest fixture
)

KEY = FakeDatabentoGateway().key
UTC = dt.UTC


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def api(fake_gateway, sleeps):  # noqa: F811
    return DatabentoApi(key=KEY, gateway=fake_gateway.url, sleep=sleeps, jitter=0.0, timeout_s=5)


def _fetch(api, tmp_path, symbols=("ZL.v.0", "MES.v.0"), name="x.dbn.zst"):
    return api.fetch_range(
        "GLBX.MDP3",
        "ohlcv-1h",
        list(symbols),
        "continuous",
        dt.date(2024, 3, 4),
        dt.date(2024, 3, 18),
        tmp_path / name,
    )


def test_two_week_hourly_range_for_two_roots(api, fake_gateway, tmp_path, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    path = _fetch(api, tmp_path)
    df = decode_dbn_file(path)
    assert set(df.get_column("series")) == {"ZL.v.0", "MES.v.0"}
    assert df.get_column("ts_event").min() >= dt.datetime(2024, 3, 4, tzinfo=UTC)
    assert df.get_column("ts_event").max() < dt.datetime(2024, 3, 18, tzinfo=UTC)
    per_root = dict(df.group_by("symbol").len().rows())
    assert per_root["ZL"] > 150 and per_root["MES"] > 150  # ~10 sessions x ~23 bars
    assert df.filter(pl.col("symbol") == "MES").get_column("instrument_id").n_unique() == 2  # 03-07 roll
    # What the real client sent, and that the cost was asked for first.
    reqs = fake_gateway.requests
    assert [r.endpoint for r in reqs] == [GET_COST, GET_RANGE]
    sent = reqs[1].params
    assert sent["dataset"] == "GLBX.MDP3" and sent["schema"] == "ohlcv-1h"
    assert sent["symbols"] == "ZL.v.0,MES.v.0" and sent["stype_in"] == "continuous"
    assert sent["encoding"] == "dbn" and sent["compression"] == "zstd"
    assert all(r.authorized for r in reqs)
    assert "cost estimate" in caplog.text
    assert KEY not in caplog.text
    assert not list(tmp_path.glob(".*partial"))


def test_existing_destination_is_replaced(api, tmp_path):
    dest = tmp_path / "x.dbn.zst"
    dest.write_bytes(b"old")
    _fetch(api, tmp_path)
    assert decode_dbn_file(dest).height > 0


def test_401_is_a_clear_error_without_the_key(fake_gateway, sleeps, tmp_path, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    wrong = "db-WRONG-KEY-987654321"
    bad = DatabentoApi(key=wrong, gateway=fake_gateway.url, sleep=sleeps)
    with pytest.raises(DatabentoAuthError) as err:
        bad.dataset_range("GLBX.MDP3")
    msg = str(err.value)
    assert API_KEY_ENV in msg and "401" in msg
    assert wrong not in msg and wrong not in repr(err.value) and wrong not in repr(bad)
    assert err.value.__cause__ is None and err.value.__suppress_context__
    with pytest.raises(DatabentoAuthError):
        _fetch(bad, tmp_path)
    assert sleeps == []  # never retried
    assert wrong not in caplog.text
    assert not list(tmp_path.iterdir())


def test_401_fault_mid_backfill(api, fake_gateway, tmp_path):  # noqa: F811
    fake_gateway.add_fault(GET_RANGE, "401")
    with pytest.raises(DatabentoAuthError, match=API_KEY_ENV):
        _fetch(api, tmp_path)


def test_429_honours_retry_after_then_succeeds(api, fake_gateway, sleeps, tmp_path):  # noqa: F811
    fake_gateway.add_fault(GET_RANGE, "429", retry_after=3)
    path = _fetch(api, tmp_path)
    assert decode_dbn_file(path).height > 0
    assert sleeps == [3.0]
    statuses = [r.status for r in fake_gateway.requests_to(GET_RANGE)]
    assert statuses == [429, 200]


def test_429_without_retry_after_uses_backoff(api, fake_gateway, sleeps):  # noqa: F811
    fake_gateway.add_fault(DATASET_RANGE, "429", retry_after=None)
    api.dataset_range()
    assert sleeps == [1.0]


def test_500_is_retried_with_exponential_backoff(api, fake_gateway, sleeps, tmp_path):  # noqa: F811
    fake_gateway.add_fault(GET_RANGE, "500")
    fake_gateway.add_fault(GET_RANGE, "503")
    _fetch(api, tmp_path)
    assert sleeps == [1.0, 2.0]
    assert [r.status for r in fake_gateway.requests_to(GET_RANGE)] == [500, 503, 200]


@pytest.mark.parametrize("fault", ["reset", "truncate", "truncated_dbn"])
def test_broken_transfers_are_retried(api, fake_gateway, sleeps, tmp_path, fault):  # noqa: F811
    fake_gateway.add_fault(GET_RANGE, fault)
    path = _fetch(api, tmp_path)
    assert decode_dbn_file(path).height > 0
    assert len(sleeps) == 1
    assert not list(tmp_path.glob(".*partial"))


def test_hanging_request_times_out_and_is_retried(fake_gateway, sleeps):  # noqa: F811
    quick = DatabentoApi(key=KEY, gateway=fake_gateway.url, sleep=sleeps, jitter=0.0, timeout_s=0.5)
    fake_gateway.add_fault(DATASET_RANGE, "hang", hang_s=10)
    start, end = quick.dataset_range()
    assert start == dt.datetime(2010, 6, 6, tzinfo=UTC) and end > start
    assert sleeps == [1.0]


def test_retries_are_bounded(fake_gateway, sleeps, tmp_path):  # noqa: F811
    api = DatabentoApi(key=KEY, gateway=fake_gateway.url, sleep=sleeps, jitter=0.0, max_attempts=3)
    for _ in range(3):
        fake_gateway.add_fault(GET_RANGE, "500")
    with pytest.raises(DatabentoRetryExhausted, match="3 attempts") as err:
        _fetch(api, tmp_path)
    assert err.value.last_status == 500 and sleeps == [1.0, 2.0]
    assert not list(tmp_path.iterdir())


def test_retry_after_is_capped(fake_gateway, sleeps):  # noqa: F811
    api = DatabentoApi(key=KEY, gateway=fake_gateway.url, sleep=sleeps, jitter=0.0, retry_after_max_s=5.0)
    fake_gateway.add_fault(DATASET_RANGE, "429", retry_after=500)
    api.dataset_range()
    assert sleeps == [5.0]


def test_backoff_is_capped_and_jitter_adds_up_to_its_share(fake_gateway, sleeps, monkeypatch):  # noqa: F811
    # uniform(a, b) -> b: the largest jitter the policy may add, so the waits are exact.
    monkeypatch.setattr(databento_api.random, "uniform", lambda a, b: b)
    api = DatabentoApi(key=KEY, gateway=fake_gateway.url, sleep=sleeps, jitter=0.5, backoff_max_s=3.0)
    for _ in range(3):
        fake_gateway.add_fault(DATASET_RANGE, "500")
    api.dataset_range()
    # base min(3, 1 * 2**(n-1)) = 1, 2, 3 (capped); plus half of it.
    assert sleeps == [1.5, 3.0, 4.5]


def test_each_retry_is_logged_without_the_key(api, fake_gateway, caplog):  # noqa: F811
    caplog.set_level(logging.WARNING, logger=databento_api.__name__)
    fake_gateway.add_fault(DATASET_RANGE, "503")
    api.dataset_range()
    (line,) = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert "attempt 1/5 failed (HTTP 503" in line and line.endswith("retrying in 1.00s")
    assert KEY not in caplog.text


def test_one_attempt_means_no_retry(fake_gateway, sleeps):  # noqa: F811
    api = DatabentoApi(key=KEY, gateway=fake_gateway.url, sleep=sleeps, max_attempts=1)
    fake_gateway.add_fault(DATASET_RANGE, "500")
    with pytest.raises(
        DatabentoRetryExhausted, match="gave up after 1 attempts; last error: HTTP 500"
    ) as err:
        api.dataset_range()
    assert err.value.attempts == 1 and err.value.last_status == 500
    assert err.value.__cause__ is None and err.value.__context__ is None  # nothing chained to leak
    assert sleeps == [] and len(fake_gateway.requests_to(DATASET_RANGE)) == 1


def test_other_client_errors_are_not_retried(api, fake_gateway, sleeps, tmp_path):  # noqa: F811
    fake_gateway.add_fault(GET_RANGE, "422")
    with pytest.raises(DatabentoRequestError) as err:
        _fetch(api, tmp_path)
    assert err.value.http_status == 422 and sleeps == []


def test_cost_is_logged_and_limit_enforced(fake_gateway, sleeps, tmp_path):  # noqa: F811
    api = DatabentoApi(key=KEY, gateway=fake_gateway.url, sleep=sleeps, max_cost_usd=0.0001)
    cost = api.estimate_cost(
        "GLBX.MDP3", "ohlcv-1m", ["ZL.v.0"], "continuous", dt.date(2024, 1, 1), dt.date(2024, 2, 1)
    )
    assert cost == pytest.approx(31 * 0.05)
    with pytest.raises(DatabentoCostLimitExceeded):
        _fetch(api, tmp_path)
    assert not fake_gateway.requests_to(GET_RANGE)


def test_dataset_range(api):
    start, end = api.dataset_range("GLBX.MDP3", schema="ohlcv-1h")
    assert start == dt.datetime(2010, 6, 6, tzinfo=UTC)
    assert end == dt.datetime(2025, 12, 16, tzinfo=UTC)


def test_missing_key_names_the_env_var(monkeypatch):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    with pytest.raises(DatabentoKeyMissingError, match=API_KEY_ENV):
        DatabentoApi()
    with pytest.raises(DatabentoKeyMissingError, match=API_KEY_ENV):
        DatabentoApi(key="   ")
    assert issubclass(DatabentoKeyMissingError, DatabentoAuthError)


def test_key_from_env(monkeypatch, fake_gateway):  # noqa: F811
    monkeypatch.setenv(API_KEY_ENV, KEY)
    api = DatabentoApi(gateway=fake_gateway.url)
    assert api.dataset_range()[0].year == 2010
    assert KEY not in repr(api) and KEY not in str(vars(api))


def test_plain_http_gateway_refused_unless_loopback():
    with pytest.raises(DatabentoRequestError, match="plain-http"):
        DatabentoApi(key=KEY, gateway="http://example.com:8080")
    # https gateways are fine (no request is made at construction).
    assert DatabentoApi(key=KEY, gateway="https://example.com").gateway == "https://example.com"


def test_redact_helper():
    key = "db-AbCdEf123456"
    b64 = base64.b64encode(f"{key}:".encode()).decode()
    text = f"key={key} header=Basic {b64} raw={base64.b64encode(key.encode()).decode()}"
    out = redact(text, key)
    assert key not in out and b64 not in out
    assert out.count("<redacted:DATABENTO_API_KEY>") == 3
    assert redact("nothing here", key) == "nothing here"
    assert redact("x", None) == "x" and redact("x", "") == "x"


def test_plan_chunks_by_month_and_series():
    chunks = plan_chunks(
        ["ZL.v.0", "MES.v.0", "ZL.v.0"], dt.date(2024, 1, 15), dt.date(2024, 3, 10), schema="ohlcv-1m"
    )
    assert [(c.series, c.start.date(), c.end.date()) for c in chunks] == [
        ("ZL.v.0", dt.date(2024, 1, 15), dt.date(2024, 2, 1)),
        ("MES.v.0", dt.date(2024, 1, 15), dt.date(2024, 2, 1)),
        ("ZL.v.0", dt.date(2024, 2, 1), dt.date(2024, 3, 1)),
        ("MES.v.0", dt.date(2024, 2, 1), dt.date(2024, 3, 1)),
        ("ZL.v.0", dt.date(2024, 3, 1), dt.date(2024, 3, 10)),
        ("MES.v.0", dt.date(2024, 3, 1), dt.date(2024, 3, 10)),
    ]
    assert all(c.stype_in == "continuous" and c.schema == "ohlcv-1m" for c in chunks)
    assert len({c.chunk_id for c in chunks}) == 6
    assert chunks[0].file_name == "glbx-mdp3-ZL.v.0-ohlcv-1m-20240115-20240131.dbn.zst"
    assert all(c.start.tzinfo is not None for c in chunks)
    assert plan_chunks(["ZL.v.0"], dt.date(2024, 2, 1), dt.date(2024, 2, 1)) == []
    dec = plan_chunks(["ZL.v.0"], dt.datetime(2024, 12, 31, 12), dt.datetime(2025, 1, 1, 6))
    assert [(c.start, c.end) for c in dec] == [
        (dt.datetime(2024, 12, 31, 12, tzinfo=UTC), dt.datetime(2025, 1, 1, tzinfo=UTC)),
        (dt.datetime(2025, 1, 1, tzinfo=UTC), dt.datetime(2025, 1, 1, 6, tzinfo=UTC)),
    ]


@pytest.mark.parametrize(
    ("series", "stype"),
    [
        ("ZL.v.0", "continuous"),
        ("ZL.c.1", "continuous"),
        ("ZL.FUT", "parent"),
        ("ZLZ5", "raw_symbol"),
        ("5482", "instrument_id"),
    ],
)
def test_infer_stype_in(series, stype):
    assert infer_stype_in(series) == stype


def test_fetch_chunk(api, tmp_path):
    (chunk,) = plan_chunks(["ES.v.0"], dt.date(2024, 6, 3), dt.date(2024, 6, 5))
    path = api.fetch_chunk(chunk, tmp_path)
    assert path.name == chunk.file_name
    df = decode_dbn_file(path)
    assert set(df.get_column("series")) == {"ES.v.0"} and df.height > 30
