"""The main job on BigQuery (the emulator) produces the same tables as on DuckDB."""

from __future__ import annotations

import os
import uuid
from datetime import date

import pytest

from chimera_assets_tests.conftest import shared_data
from chimera_assets_tests.e2e_helpers import assert_frames_close, comparable, data_tables, run_main_job

pytestmark = [pytest.mark.bigquery, pytest.mark.slow]


def test_main_job_on_bigquery_equals_duckdb(monkeypatch, tmp_path):
    endpoint = os.environ.get("CHIMERA_BQ_EMULATOR")
    if not endpoint:
        pytest.skip("CHIMERA_BQ_EMULATOR is not set (start one with .ci/bigquery_emulator.sh start)")
    batch, policy = shared_data("databento-batch"), shared_data("policy-events")
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(batch))
    monkeypatch.setenv("CHIMERA_POLICY_DIR", str(policy))
    roots = ["ZL", "MES"]
    start, end = date(2025, 3, 3), date(2025, 3, 31)
    _, duck = run_main_job(start, end, roots)

    monkeypatch.setenv("CHIMERA_WAREHOUSE", "bigquery")
    monkeypatch.setenv("CHIMERA_BQ_ENDPOINT", endpoint)
    monkeypatch.setenv("CHIMERA_BQ_PROJECT", "test")
    prefix = f"e2e{uuid.uuid4().hex[:8]}_"
    monkeypatch.setenv("CHIMERA_BQ_DATASET_PREFIX", prefix)
    _, bq = run_main_job(start, end, roots)
    try:
        compared = 0
        for spec in data_tables(roots):
            a, b = duck.read(spec), bq.read(spec)
            assert a.height == b.height, f"{spec.fqn}: duckdb {a.height} rows, bigquery {b.height}"
            assert_frames_close(comparable(spec, a), comparable(spec, b), spec.fqn)
            compared += a.height
        assert compared > 1000
    finally:
        for spec in data_tables(roots):
            bq.drop_table(spec)
