"""Prove a refactor changes no number: run the same `chimera run`s on two git refs and compare every table.

    .venv/bin/python benchmarks/compare_refs.py BASE_REF [NEW_REF]      # NEW_REF defaults to the work tree

Each ref is checked out into a temporary git worktree and run with this repository's .venv
(``PYTHONPATH`` points at the checkout, so its own code is imported), into its own ``CHIMERA_HOME``:

1. the quick-start demo (``--demo``, SYNTHETIC data, ZL + MES, 2024-01-02..2024-06-28);
2. the real Databento batch in ``../shared/data/databento-batch`` (ZL + MES, 2025-01-02..2025-03-31) with the
   real policy events, when that folder exists.

Every table of the two DuckDB warehouses (the ``ops`` ledger and private staging schemas aside) is then
compared row for row, after dropping run-dependent columns (load ids, ingestion and ledger timestamps) and
sorting by every column. Exit 0 when every table is identical, 1 otherwise (the differing tables are named).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import polars as pl

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
VOLATILE = {"load_id", "ingestion_ts", "started_at", "finished_at", "run_id"}
SKIP_SCHEMAS = {"ops", "chimera_staging", "information_schema", "pg_catalog", "main"}


def runs() -> list[tuple[str, list[str]]]:
    out = [("demo", ["--demo", "--roots", "ZL,MES", "--start", "2024-01-02", "--end", "2024-06-28"])]
    batch = SHARED / "databento-batch"
    if batch.is_dir():
        out.append(("real-batch", [
            "--landing-dir", str(batch), "--policy-dir", str(SHARED / "policy-events"),
            "--roots", "ZL,MES", "--start", "2025-01-02", "--end", "2025-03-31",
        ]))
    else:
        print(f"compare_refs: {batch} is absent: comparing the demo run only", file=sys.stderr)
    return out


def checkout(ref: str | None, tmp: Path) -> Path:
    """A worktree of ``ref`` (None: this work tree as it is)."""
    if ref is None:
        return REPO
    path = tmp / f"ref-{ref.replace('/', '_')}"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(path), ref], check=True)
    return path


def run_ref(code: Path, home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHIMERA_", "DAGSTER_"))}
    env.update(CHIMERA_HOME=str(home), PYTHONPATH=str(code))
    for name, args in runs():
        print(f"  {code.name}: chimera run ({name})", flush=True)
        proc = subprocess.run(
            [str(REPO / ".venv" / "bin" / "python"), "-m", "chimera_assets.cli", "run", *args],
            cwd=code, env=env, capture_output=True, text=True,
        )
        if proc.returncode != 0:
            sys.exit(f"compare_refs: chimera run ({name}) failed in {code}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def tables(path: Path) -> dict[str, pl.DataFrame]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
        ).fetchall()
        out = {}
        for schema, name in names:
            if schema in SKIP_SCHEMAS:
                continue
            frame = pl.from_arrow(con.sql(f'SELECT * FROM "{schema}"."{name}"').to_arrow_table())  # noqa: S608 - names read from the catalog
            out[f"{schema}.{name}"] = comparable(frame)
        return out
    finally:
        con.close()


def comparable(frame: pl.DataFrame) -> pl.DataFrame:
    f = frame.drop([c for c in frame.columns if c in VOLATILE])
    for c, t in list(f.schema.items()):
        if isinstance(t, pl.Struct):
            f = f.with_columns(pl.col(c).struct.rename_fields([f"{c}.{x.name}" for x in t.fields])).unnest(c)
    return f.sort(f.columns, nulls_last=True) if f.columns else f


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("base", help="git ref before the change")
    p.add_argument("new", nargs="?", help="git ref after the change (default: the work tree)")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="chimera-compare-"))
    checkouts = []
    try:
        homes = []
        for ref in (args.base, args.new):
            code = checkout(ref, tmp)
            if code != REPO:
                checkouts.append(code)
            home = tmp / f"home-{len(homes)}"
            print(f"{ref or 'work tree'} -> {home}", flush=True)
            run_ref(code, home)
            homes.append(home)
        a, b = (tables(h / "warehouse.duckdb") for h in homes)
        bad = []
        for name in sorted(set(a) | set(b)):
            if name not in a or name not in b:
                bad.append(f"{name}: only in {'base' if name in a else 'new'}")
            elif a[name].columns != b[name].columns:
                bad.append(f"{name}: columns differ {a[name].columns} vs {b[name].columns}")
            elif not a[name].equals(b[name]):
                bad.append(f"{name}: contents differ ({a[name].height} vs {b[name].height} rows)")
            else:
                print(f"  identical  {name:<50} {a[name].height:>8,} rows")
        for line in bad:
            print(f"  DIFFERENT  {line}")
        print(f"{len(set(a) | set(b)) - len(bad)} table(s) identical, {len(bad)} different")
        return 1 if bad else 0
    finally:
        for code in checkouts:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(code)], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
