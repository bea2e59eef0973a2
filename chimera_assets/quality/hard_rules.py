"""Rules that need only a table's own rows: the hard (blocking) rules ``keys_not_null``,
``no_duplicate_keys``, ``ohlc_consistent``, ``regime_coverage`` and the STRUCT member checks.
"""

from __future__ import annotations

import polars as pl

from chimera_assets.quality.frames import (
    _id_columns,
    _no_key_offenders,
    _with_partition,
    required_columns,
)
from chimera_assets.quality.registry import (
    OHLC,
    PARTITION,
)
from chimera_assets.schemas import (
    TableSpec,
)
from chimera_assets.warehouse.base import keys_distinct


def null_required_rows(frame: pl.DataFrame, spec: TableSpec) -> pl.DataFrame:
    """Rows with a NULL in a required column; ``null_columns`` names them."""
    cols = [c for c in required_columns(spec) if c in frame.columns]
    if not cols or frame.is_empty():
        return _no_key_offenders(frame, spec, "null_columns", pl.Utf8)
    null_list = pl.concat_str(
        [pl.when(pl.col(c).is_null()).then(pl.lit(c)) for c in cols], separator=",", ignore_nulls=True
    )
    # Filter first: the partition key string is built for the offending rows only.
    f = _with_partition(frame.filter(pl.any_horizontal([pl.col(c).is_null() for c in cols])), spec)
    return (
        f.with_columns(null_list.alias("null_columns"))
        .select(*_id_columns(spec), "null_columns")
    )


def duplicate_key_rows(frame: pl.DataFrame, spec: TableSpec) -> pl.DataFrame:
    """One row per duplicated key, with ``copies`` (>= 2)."""
    key = list(spec.key)
    if frame.is_empty() or keys_distinct(frame, key):
        # As many distinct key hashes as rows: no key repeats (the usual case), nothing to group.
        return _no_key_offenders(frame, spec, "copies", pl.UInt32)
    f = _with_partition(frame, spec)
    return (
        f.group_by([PARTITION, *key])
        .agg(pl.len().alias("copies"))
        .filter(pl.col("copies") > 1)
        .sort([PARTITION, *key], nulls_last=True)
    )


def _ohlc_frame(frame: pl.DataFrame, spec: TableSpec) -> pl.DataFrame | None:
    """Key (+ partition columns) and open/high/low/close/volume: top-level columns, or the matrix's
    ``market_data`` STRUCT. The partition string is added later, to the offending rows only."""
    part = [c for c in (spec.date_column, spec.symbol_column) if c and c in frame.columns]
    base = list(dict.fromkeys([*spec.key, *part]))
    if all(c in frame.columns for c in OHLC):
        vol = [pl.col("volume")] if "volume" in frame.columns else [pl.lit(None, pl.Int64).alias("volume")]
        return frame.select(*base, *OHLC, *vol)
    if "market_data" in frame.columns and isinstance(frame.schema["market_data"], pl.Struct):
        have = {f.name for f in frame.schema["market_data"].fields}
        cols = [
            pl.col("market_data").struct.field(c).alias(c) if c in have else pl.lit(None, pl.Float64).alias(c)
            for c in (*OHLC, "volume")
        ]
        return frame.select(*base, *cols)
    return None


def ohlc_violation_rows(frame: pl.DataFrame, spec: TableSpec, tolerance: float = 0.0) -> pl.DataFrame:
    """Rows breaking low <= open <= high, low <= close <= high, low <= high or volume >= 0.

    NULL values are not compared (a NULL never makes a violation); ``problems`` names the broken
    conditions. ``tolerance`` (price units) allows for rounding; 0 by default (prices are exact).
    """
    f = _ohlc_frame(frame, spec)
    if f is None or f.is_empty():
        return _no_key_offenders(frame, spec, "problems", pl.Utf8)
    o, h, lo, c, v = (pl.col(x) for x in (*OHLC, "volume"))
    t = pl.lit(tolerance)
    conds = {
        "high<low": h < lo - t,
        "open>high": o > h + t,
        "open<low": o < lo - t,
        "close>high": c > h + t,
        "close<low": c < lo - t,
        "volume<0": v < 0,
    }
    problems = pl.concat_str(
        [pl.when(cond.fill_null(False)).then(pl.lit(name)) for name, cond in conds.items()],
        separator=",", ignore_nulls=True,
    )
    bad = pl.any_horizontal([cond.fill_null(False) for cond in conds.values()])
    return _with_partition(f.filter(bad), spec).with_columns(problems.alias("problems")).select(
        *_id_columns(spec), *OHLC, "volume", "problems"
    )


def regime_gap_rows(frame: pl.DataFrame, spec: TableSpec) -> pl.DataFrame:
    """Rows without a complete regime: matrix (``regime`` STRUCT + ``regime_name``) or training table
    (``regime_name`` + ``regime_weight``)."""
    f = _with_partition(frame, spec)
    if "regime" in frame.columns:
        dtype = frame.schema["regime"]
        have = {x.name for x in dtype.fields} if isinstance(dtype, pl.Struct) else set()
        name = pl.col("regime").struct.field("name") if "name" in have else pl.lit(None, pl.Utf8)
        weight = pl.col("regime").struct.field("weight") if "weight" in have else pl.lit(None, pl.Int64)
        flat = pl.col("regime_name") if "regime_name" in frame.columns else name
        f = f.with_columns(_name=name, _weight=weight, _flat=flat)
    elif "regime_name" in frame.columns:
        weight = pl.col("regime_weight") if "regime_weight" in frame.columns else pl.lit(None, pl.Int64)
        f = f.with_columns(_name=pl.col("regime_name"), _weight=weight, _flat=pl.col("regime_name"))
    else:
        return _no_key_offenders(frame, spec, "problem", pl.Utf8)
    problem = (
        pl.when(pl.col("_name").is_null()).then(pl.lit("regime name NULL"))
        .when(pl.col("_weight").is_null()).then(pl.lit("regime weight NULL"))
        .when(pl.col("_flat").is_null() | (pl.col("_flat") != pl.col("_name"))).then(pl.lit("regime_name != regime.name"))
    )
    return (
        f.with_columns(problem.alias("problem"))
        .filter(pl.col("problem").is_not_null())
        .select(*_id_columns(spec), pl.col("_name").alias("regime_name"), pl.col("_weight").alias("regime_weight"),
                "problem")
    )


def struct_member_problems(frame: pl.DataFrame, spec: TableSpec) -> tuple[list[str], pl.DataFrame]:
    """(missing or mistyped STRUCT members as ``"struct.member"``, rows whose STRUCT value is NULL)."""
    missing: list[str] = []
    null_exprs = []
    for col in spec.columns:
        if col.type != "STRUCT":
            continue
        if col.name not in frame.columns:
            missing += [f"{col.name}.{m.name}" for m in col.fields]
            continue
        dtype = frame.schema[col.name]
        have = {f.name: f.dtype for f in dtype.fields} if isinstance(dtype, pl.Struct) else {}
        for m in col.fields:
            if m.name not in have:
                missing.append(f"{col.name}.{m.name}")
            elif have[m.name] != m.polars_dtype():
                missing.append(f"{col.name}.{m.name} ({have[m.name]} instead of {m.polars_dtype()})")
        null_exprs.append(pl.when(pl.col(col.name).is_null()).then(pl.lit(col.name)))
    if not null_exprs or frame.is_empty():
        rows = _no_key_offenders(frame, spec, "null_structs", pl.Utf8)
        return missing, rows
    nulls = pl.concat_str(null_exprs, separator=",", ignore_nulls=True)
    rows = (
        _with_partition(frame, spec)
        .with_columns(nulls.alias("null_structs"))
        .filter(pl.col("null_structs").is_not_null() & (pl.col("null_structs") != ""))
        .select(*_id_columns(spec), "null_structs")
    )
    return missing, rows


def all_null_members(frame: pl.DataFrame, spec: TableSpec) -> list[str]:
    """STRUCT members that are NULL on every row (informative: e.g. golden_zone.* of a root without the
    family, policy.* before any policy event); not a failure."""
    out = []
    if frame.is_empty():
        return out
    for col in spec.columns:
        if col.type != "STRUCT" or col.name not in frame.columns or not isinstance(frame.schema[col.name], pl.Struct):
            continue
        have = {f.name for f in frame.schema[col.name].fields}
        exprs = [pl.col(col.name).struct.field(m.name).is_null().all().alias(m.name) for m in col.fields
                 if m.name in have]
        if exprs:
            row = frame.select(exprs).row(0, named=True)
            out += [f"{col.name}.{m}" for m, all_null in row.items() if all_null]
    return out
