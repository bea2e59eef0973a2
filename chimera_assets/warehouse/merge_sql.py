"""The MERGE statement, built once for both dialects from a ``TableSpec``.

Identifiers come only from the spec (validated at declaration); every value (slice bounds,
symbols) is a bound parameter. DuckDB and BigQuery share the shape:

    MERGE INTO target t USING staging s ON <key equality>
    WHEN MATCHED THEN UPDATE SET <value columns>
    WHEN NOT MATCHED THEN INSERT (...) VALUES (...)
    WHEN NOT MATCHED BY SOURCE AND (<slice predicate>) THEN DELETE
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from chimera_assets.schemas import TableSpec, check_identifier
from chimera_assets.warehouse.base import Slice


@dataclass(frozen=True)
class Dialect:
    quote: Callable[[str], str]
    #: placeholder for the i-th parameter named ``name``
    param: Callable[[int, str], str]


DUCKDB = Dialect(quote=lambda n: f'"{check_identifier(n)}"', param=lambda i, n: f"${i + 1}")
BIGQUERY = Dialect(quote=lambda n: f"`{check_identifier(n)}`", param=lambda i, n: f"@{n}")


def slice_predicate(spec: TableSpec, slice_: Slice, alias: str, d: Dialect) -> tuple[str, list[tuple[str, Any]]]:
    """SQL predicate selecting ``slice_`` rows of ``alias`` and its (name, value) parameters."""
    if slice_.everything:
        return "TRUE", []
    assert spec.date_column is not None
    params: list[tuple[str, Any]] = []
    parts = []
    for sym, lo, hi in slice_.ranges:
        i = len(params)
        cond = (
            f"{alias}.{d.quote(spec.date_column)} BETWEEN {d.param(i, f'p{i}')} AND {d.param(i + 1, f'p{i + 1}')}"
        )
        params += [(f"p{i}", lo), (f"p{i + 1}", hi)]
        if sym is not None and spec.symbol_column:
            j = len(params)
            cond += f" AND {alias}.{d.quote(spec.symbol_column)} = {d.param(j, f'p{j}')}"
            params.append((f"p{j}", sym))
        parts.append(f"({cond})")
    return "(" + " OR ".join(parts) + ")", params


def merge_statement(
    spec: TableSpec,
    target: str,
    staging: str,
    slice_: Slice | None,
    d: Dialect,
    bounds: tuple[date, date] | None = None,
) -> tuple[str, list[tuple[str, Any]]]:
    """The MERGE text and its parameters. ``target``/``staging`` are already-quoted table names.

    ``bounds`` (first, last date of the staged rows; only without a slice) bounds the match on the
    target's date column, so an upsert reads only the partitions it can touch and satisfies BigQuery's
    ``require_partition_filter``; it deletes nothing."""
    q = d.quote
    on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in spec.key)
    cols = spec.column_names
    sets = ", ".join(f"{q(c)} = s.{q(c)}" for c in spec.value_columns)
    params: list[tuple[str, Any]] = []
    pred = None
    if slice_ is not None:
        pred, params = slice_predicate(spec, slice_, "t", d)
        # The slice also bounds the match: every staged row lies inside it, and it lets BigQuery
        # prune the target's partitions instead of scanning the whole table.
        if not slice_.everything:
            on = f"{on} AND {pred}"
    elif bounds is not None and spec.date_column is not None:
        col = d.quote(spec.date_column)
        on = f"{on} AND t.{col} BETWEEN {d.param(0, 'b0')} AND {d.param(1, 'b1')}"
        params = [("b0", bounds[0]), ("b1", bounds[1])]
    sql = f"MERGE INTO {target} AS t USING {staging} AS s ON {on}\n"
    if sets:
        sql += f"WHEN MATCHED THEN UPDATE SET {sets}\n"
    sql += f"WHEN NOT MATCHED THEN INSERT ({', '.join(q(c) for c in cols)}) "
    sql += f"VALUES ({', '.join(f's.{q(c)}' for c in cols)})\n"
    if pred is not None:
        sql += f"WHEN NOT MATCHED BY SOURCE AND {pred} THEN DELETE"
    return sql, params
