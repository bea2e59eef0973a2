"""Helpers shared by the rules: partition keys of rows, empty offender frames, JSON-able metadata.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import polars as pl

from chimera_assets.quality.registry import (
    MAX_OFFENDING_KEYS,
    PARTITION,
)
from chimera_assets.schemas import (
    TableSpec,
)
from chimera_assets.trade_calendar import on_or_after_weekday_expr


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float):
        return None if math.isnan(v) or math.isinf(v) else round(v, 6)
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def rows_as_dicts(frame: pl.DataFrame, limit: int = MAX_OFFENDING_KEYS) -> list[dict[str, Any]]:
    return [{k: _jsonable(v) for k, v in row.items()} for row in frame.head(limit).iter_rows(named=True)]


def partition_key_expr(date_col: str | None, symbol_col: str | None) -> pl.Expr:
    """Dagster partition key of each row: ``"date|symbol"``, ``"date"`` or NULL (unpartitioned)."""
    if date_col is None:
        return pl.lit(None, pl.Utf8).alias(PARTITION)
    # A weekend date belongs to the next Monday's trade-date partition.
    d = on_or_after_weekday_expr(date_col).dt.strftime("%Y-%m-%d")
    if symbol_col is None:
        return d.alias(PARTITION)
    return (d + pl.lit("|") + pl.col(symbol_col).cast(pl.Utf8)).alias(PARTITION)


def partition_key(d: date, symbol: str | None) -> str:
    return d.isoformat() if symbol is None else f"{d.isoformat()}|{symbol}"


def _with_partition(frame: pl.DataFrame, spec: TableSpec) -> pl.DataFrame:
    return frame.with_columns(partition_key_expr(spec.date_column, spec.symbol_column))


def _id_columns(spec: TableSpec) -> list[str]:
    return [PARTITION, *spec.key]


def _empty_offenders(extra: dict[str, pl.DataType] | None = None) -> pl.DataFrame:
    return pl.DataFrame(schema={PARTITION: pl.Utf8, **(extra or {})})


def _no_key_offenders(frame: pl.DataFrame, spec: TableSpec, column: str, dtype: pl.DataType) -> pl.DataFrame:
    """No offending rows, with the columns a rule's offenders have: partition, the key (typed as in
    ``frame``, Utf8 when absent) and the rule's own ``column``."""
    return _empty_offenders({**{k: frame.schema.get(k, pl.Utf8) for k in spec.key}, column: dtype})


def required_columns(spec: TableSpec) -> list[str]:
    """The key plus every column declared NOT NULL."""
    out = list(spec.key)
    out += [c.name for c in spec.columns if not c.nullable and c.name not in out]
    return out
