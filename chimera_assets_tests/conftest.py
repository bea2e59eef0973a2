"""Shared fixtures: an isolated CHIMERA_HOME per test, warehouses, and the real-data locator."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# ../shared/data beside the repo; CHIMERA_TEST_SHARED_DATA points elsewhere (a git worktree is one level
# deeper than the main checkout, so its ../shared is not the shared folder).
SHARED_DATA = Path(os.environ.get("CHIMERA_TEST_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data, skipping the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data {path} is absent (it lives in ../shared/data beside the repo)")
    return path


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own CHIMERA_HOME so nothing touches ~/.chimera or another test's files."""
    home = tmp_path_factory.mktemp("chimera_home")
    monkeypatch.setenv("CHIMERA_HOME", str(home))
    for var in ("CHIMERA_WAREHOUSE", "CHIMERA_DUCKDB_PATH", "CHIMERA_UNIVERSE", "CHIMERA_LANDING_DIR",
                "CHIMERA_POLICY_DIR", "DATABENTO_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def duckdb_warehouse(tmp_path):
    from chimera_assets.warehouse.duckdb_backend import DuckDBWarehouse

    return DuckDBWarehouse(tmp_path / "warehouse.duckdb")


def _bigquery_warehouse(request):
    if not os.environ.get("CHIMERA_BQ_EMULATOR"):
        pytest.skip("CHIMERA_BQ_EMULATOR is not set (start one with .ci/bigquery_emulator.sh start)")
    from chimera_assets_tests.bq_fixtures import make_bigquery_warehouse

    return make_bigquery_warehouse(request)


@pytest.fixture(params=["duckdb", pytest.param("bigquery", marks=pytest.mark.bigquery)])
def warehouse(request, tmp_path):
    """The warehouse contract suite runs once per backend."""
    if request.param == "duckdb":
        from chimera_assets.warehouse.duckdb_backend import DuckDBWarehouse

        return DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    return _bigquery_warehouse(request)
