"""The embedded default: a DuckDB file under ``$CHIMERA_HOME``.

DuckDB allows one writing process per file, so every operation opens a short-lived connection
and retries while another process holds the lock; writers therefore serialise instead of failing.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from chimera_assets.schemas import TableSpec
from chimera_assets.warehouse.base import (
    Audit,
    AuditFailed,
    MergeResult,
    Slice,
    Warehouse,
    WarehouseError,
    conform,
    prefetch,
    prepare_frame,
    spec_dialect_types,
)
from chimera_assets.warehouse.merge_sql import DUCKDB, merge_statement, slice_predicate

# Private schema of the staging tables of block-wise writes (never a logical schema of the spec).
STAGING_SCHEMA = "chimera_staging"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WarehouseLockedError(WarehouseError):
    """Another process held the DuckDB file for longer than the wait allowed."""


# information_schema spells some types differently from the DDL chimera writes.
_DUCKDB_ALIASES = {"TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ"}


class DuckDBWarehouse(Warehouse):
    kind = "duckdb"

    def __init__(self, path: Path | str, lock_timeout_s: float = 120.0):
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s
        self._known_tables: set[str] = set()

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({str(self.path)!r})"

    # -- connections --------------------------------------------------------------------------
    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """Open the file, waiting (with backoff) while another process holds its lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only and self.path.exists())
                # Connect first, then set: a TimeZone in the connect config triggers an ICU download.
                con.execute("SET TimeZone='UTC'")
                return con
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise WarehouseError(f"cannot open DuckDB warehouse {self.path}: {exc}") from exc
                if time.monotonic() > deadline:
                    raise WarehouseLockedError(
                        f"DuckDB warehouse {self.path} is locked by another process (waited "
                        f"{self.lock_timeout_s:.0f}s); retry when the other run has finished"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    @staticmethod
    def _name(spec: TableSpec) -> str:
        return f"{DUCKDB.quote(spec.schema)}.{DUCKDB.quote(spec.name)}"

    # -- DDL ----------------------------------------------------------------------------------
    def _ensure(self, con: duckdb.DuckDBPyConnection, spec: TableSpec) -> None:
        if spec.fqn in self._known_tables:
            return
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {DUCKDB.quote(spec.schema)}")
        con.execute(f"CREATE TABLE IF NOT EXISTS {self._name(spec)} ({self._columns_ddl(spec)})")
        self._add_new_columns(con, spec)
        # DuckDB has no partitioning/clustering; record the BigQuery layout so it is inspectable.
        layout = {"partition_by": spec.date_column, "cluster_by": list(spec.clustering), "key": list(spec.key)}
        con.execute(f"COMMENT ON TABLE {self._name(spec)} IS '{json.dumps(layout)}'")
        self._known_tables.add(spec.fqn)

    def _add_new_columns(self, con: duckdb.DuckDBPyConnection, spec: TableSpec) -> None:
        """A table stored by an older version lacks the columns the spec gained since (e.g.
        ``session_bars.session_complete``): add the nullable ones (NULL in the old rows, which the next
        write of their partitions fills), so an upgraded warehouse keeps working without a rebuild."""
        have = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
            [spec.schema, spec.name],
        ).fetchall()}
        for c in spec.columns:
            if c.name in have:
                continue
            if not c.nullable:
                raise WarehouseError(
                    f"{spec.fqn} in {self.path} lacks the NOT NULL column {c.name!r} of this version: "
                    "rebuild the table (drop it and materialize it again)"
                )
            con.execute(f"ALTER TABLE {self._name(spec)} ADD COLUMN {DUCKDB.quote(c.name)} {c.duckdb_type()}")

    @staticmethod
    def _columns_ddl(spec: TableSpec) -> str:
        return ", ".join(
            f"{DUCKDB.quote(c.name)} {c.duckdb_type()}{'' if c.nullable else ' NOT NULL'}" for c in spec.columns
        )

    def ensure_table(self, spec: TableSpec) -> None:
        con = self.connect()
        try:
            self._ensure(con, spec)
        finally:
            con.close()

    @staticmethod
    def _exists(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> bool:
        n = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2",
            [spec.schema, spec.name],
        ).fetchall()[0][0]  # fetchall completes the result, so the connection can be reused
        return n > 0

    def table_exists(self, spec: TableSpec) -> bool:
        if not self.path.exists():
            return False
        con = self.connect(read_only=True)
        try:
            return self._exists(con, spec)
        finally:
            con.close()

    def stored_column_types(self, spec: TableSpec) -> dict[str, str]:
        if not self.path.exists():
            return {}
        con = self.connect(read_only=True)
        try:
            rows = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 "
                "AND table_name = $2", [spec.schema, spec.name]).fetchall()
        finally:
            con.close()
        return spec_dialect_types(spec, dict(rows), _DUCKDB_ALIASES)

    def drop_table(self, spec: TableSpec) -> None:
        con = self.connect()
        try:
            con.execute(f"DROP TABLE IF EXISTS {self._name(spec)}")
            self._known_tables.discard(spec.fqn)
        finally:
            con.close()

    def table_layout(self, spec: TableSpec) -> dict:
        """The partitioning/clustering recorded for ``spec`` (what BigQuery would enforce)."""
        con = self.connect(read_only=True)
        try:
            row = con.execute(
                "SELECT comment FROM duckdb_tables() WHERE schema_name = $1 AND table_name = $2",
                [spec.schema, spec.name],
            ).fetchone()
            return json.loads(row[0]) if row and row[0] else {}
        finally:
            con.close()

    # -- writes -------------------------------------------------------------------------------
    def merge(
        self, spec: TableSpec, frame: pl.DataFrame, slice_: Slice | None, audit: Audit | None = None
    ) -> MergeResult:
        return self._merge_one(spec, frame, slice_, audit)

    def merge_blocks(
        self,
        spec: TableSpec,
        blocks: Iterable[tuple[pl.DataFrame, Slice | None]],
        whole: Slice | None,
        audit: Audit | None = None,
    ) -> MergeResult:
        """Several blocks as ONE change, with memory bounded by a block.

        The next block is produced on a background thread while the current one is written. Each
        block is validated, audited and appended to a private staging table (committed block by block:
        DuckDB holds a transaction's appended rows in memory until it commits, ~150 bytes per row);
        then one transaction publishes the staging table into the target for ``whole`` (INSERT on a
        first load, else the MERGE) and drops it. An exception while a block is produced (a bad file
        found late) or written drops the staging table: the target is as it was. A single block goes
        straight through ``merge``.
        """
        items = prefetch(blocks)
        first = next(items, None)
        second = next(items, None) if first is not None else None
        if second is None:
            frame, slice_ = first if first is not None else (spec.empty_frame(), whole)
            return self._merge_one(spec, frame, slice_, audit)
        return self._merge_staged(spec, itertools.chain([first, second], items), whole, audit)

    def _merge_one(
        self, spec: TableSpec, frame: pl.DataFrame, slice_: Slice | None, audit: Audit | None
    ) -> MergeResult:
        frame = prepare_frame(spec, frame, slice_)
        con = self.connect()
        try:
            with self._publishing(con, spec):
                rows = self._write_block(con, spec, frame, slice_, audit)
        finally:
            con.close()
        return MergeResult(spec.fqn, rows)

    @contextmanager
    def _publishing(self, con: duckdb.DuckDBPyConnection, spec: TableSpec) -> Iterator[None]:
        """One transaction that creates ``spec``'s table if needed, runs the body, calls the
        ``before_commit`` test hook and commits; any exception rolls everything back."""
        con.execute("BEGIN TRANSACTION")
        try:
            # DDL is transactional in DuckDB: a rejected first write leaves no empty table behind.
            self._ensure(con, spec)
            yield
            if self.before_commit is not None:
                self.before_commit(spec)
            con.execute("COMMIT")
        except BaseException as exc:
            self._known_tables.discard(spec.fqn)
            try:
                con.execute("ROLLBACK")
            except duckdb.Error as rollback_exc:
                # A failed COMMIT (a full disk, an I/O error) has already ended the transaction, so the
                # ROLLBACK fails with "no transaction is active": report the original cause, not that.
                if isinstance(exc, duckdb.Error):
                    raise WarehouseError(
                        f"cannot write {spec.fqn} to the DuckDB warehouse {self.path}: {exc}"
                    ) from exc
                raise exc from rollback_exc
            raise

    def _merge_staged(
        self, spec: TableSpec, blocks: Iterable[tuple[pl.DataFrame, Slice | None]], whole: Slice | None,
        audit: Audit | None,
    ) -> MergeResult:
        # Generated identifier (pid + random hex), never from input; the pid lets a later writer drop
        # the staging table of a process that was killed mid-way.
        stage = f"{DUCKDB.quote(STAGING_SCHEMA)}.{DUCKDB.quote(f'stage_{os.getpid()}_{uuid.uuid4().hex[:12]}')}"
        con = self.connect()
        rows = 0
        try:
            self._drop_orphan_stages(con)
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {DUCKDB.quote(STAGING_SCHEMA)}")
            con.execute(f"CREATE TABLE {stage} ({self._columns_ddl(spec)})")
            try:
                for frame, slice_ in blocks:
                    frame = prepare_frame(spec, frame, slice_)
                    if audit is not None:
                        try:
                            audit(frame)
                        except AuditFailed as exc:
                            exc.slice = slice_
                            raise
                    con.register("chimera_incoming", frame.to_arrow())
                    try:
                        con.execute(self._insert_sql(spec, "chimera_incoming", into=stage))
                    finally:
                        con.unregister("chimera_incoming")
                    rows += frame.height
                with self._publishing(con, spec):
                    if not self._target_has_rows(con, spec, whole):
                        con.execute(self._insert_sql(spec, stage))
                    else:
                        sql, params = merge_statement(spec, self._name(spec), stage, whole, DUCKDB)
                        con.execute(sql, [v for _, v in params])
                    con.execute(f"DROP TABLE {stage}")
            except BaseException:
                con.execute(f"DROP TABLE IF EXISTS {stage}")
                raise
        finally:
            con.close()
        return MergeResult(spec.fqn, rows)

    @staticmethod
    def _drop_orphan_stages(con: duckdb.DuckDBPyConnection) -> None:
        """Drop staging tables left by writers that were killed (their pid no longer runs)."""
        names = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", [STAGING_SCHEMA]
        ).fetchall()
        for (name,) in names:
            parts = name.split("_")
            if len(parts) == 3 and parts[0] == "stage" and parts[1].isdigit() and not _pid_alive(int(parts[1])):
                con.execute(f"DROP TABLE IF EXISTS {DUCKDB.quote(STAGING_SCHEMA)}.{DUCKDB.quote(name)}")

    def _write_block(
        self, con: duckdb.DuckDBPyConnection, spec: TableSpec, frame: pl.DataFrame, slice_: Slice | None,
        audit: Audit | None,
    ) -> int:
        # When the target holds no row of the slice (a first load), the MERGE could only insert every
        # staged row (nothing can match, nothing in the slice is left to delete): a plain INSERT does
        # exactly that without the key join. Checked inside the transaction.
        insert_only = not self._target_has_rows(con, spec, slice_)
        con.register("chimera_incoming", frame.to_arrow())
        try:
            if insert_only:
                # Straight from the Arrow frame, no staging copy; the audit judges the very rows being
                # inserted (prepare_frame already cast them to the table's types).
                if audit is not None:
                    audit(frame)
                con.execute(self._insert_sql(spec, "chimera_incoming"))
                return frame.height
            con.execute("CREATE OR REPLACE TEMP TABLE chimera_staging AS SELECT * FROM chimera_incoming")
        finally:
            con.unregister("chimera_incoming")
        if audit is not None:
            staged = pl.from_arrow(con.sql("SELECT * FROM chimera_staging").to_arrow_table())
            audit(conform(spec, staged))
        sql, params = merge_statement(spec, self._name(spec), "chimera_staging", slice_, DUCKDB)
        con.execute(sql, [v for _, v in params])
        con.execute("DROP TABLE chimera_staging")
        return frame.height

    def _target_has_rows(self, con: duckdb.DuckDBPyConnection, spec: TableSpec, slice_: Slice | None) -> bool:
        """Whether the write can meet an existing row: any row of ``slice_``, or (an upsert without a
        slice, e.g. a raw load) any row of the table. If not, the MERGE could only insert: a plain INSERT
        does exactly that without the key join (frames are key-distinct, ``prepare_frame``)."""
        if slice_ is not None:
            return self._slice_has_rows(con, spec, slice_)
        sql = f"SELECT EXISTS (SELECT 1 FROM {self._name(spec)})"  # noqa: S608 - identifiers from the spec allow-list
        return bool(con.execute(sql).fetchall()[0][0])

    def _slice_has_rows(self, con: duckdb.DuckDBPyConnection, spec: TableSpec, slice_: Slice) -> bool:
        """Whether the target already holds a row of ``slice_`` (zone maps make this cheap)."""
        pred, named = slice_predicate(spec, slice_, "t", DUCKDB)
        sql = f"SELECT EXISTS (SELECT 1 FROM {self._name(spec)} AS t WHERE {pred})"  # noqa: S608 - identifiers from the spec allow-list
        return bool(con.execute(sql, [v for _, v in named]).fetchall()[0][0])  # fetchall: completes the result

    def _insert_sql(self, spec: TableSpec, source: str, into: str | None = None) -> str:
        cols = ", ".join(DUCKDB.quote(c) for c in spec.column_names)
        return f"INSERT INTO {into or self._name(spec)} ({cols}) SELECT {cols} FROM {source}"  # noqa: S608 - identifiers from the spec allow-list

    # -- reads --------------------------------------------------------------------------------
    def read(
        self, spec: TableSpec, slice_: Slice | None = None, columns: list[str] | None = None
    ) -> pl.DataFrame:
        cols = columns or spec.column_names
        for c in cols:
            spec.column(c)  # allow-list: only declared columns
        if not self.path.exists():
            return spec.empty_frame().select(cols)
        sql = f"SELECT {', '.join(DUCKDB.quote(c) for c in cols)} FROM {self._name(spec)} AS t"  # noqa: S608 - identifiers from the spec allow-list
        params: list = []
        if slice_ is not None and not slice_.everything:
            pred, named = slice_predicate(spec, slice_, "t", DUCKDB)
            sql += f" WHERE {pred}"
            params = [v for _, v in named]
        con = self.connect(read_only=True)
        try:
            # One connection for the existence check and the read (opening the file is the main cost).
            if not self._exists(con, spec):
                return spec.empty_frame().select(cols)
            table = con.sql(sql, params=params).to_arrow_table()
        finally:
            con.close()
        return conform(spec, pl.from_arrow(table)).select(cols)

    def row_count(self, spec: TableSpec) -> int:
        """``count(*)`` in the database instead of reading every key into memory."""
        if not self.path.exists():
            return 0
        con = self.connect(read_only=True)
        try:
            if not self._exists(con, spec):
                return 0
            return int(con.execute(f"SELECT count(*) FROM {self._name(spec)}").fetchall()[0][0])  # noqa: S608 - identifiers from the spec allow-list
        finally:
            con.close()

    def sql(self, query: str, params: list | None = None) -> pl.DataFrame:
        """Run a read-only query (tests and diagnostics; identifiers must come from specs)."""
        con = self.connect(read_only=True)
        try:
            return pl.from_arrow(con.sql(query, params=params or None).to_arrow_table())
        finally:
            con.close()
