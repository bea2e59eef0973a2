"""Shared pieces of the reliability suite: child processes, table snapshots and the invariants checked
after every kill, fault or bad input (no duplicate keys, old-or-new contents, a consistent ledger)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import polars as pl

from chimera_assets.ingest.ledger import STATUSES
from chimera_assets.schemas import (
    ALL_TABLES,
    LOAD_STATE,
    OHLCV_1D,
    OHLCV_1H,
    OHLCV_1M,
    TableSpec,
    training_table,
)
from chimera_assets.warehouse.base import Warehouse

REPO = Path(__file__).resolve().parents[2]
H1 = "market_data.databento_futures_ohlcv_1h"
SB = "features.session_bars"
RAW_TABLES = (OHLCV_1M, OHLCV_1H, OHLCV_1D)


# -- child processes ----------------------------------------------------------------------------------
def child_env(**extra: str) -> dict[str, str]:
    """The current environment (the test's CHIMERA_HOME included) for a child that can import the tests."""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONWARNINGS"] = "ignore"
    env.update(extra)
    return env


class Child:
    """A child process whose stdout/stderr go to files (a full pipe can never block it)."""

    def __init__(self, argv: list[str], workdir: Path, name: str, env: dict[str, str] | None = None):
        workdir.mkdir(parents=True, exist_ok=True)
        self.out_path, self.err_path = workdir / f"{name}.out", workdir / f"{name}.err"
        self.name = name
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(argv, cwd=REPO, env=env or child_env(), stdout=out, stderr=err)

    @classmethod
    def helper(cls, args: list[str], workdir: Path, name: str, env: dict[str, str] | None = None) -> Child:
        return cls([sys.executable, "-m", "chimera_assets_tests.reliability.child", *args], workdir, name, env)

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def describe(self) -> str:
        return f"{self.name} rc={self.proc.poll()}\n--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}"

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError(f"{self.name} did not finish in {timeout}s\n{self.describe()}") from None

    def kill9(self) -> None:
        """SIGKILL: the process gets no chance to run any cleanup."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited before {what}\n{self.describe()}")
            if time.monotonic() > deadline:
                self.kill9()
                raise AssertionError(f"{self.name}: no {what} within {timeout}s\n{self.describe()}")
            time.sleep(0.01)


# -- tables ---------------------------------------------------------------------------------------------
def all_specs(roots: Iterable[str] = ("ZL", "MES")) -> list[TableSpec]:
    return [*ALL_TABLES.values(), *(training_table(r) for r in roots)]


def canonical(spec: TableSpec, frame: pl.DataFrame, drop_volatile: bool = False) -> pl.DataFrame:
    """``frame`` with STRUCTs unnested and rows sorted by every column (volatile columns optionally dropped)."""
    f = frame.drop([c for c in spec.volatile_columns if c in frame.columns]) if drop_volatile else frame
    for c in [c for c, t in f.schema.items() if isinstance(t, pl.Struct)]:
        f = f.with_columns(pl.col(c).struct.rename_fields([f"{c}.{n.name}" for n in f.schema[c].fields])).unnest(c)
    return f.sort(f.columns, nulls_last=True)


def snapshot(wh: Warehouse, roots: Iterable[str] = ("ZL", "MES")) -> dict[str, pl.DataFrame]:
    """Every existing table's full contents (volatile columns included), canonically sorted."""
    specs = all_specs(roots)
    tables = read_tables(wh, specs, only_existing=True)
    return {s.fqn: canonical(s, tables[s.fqn]) for s in specs if s.fqn in tables}


def assert_tables_unchanged(before: dict[str, pl.DataFrame], after: dict[str, pl.DataFrame], what: str,
                            new_ledger_statuses: tuple[str, ...] = ("failed", "skipped_unchanged"),
                            ignore_volatile: bool = False) -> None:
    """Every table holds exactly what it held before. The ledger (an append-only log of load attempts)
    may only have gained rows of ``new_ledger_statuses``; its earlier rows are untouched.
    ``ignore_volatile``: compare without run-dependent columns (a reload of the same rows renews
    their ``load_id``)."""
    specs = {s.fqn: s for s in all_specs()}
    for fqn, old in before.items():
        new = after.get(fqn)
        assert new is not None, f"{what}: table {fqn} disappeared"
        if fqn == LOAD_STATE.fqn:
            kept = new.join(old.select("load_id"), on="load_id", how="semi")
            assert canonical(LOAD_STATE, kept).equals(old), f"{what}: earlier ledger rows changed"
            added = new.join(old.select("load_id"), on="load_id", how="anti")
            bad = added.filter(~pl.col("status").is_in(list(new_ledger_statuses)))
            assert bad.is_empty(), f"{what}: unexpected new ledger rows {bad.select('status', 'file_path').rows()}"
            continue
        if ignore_volatile and fqn in specs:
            old, new = (canonical(specs[fqn], f, drop_volatile=True) for f in (old, new))
        if not new.equals(old):
            diff = new.join(old, on=new.columns, how="anti", nulls_equal=True).head(3).rows()
            raise AssertionError(f"{what}: {fqn} changed ({old.height} -> {new.height} rows), e.g. new {diff}")
    created = {k: v.height for k, v in after.items() if k not in before and k != LOAD_STATE.fqn and v.height}
    assert not created, f"{what}: tables gained rows from nothing: {created}"


def assert_no_duplicate_keys(wh: Warehouse, specs: Iterable[TableSpec]) -> None:
    for spec in specs:
        keys = wh.read(spec, columns=list(spec.key))
        dups = keys.filter(keys.is_duplicated())
        assert dups.is_empty(), f"{spec.fqn}: {dups.height} rows share a key, e.g. {dups.head(3).rows()}"


def assert_same_contents(wh: Warehouse, clean: Warehouse, specs: Iterable[TableSpec], what: str) -> None:
    """Every table of ``specs`` holds the same rows in ``wh`` as in the clean run's ``clean``
    (run-dependent columns such as load ids and ingestion timestamps excluded)."""
    for spec in specs:
        got = canonical(spec, wh.read(spec), drop_volatile=True)
        want = canonical(spec, clean.read(spec), drop_volatile=True)
        assert got.height == want.height, f"{what}: {spec.fqn} has {got.height} rows, a clean run {want.height}"
        if not got.equals(want):
            diff = got.join(want, on=got.columns, how="anti", nulls_equal=True)
            raise AssertionError(f"{what}: {spec.fqn} differs from a clean run, e.g. {diff.head(3).rows()}")


def ledger_orphans(wh: Warehouse) -> dict[str, set[str]]:
    """Per raw table, the ``load_id`` values of its rows that no ``loaded`` ledger row records."""
    led = wh.read(LOAD_STATE)
    known = set(led.filter(pl.col("status") == "loaded")["load_id"].to_list())
    out = {}
    for spec in RAW_TABLES:
        if wh.table_exists(spec):
            ids = set(wh.read(spec, columns=["load_id"])["load_id"].unique().to_list()) - known
            if ids:
                out[spec.fqn] = ids
    return out


def assert_ledger_consistent(wh: Warehouse) -> None:
    """The load ledger agrees with the raw tables: known statuses, unique load ids, every loaded row
    names its input, and every raw row's ``load_id`` is a ``loaded`` ledger row (no orphan rows from
    a load that never recorded its success)."""
    led = wh.read(LOAD_STATE)
    assert set(led["status"].unique().to_list()) <= set(STATUSES), led["status"].unique().to_list()
    assert led["load_id"].is_unique().all(), "duplicate load ids in the ledger"
    loaded = led.filter(pl.col("status") == "loaded")
    assert loaded.filter(pl.col("file_path").is_null() | pl.col("content_sha256").is_null()).is_empty(), \
        "a loaded ledger row does not name its file and its sha256"
    failed = led.filter(pl.col("status") == "failed")
    assert failed.filter(pl.col("error").is_null() | (pl.col("error") == "")).is_empty(), \
        "a failed ledger row has no error text"
    orphans = ledger_orphans(wh)
    assert not orphans, f"rows from loads the ledger does not record: { {k: sorted(v)[:3] for k, v in orphans.items()} }"


def read_tables(wh: Warehouse, specs: Iterable[TableSpec], only_existing: bool = False) -> dict[str, pl.DataFrame]:
    """Several tables through ONE read-only connection (DuckDB; each ``Warehouse.read`` opens two).
    Missing tables read as empty frames, or are left out with ``only_existing``."""
    from chimera_assets.warehouse.base import conform

    specs = list(specs)
    if getattr(wh, "kind", None) != "duckdb":
        return {s.fqn: wh.read(s) for s in specs if not only_existing or wh.table_exists(s)}
    if not wh.path.exists():
        return {} if only_existing else {s.fqn: s.empty_frame() for s in specs}
    con = wh.connect(read_only=True)
    try:
        have = {(a, b) for a, b in con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()}
        out = {}
        for s in specs:
            if (s.schema, s.name) not in have:
                if not only_existing:
                    out[s.fqn] = s.empty_frame()
                continue
            cols = ", ".join(f'"{c}"' for c in s.column_names)
            out[s.fqn] = conform(s, pl.from_arrow(con.sql(f'SELECT {cols} FROM "{s.schema}"."{s.name}"').to_arrow_table()))
        return out
    finally:
        con.close()


def duplicate_keys(spec: TableSpec, frame: pl.DataFrame) -> pl.DataFrame:
    keys = frame.select(list(spec.key))
    return keys.filter(keys.is_duplicated())
