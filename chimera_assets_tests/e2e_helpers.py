"""Run the main job (the same code path as ``chimera run``) inside a test, and compare warehouses."""

from __future__ import annotations

from datetime import date

import dagster as dg
import polars as pl

from chimera_assets.definitions import build_definitions
from chimera_assets.lib.runner import RunSummary, run_graph
from chimera_assets.schemas import ALL_TABLES, TableSpec, training_table
from chimera_assets.settings import get_settings
from chimera_assets.warehouse import Warehouse, get_warehouse


def run_main_job(start: date, end: date, roots: list[str], lines: list[str] | None = None) -> tuple[RunSummary, Warehouse]:
    wh = get_warehouse(get_settings())
    out = lines if lines is not None else []
    summary = run_graph(build_definitions(), start, end, roots, dg.DagsterInstance.ephemeral(), wh,
                        progress=out.append)
    assert summary.success, "\n".join(out) + "\n" + "\n".join(s.error or "" for s in summary.stages)
    return summary, wh


def comparable(spec: TableSpec, frame: pl.DataFrame) -> pl.DataFrame:
    """Drop run-dependent columns (load ids, ingestion timestamps), unnest STRUCTs, sort by all columns."""
    f = frame.drop([c for c in spec.volatile_columns if c in frame.columns])
    structs = [c for c, t in f.schema.items() if isinstance(t, pl.Struct)]
    for c in structs:
        f = f.with_columns(pl.col(c).struct.rename_fields([f"{c}.{n.name}" for n in f.schema[c].fields])).unnest(c)
    return f.sort(f.columns, nulls_last=True)


def data_tables(roots: list[str]) -> list[TableSpec]:
    return [t for t in ALL_TABLES.values() if t.schema != "ops"] + [training_table(r) for r in roots]


def assert_frames_close(a: pl.DataFrame, b: pl.DataFrame, what: str, tol: float = 1e-9) -> None:
    assert a.columns == b.columns, f"{what}: columns differ"
    assert a.height == b.height, f"{what}: {a.height} vs {b.height} rows"
    for c in a.columns:
        x, y = a[c], b[c]
        if x.dtype.is_float():
            diff = (x - y).abs()
            bad = ((diff > tol * (1 + y.abs())) | (x.is_null() != y.is_null())).fill_null(False)
            assert not bad.any(), f"{what}.{c}: {int(bad.sum())} values differ beyond {tol}"
        else:
            assert x.equals(y, check_names=False) or (x == y).fill_null(x.is_null() & y.is_null()).all(), \
                f"{what}.{c}: values differ"
