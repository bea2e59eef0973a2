"""Guarantee 6: the Databento key never leaks.

With a recognisable fake key (and a second, wrong one), API ingestion runs through successes, retried
faults, a rejected key, a bad request, exhausted retries and the ``chimera run --api`` command line, with
every logger at DEBUG and Dagster's console logger at DEBUG. Then neither key, nor the base64 forms an
HTTP Basic ``Authorization`` header carries, appears in:

* Python log records (caplog) and the captured stdout/stderr (file-descriptor level),
* the Dagster event log of every run (each entry serialized whole: messages, metadata, errors with
  their causes and stacks) and the runs' own records (tags, config),
* asset materialization metadata, exception texts,
* any string column of any warehouse table, and any byte of any file under ``$CHIMERA_HOME``
  (the DuckDB file and its WAL, the API cache).
"""

from __future__ import annotations

import base64
import logging

import dagster as dg
import polars as pl
import pytest
from dagster._serdes import serialize_value

from chimera_assets import cli
from chimera_assets.definitions import build_definitions
from chimera_assets.ingest import api_chunks
from chimera_assets.ingest.databento_api import DatabentoApi
from chimera_assets.schemas import OHLCV_1H
from chimera_assets.settings import get_settings
from chimera_assets.warehouse import get_warehouse
from chimera_assets_tests.dagster_helpers import asset_key
from chimera_assets_tests.fake_databento_gateway import DATASET_RANGE, GET_RANGE, FakeDatabentoGateway
from chimera_assets_tests.reliability.helpers import H1, SB, all_specs

KEY = "db-CANARYKEY-7f3a9c1e5b2d4a6f8e0c"
WRONG_KEY = "db-WRONGCANARY-0a1b2c3d4e5f67"
VERBOSE = {"loggers": {"console": {"config": {"log_level": "DEBUG"}}}}


def secret_forms(secret: str) -> list[str]:
    """The key and what an Authorization header or a careless dump would show of it."""
    forms = {secret, secret.lower(), secret.upper()}
    for raw in (f"{secret}:", secret):
        enc = base64.b64encode(raw.encode()).decode()
        forms |= {enc, enc.rstrip("=")}
    return sorted(forms)


def leaks(text: str | bytes, secrets: list[str]) -> list[str]:
    if isinstance(text, bytes):
        return [s for s in secrets if s.encode() in text]
    return [s for s in secrets if s in text]


def test_the_leak_scanner_finds_what_it_looks_for():
    forms = secret_forms(KEY)
    assert leaks(f"Authorization: Basic {base64.b64encode(f'{KEY}:'.encode()).decode()}", forms)
    assert leaks(f"key={KEY}".encode(), forms) and not leaks("nothing here", forms)


@pytest.fixture
def gateway(monkeypatch):
    gw = FakeDatabentoGateway(key=KEY).start()
    monkeypatch.setenv("DATABENTO_API_KEY", KEY)
    monkeypatch.setenv("DATABENTO_GATEWAY", gw.url)
    yield gw
    gw.stop()


@pytest.fixture
def quick_retries(monkeypatch):
    class QuickApi(DatabentoApi):
        def __init__(self, *args, **kwargs):
            kwargs.update(timeout_s=2.0, backoff_base_s=0.01, jitter=0.0, max_attempts=3)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(api_chunks, "DatabentoApi", QuickApi)


def _run(defs, instance, start="2024-03-04", end="2024-03-08", keys=(H1,)) -> dg.ExecuteInProcessResult:
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={asset_key(k) for k in keys})
    tags = {"dagster/asset_partition_range_start": f"{start}|ZL", "dagster/asset_partition_range_end": f"{end}|MES"}
    return job.execute_in_process(instance=instance, tags=tags, raise_on_error=False, run_config=VERBOSE)


def _warehouse_strings() -> list[str]:
    """Every value of every string column (and string STRUCT member) of every table."""
    wh = get_warehouse()
    out: list[str] = []
    for spec in all_specs():
        if not wh.table_exists(spec):
            continue
        frame = wh.read(spec)
        for name, dtype in frame.schema.items():
            if dtype == pl.Utf8:
                out += [v for v in frame[name].drop_nulls().to_list()]
            elif isinstance(dtype, pl.Struct):
                for f in dtype.fields:
                    if f.dtype == pl.Utf8:
                        out += [v for v in frame[name].struct.field(f.name).drop_nulls().to_list()]
    return out


def test_the_key_appears_nowhere(gateway, quick_retries, monkeypatch, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    for name in ("databento", "urllib3", "requests", "chimera_assets", "dagster"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    defs = build_definitions("api")
    instance = dg.DagsterInstance.ephemeral()
    results: list[tuple[str, dg.ExecuteInProcessResult]] = []

    # 1. success after retried faults (a 500 and a reset on the data, a 503 on the metadata).
    gateway.add_fault(GET_RANGE, "500")
    gateway.add_fault(GET_RANGE, "reset")
    gateway.add_fault(DATASET_RANGE, "503")
    results.append(("retried then loaded", _run(defs, instance, keys=(H1, SB))))
    # 2. the key rejected mid-backfill, 3. a bad request, 4. retries exhausted (other months: new chunks).
    gateway.add_fault(GET_RANGE, "401")
    results.append(("401", _run(defs, instance, "2024-04-01", "2024-04-05")))
    gateway.add_fault(GET_RANGE, "422")
    results.append(("422", _run(defs, instance, "2024-05-06", "2024-05-10")))
    for _ in range(3):
        gateway.add_fault(GET_RANGE, "503")
    results.append(("retries exhausted", _run(defs, instance, "2024-06-03", "2024-06-07")))
    # 5. a wrong key: every request is refused.
    monkeypatch.setenv("DATABENTO_API_KEY", WRONG_KEY)
    results.append(("wrong key", _run(defs, instance, "2024-07-01", "2024-07-05")))
    monkeypatch.setenv("DATABENTO_API_KEY", KEY)
    # 6. the command line, ending on a refused key (its output is the user's view of the error).
    gateway.add_fault(GET_RANGE, "401")
    code = cli.main(["run", "--api", "--start", "2024-08-05", "--end", "2024-08-09", "--roots", "ZL",
                     "--no-training"])

    outcome = {name: res.success for name, res in results}
    assert outcome == {"retried then loaded": True, "401": False, "422": False, "retries exhausted": False,
                       "wrong key": False}, outcome
    assert code == 1
    assert any(r.authorized for r in gateway.requests), "the key never reached the gateway: the test proves nothing"
    assert get_warehouse().read(OHLCV_1H).height > 150

    forms = secret_forms(KEY) + secret_forms(WRONG_KEY)
    found: dict[str, list[str]] = {}

    def scan(where: str, text: str | bytes) -> None:
        hit = leaks(text, forms)
        if hit:
            found.setdefault(where, []).extend(hit)

    captured = capfd.readouterr()
    scan("stdout", captured.out)
    scan("stderr", captured.err)
    assert "Databento" in captured.out + captured.err, "the errors were not shown at all"
    scan("log records", "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records))
    run_ids = [res.run_id for _, res in results] + [r.run_id for r in instance.get_runs()]
    for run_id in set(run_ids):
        scan(f"run record {run_id}", serialize_value(instance.get_run_by_id(run_id)))
        for entry in instance.all_logs(run_id):
            scan(f"event log {run_id}", serialize_value(entry))
    for name, res in results:
        for ev in res.all_events:
            if ev.is_step_failure:
                scan(f"exception text ({name})", ev.step_failure_data.error.to_string())
            if ev.is_step_materialization:
                scan(f"asset metadata ({name})", str(ev.event_specific_data.materialization.metadata))
    for key in (asset_key(H1), asset_key(SB)):
        for rec in instance.fetch_materializations(key, limit=1000).records:
            scan("materialization metadata", serialize_value(rec.asset_materialization.metadata))
    scan("warehouse string columns", "\n".join(_warehouse_strings()))
    home = get_settings().home
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".duckdb" for p in files) and any("api_cache" in str(p) for p in files)
    for path in files:
        scan(f"file {path.relative_to(home)}", path.read_bytes())
    # The scan saw real material: DEBUG records, Dagster's DEBUG console output, every run's event log.
    assert len(caplog.records) > 20 and len(captured.err) > 10_000
    assert len(set(run_ids)) == len(results) and sum(len(instance.all_logs(r)) for r in set(run_ids)) > 100
    assert not found, f"the Databento key leaked into: {found}"


def test_key_missing_is_a_clear_error_naming_the_variable(monkeypatch, capsys):
    monkeypatch.delenv("DATABENTO_API_KEY", raising=False)
    code = cli.main(["run", "--api", "--start", "2024-03-04", "--end", "2024-03-08", "--roots", "ZL"])
    err = capsys.readouterr().err
    assert code == 2 and "DATABENTO_API_KEY" in err and err.count("error") == 1, err
    assert not get_settings().duckdb_path.exists()


def test_repr_of_every_object_holding_the_key_hides_it(gateway):
    api = DatabentoApi(key=KEY, gateway=gateway.url)
    assert not leaks(repr(api) + str(api) + repr(api._secret), secret_forms(KEY))


def test_credentials_in_the_gateway_url_appear_nowhere(monkeypatch, caplog, capfd, tmp_path):
    """Issue 29 item 8: ``DATABENTO_GATEWAY=http://user:pass@host`` through ``chimera run --api`` on the
    persistent instance: the password is in no output, log record, file of the home (the run index,
    the event logs, compute logs, the warehouse); the run still loads (the key authenticates)."""
    password = "CANARYPASS-5e7d1c"
    gw = FakeDatabentoGateway(key=KEY).start()
    try:
        monkeypatch.setenv("DATABENTO_API_KEY", KEY)
        monkeypatch.setenv("DATABENTO_GATEWAY", gw.url.replace("http://", f"http://canaryuser:{password}@"))
        monkeypatch.setenv("CHIMERA_HOME", str(tmp_path / "home"))
        monkeypatch.delenv("DAGSTER_HOME", raising=False)
        caplog.set_level(logging.DEBUG)
        for name in ("databento", "urllib3", "requests", "chimera_assets", "dagster"):
            logging.getLogger(name).setLevel(logging.DEBUG)
        code = cli.main(["run", "--api", "--start", "2024-03-04", "--end", "2024-03-06", "--roots", "ZL",
                         "--no-training"])
        gw.add_fault(GET_RANGE, "401")  # and an error path
        cli.main(["run", "--api", "--start", "2024-04-01", "--end", "2024-04-03", "--roots", "ZL", "--no-training"])
    finally:
        gw.stop()
    captured = capfd.readouterr()
    # Exit 1: the fake serves no statistics; the bars came through the gateway with the key.
    assert code == 1 and "Summary" in captured.out, captured.out[-2000:] + captured.err[-2000:]
    assert get_warehouse().read(OHLCV_1H).height > 0
    forms = [password, base64.b64encode(f"canaryuser:{password}".encode()).decode()]
    found = {}
    for where, text in (("stdout", captured.out), ("stderr", captured.err),
                        ("log records", "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records))):
        if leaks(text, forms):
            found[where] = leaks(text, forms)
    home = tmp_path / "home"
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "runs.db" for p in files), [str(p) for p in files][:20]
    for path in files:
        if leaks(path.read_bytes(), forms):
            found[str(path.relative_to(home))] = leaks(path.read_bytes(), forms)
    assert "removed" in captured.err or any("removed" in r.getMessage() for r in caplog.records)
    assert not found, f"the gateway password leaked into: {found}"
