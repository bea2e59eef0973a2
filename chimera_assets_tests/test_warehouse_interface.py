"""Both backends implement the whole ``Warehouse`` interface, and a failed COMMIT reports its cause."""

from __future__ import annotations

import inspect

import duckdb
import polars as pl
import pytest

from chimera_assets.schemas import SESSION_BARS
from chimera_assets.warehouse.base import Slice, Warehouse, WarehouseError
from chimera_assets.warehouse.bigquery_backend import BigQueryWarehouse
from chimera_assets.warehouse.duckdb_backend import DuckDBWarehouse

INTERFACE = ("ensure_table", "merge", "merge_blocks", "read", "table_exists", "drop_table", "row_count", "close")


def test_the_base_class_declares_the_whole_interface():
    for name in INTERFACE:
        assert callable(getattr(Warehouse, name, None)), f"Warehouse lacks {name}"
    abstract = Warehouse.__abstractmethods__
    assert {"ensure_table", "merge", "read", "table_exists", "drop_table"} <= abstract


@pytest.mark.parametrize("backend", [DuckDBWarehouse, BigQueryWarehouse])
def test_each_backend_implements_every_abstract_method(backend):
    assert not getattr(backend, "__abstractmethods__", frozenset()), backend.__abstractmethods__
    for name in INTERFACE:
        impl = getattr(backend, name)
        base = getattr(Warehouse, name)
        # Same parameter names as the interface (a backend may add optional keyword parameters).
        base_params = list(inspect.signature(base).parameters)
        impl_params = list(inspect.signature(impl).parameters)
        assert impl_params[: len(base_params)] == base_params, (backend.__name__, name, impl_params)


def test_a_failed_commit_is_reported_with_its_cause_not_the_rollback(tmp_path, monkeypatch):
    """A full disk fails the COMMIT, which ends the transaction; the ROLLBACK then fails with
    "no transaction is active". The error must carry the COMMIT's cause."""
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    frame = SESSION_BARS.empty_frame()
    real_connect = wh.connect

    class FailingCommit:
        def __init__(self, con):
            self._con = con

        def execute(self, sql, *args, **kwargs):
            if sql.strip().upper() == "COMMIT":
                self._con.execute("ROLLBACK")  # the transaction ends, as after a failed write
                raise duckdb.IOException("Could not write file: No space left on device")
            return self._con.execute(sql, *args, **kwargs)

        def __getattr__(self, name):
            return getattr(self._con, name)

    monkeypatch.setattr(wh, "connect", lambda read_only=False: FailingCommit(real_connect(read_only)))
    with pytest.raises(WarehouseError, match="No space left on device") as info:
        wh.merge(SESSION_BARS, frame, Slice.whole_table())
    assert "no transaction is active" not in str(info.value)
    assert isinstance(frame, pl.DataFrame)
