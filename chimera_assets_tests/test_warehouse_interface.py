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


def test_a_table_stored_by_an_older_version_gains_the_new_nullable_columns(tmp_path):
    """A warehouse upgraded from a version without ``session_bars.session_complete`` keeps working: the
    column is added (NULL in the old rows) and the next write fills it."""
    import datetime as dt

    path = tmp_path / "w.duckdb"
    old_cols = [c for c in SESSION_BARS.columns if c.name != "session_complete"]
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA features")
    con.execute("CREATE TABLE features.session_bars (" + ", ".join(
        f'"{c.name}" {c.duckdb_type()}{"" if c.nullable else " NOT NULL"}' for c in old_cols) + ")")
    con.execute("INSERT INTO features.session_bars (trade_date, symbol, close) VALUES ('2024-01-02', 'ZL', 1.0)")
    con.close()
    wh = DuckDBWarehouse(path)
    row = {c.name: None for c in SESSION_BARS.columns}
    row.update(trade_date=dt.date(2024, 1, 3), symbol="ZL", close=2.0, session_complete=True)
    frame = pl.DataFrame([row], schema=SESSION_BARS.polars_schema())
    wh.merge(SESSION_BARS, frame, Slice.from_keys([(dt.date(2024, 1, 3), "ZL")]))
    back = wh.read(SESSION_BARS).sort("trade_date")
    assert back["close"].to_list() == [1.0, 2.0]
    assert back["session_complete"].to_list() == [None, True]
