"""Consolidated frame, daily ML matrix and per-root training tables (SPEC 6.5 and 6.7). Pure polars.

Three steps, each a pure function of its input frames:

1. ``build_consolidated``: session bars left-joined with the feature families into the flat
   ``features.consolidated_features`` frame, plus the session-close ``timestamp``.
2. ``build_daily_ml_matrix``: the consolidated frame packed into the STRUCT columns of
   ``features.daily_ml_matrix`` (market_data, pivots, policy, golden_zone, regime).
3. ``chimera_assets.training.targets.build_training_table`` (moved there): one root's matrix rows
   flattened back, plus roll-adjusted forward targets, roll flags, split, purge flags and the weight.

Every feature column of a row uses only data at or before that row's session close; only the label
columns of the training tables (``target_*``, ``target_crosses_roll_*``, ``purged*``) look ahead.
Column names, order and types always come from ``chimera_assets.schemas``. See docs/matrix.md.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import polars as pl

from chimera_assets.schemas import (
    CONSOLIDATED,
    DAILY_ML_MATRIX,
    GOLDEN_ZONE,
    MARKET_FEATURES,
    MATRIX_GOLDEN,
    MATRIX_MARKET,
    MATRIX_PIVOTS,
    MATRIX_POLICY,
    MATRIX_REGIME,
    PIVOTS,
    POLICY_FEATURES,
    SESSION_BARS,
    TableSpec,
    flat_field_name,
)

__all__ = [
    "MATRIX_STRUCTS",
    "SESSION_CLOSE",
    "TEST_START",
    "VAL_START",
    "RegimeCoverageError",
    "build_consolidated",
    "build_daily_ml_matrix",
    "split_expr",
]

# Session close instant, local wall-clock time in the sessions' time zone. 16:00 CT is the CME Globex
# daily halt for equity-index and energy futures (MES trades until 16:00 CT) and is after the 13:20 CT
# grain close (ZL), so every bar of the trade date is known by then; it is also the policy-feature
# cut-off of SPEC 6.4, so the whole row is known at this instant.
SESSION_CLOSE = time(16, 0)

# Split boundaries (SPEC 6.7): train < VAL_START <= val < TEST_START <= test.
VAL_START = date(2023, 1, 1)
TEST_START = date(2024, 1, 1)

MATRIX_STRUCTS = (MATRIX_MARKET, MATRIX_PIVOTS, MATRIX_POLICY, MATRIX_GOLDEN, MATRIX_REGIME)

_KEY = ["symbol", "data_date"]
# Where each consolidated value column comes from: the first input spec that declares it. Computed
# from the schemas so a column added to CONSOLIDATED and to its feature table flows through unchanged.
_SOURCES: tuple[tuple[str, TableSpec], ...] = (
    ("session_bars", SESSION_BARS),
    ("market", MARKET_FEATURES),
    ("pivots", PIVOTS),
    ("policy", POLICY_FEATURES),
    ("golden_zone", GOLDEN_ZONE),
)


def _consolidated_sources() -> dict[str, list[str]]:
    cols: dict[str, list[str]] = {name: [] for name, _ in _SOURCES}
    for c in CONSOLIDATED.value_columns:
        if c == "timestamp":
            continue
        owner = next((name for name, spec in _SOURCES if c in spec.value_columns), None)
        if owner is None:  # a schema edit that this module does not know how to fill
            raise RuntimeError(f"consolidated column {c!r} is declared by none of the feature tables")
        cols[owner].append(c)
    return cols


_CONSOLIDATED_FROM = _consolidated_sources()
# The pivots STRUCT members that are not in the consolidated frame (R3, S3, pivot_roll_flag).
_PIVOT_EXTRAS = [f.name for f in MATRIX_PIVOTS.fields if f.name not in CONSOLIDATED.column_names]


class RegimeCoverageError(ValueError):
    """A matrix date has no regime row (regime coverage must be 100%, SPEC 7)."""


# --- helpers ----------------------------------------------------------------------------------------
def _require(frame: pl.DataFrame, what: str, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} frame lacks columns {missing} (has {frame.columns})")


def _require_unique(frame: pl.DataFrame, what: str, keys: list[str]) -> None:
    """Raise if ``keys`` repeat: a duplicate on the right of a left join would silently add rows."""
    dup = frame.group_by(keys).len().filter(pl.col("len") > 1)
    if dup.height:
        sample = dup.sort(keys).head(5).select(keys).rows()
        raise ValueError(f"{what} frame has {dup.height} duplicate keys {keys}, e.g. {sample}")


def _keyed(frame: pl.DataFrame, what: str, columns: list[str], on_symbol: bool = True) -> pl.DataFrame:
    """``frame`` reduced to its join key (renamed trade_date -> data_date) and ``columns``, typed as
    the consolidated frame declares them, and checked for unique keys."""
    key = ["trade_date", "symbol"] if on_symbol else ["trade_date"]
    _require(frame, what, key + columns)
    schema = CONSOLIDATED.polars_schema()
    out = frame.select(
        pl.col("trade_date").cast(pl.Date).alias("data_date"),
        *([pl.col("symbol").cast(pl.Utf8)] if on_symbol else []),
        *[pl.col(c).cast(schema[c]) for c in columns],
    )
    _require_unique(out, what, ["data_date", "symbol"] if on_symbol else ["data_date"])
    return out


def _to_utc(ts: datetime, what: str) -> datetime:
    if not isinstance(ts, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(ts).__name__}")
    if ts.tzinfo is None:  # a naive instant is ambiguous; refuse rather than guess local vs UTC
        raise ValueError(f"{what} must be time-zone aware (e.g. datetime.now(UTC)), got naive {ts}")
    return ts.astimezone(UTC)


def _session_close_utc(date_col: str, tz: str) -> pl.Expr:
    """16:00 wall clock in ``tz`` on the date, as a UTC instant. DST-aware: 22:00 UTC in CST (winter),
    21:00 UTC in CDT (summer). 16:00 is never inside a DST transition (those happen at 02:00), so
    ``raise`` on ambiguous/non-existent times can only fire for an exotic ``tz``."""
    offset = pl.duration(hours=SESSION_CLOSE.hour, minutes=SESSION_CLOSE.minute)
    local = pl.col(date_col).cast(pl.Datetime("us")) + offset
    return (
        local.dt.replace_time_zone(tz, ambiguous="raise", non_existent="raise")
        .dt.convert_time_zone("UTC")
        .cast(pl.Datetime("us", "UTC"))
    )


def split_expr(date_expr: pl.Expr) -> pl.Expr:
    """'train' (< 2023-01-01), 'val' (2023), 'test' (>= 2024-01-01) for a ``pl.Date`` expression;
    NULL stays NULL."""
    return (
        pl.when(date_expr < pl.lit(VAL_START))
        .then(pl.lit("train"))
        .when(date_expr < pl.lit(TEST_START))
        .then(pl.lit("val"))
        .when(date_expr.is_not_null())
        .then(pl.lit("test"))
        .otherwise(pl.lit(None, dtype=pl.Utf8))
    )


# --- 1. consolidated frame ------------------------------------------------------------------------
def build_consolidated(
    session_bars: pl.DataFrame,
    market: pl.DataFrame,
    pivots: pl.DataFrame,
    golden_zone: pl.DataFrame,
    policy: pl.DataFrame,
    sessions_tz: str = "America/Chicago",
    closes: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The flat ``features.consolidated_features`` frame (SPEC 6.5): exactly ``CONSOLIDATED``'s columns,
    in order, with its types.

    One row per session-bar row: ``symbol`` = root, ``data_date`` = trade_date. ``timestamp`` = the
    root's scheduled session close instant in UTC, from ``closes`` (trade_date, symbol, session_close:
    ``session_state.session_schedule``, early closes included: 13:20 CT for grains, 16:00 CT for equity
    index and energy, ...); without ``closes`` (or for a key it lacks), 16:00 wall clock in
    ``sessions_tz`` (America/Chicago), DST-aware. open/high/low/close (price units) and volume
    (contracts) come from the session bars.

    Feature frames are left-joined, so a missing feature row gives NULLs, never a dropped session:
    ``market`` (vwap, realized_vol_1h, vol_percentile, k_vol), ``pivots`` and ``golden_zone`` on
    (trade_date, symbol); ``policy`` on (trade_date, cutoff = the row's ``timestamp``) when it has a
    ``cutoff`` column (the events before the root's own close, SPEC 6.4), else on trade_date. A root absent from ``golden_zone`` (golden zone is computed for flagged roots only) has
    NULL golden-zone columns. Extra input columns are ignored; a missing one raises ``ValueError``,
    as does a duplicate key in any input (it would duplicate or multiply rows). Output is sorted by
    (symbol, data_date). Empty session bars give an empty, correctly typed frame.
    """
    src = _CONSOLIDATED_FROM
    bars = _keyed(session_bars, "session_bars", src["session_bars"])
    fallback = _session_close_utc("data_date", sessions_tz)
    if closes is not None:
        own = closes.select(pl.col("trade_date").alias("data_date"), "symbol",
                            pl.col("session_close").cast(pl.Datetime("us", "UTC")).alias("_close"))
        bars = bars.join(own.unique(_KEY), on=_KEY, how="left").with_columns(
            pl.coalesce("_close", fallback).alias("timestamp")).drop("_close")
    else:
        bars = bars.with_columns(fallback.alias("timestamp"))
    if "cutoff" in policy.columns:
        pol = policy.rename({"trade_date": "data_date"}) if "trade_date" in policy.columns else policy
        _require(pol, "policy", ["data_date", "cutoff", *src["policy"]])
        _require_unique(pol, "policy", ["data_date", "cutoff"])
        pol = pol.select(pl.col("data_date").cast(pl.Date), pl.col("cutoff").cast(pl.Datetime("us", "UTC"))
                         .alias("timestamp"), *src["policy"])
        policy_join = (pol, ["data_date", "timestamp"])
    else:
        policy_join = (_keyed(policy, "policy", src["policy"], on_symbol=False), ["data_date"])
    out = (
        bars.join(_keyed(market, "market", src["market"]), on=_KEY, how="left")
        .join(_keyed(pivots, "pivots", src["pivots"]), on=_KEY, how="left")
        .join(policy_join[0], on=policy_join[1], how="left")
        .join(_keyed(golden_zone, "golden_zone", src["golden_zone"]), on=_KEY, how="left")
    )
    schema = CONSOLIDATED.polars_schema()
    return out.select([pl.col(c).cast(t) for c, t in schema.items()]).sort(_KEY)


# --- 2. daily ML matrix --------------------------------------------------------------------------
def build_daily_ml_matrix(
    consolidated: pl.DataFrame,
    pivots: pl.DataFrame,
    regimes_for_dates: pl.DataFrame,
    ingestion_ts: datetime,
) -> pl.DataFrame:
    """``features.daily_ml_matrix`` (SPEC 6.5): exactly ``DAILY_ML_MATRIX``'s columns and types.

    Each STRUCT member is taken from the consolidated column ``flat_field_name(struct, member)``
    (``golden_zone.state`` <- golden_zone_state, ``regime.name``/``weight`` <- regime_name/weight).
    The pivots STRUCT also carries the appended R3, S3 and pivot_roll_flag, left-joined from
    ``pivots`` on (trade_date, symbol) (NULL where the pivots frame has no row). STRUCT values are never
    NULL themselves; members are NULL where the feature is (e.g. golden_zone.* for a non-golden root).

    ``regimes_for_dates`` has one row per date: ``date``, ``regime_name``, ``regime_weight`` (50-1000
    scale), already resolved to 'baseline'/100 outside every regime. ``regime`` = {name, weight,
    vol_percentile, k_vol} (the last two from the market features); ``regime_name`` copies
    regime.name for clustering. ``ingestion_ts`` (time-zone aware; stored in UTC) is stamped on every
    row.

    Raises ``RegimeCoverageError`` when a data_date has no regime row or a NULL name/weight (coverage
    must be 100%), ``ValueError`` on missing columns, duplicate keys or a naive ``ingestion_ts``.
    """
    ts = _to_utc(ingestion_ts, "ingestion_ts")
    _require(consolidated, "consolidated", CONSOLIDATED.column_names)
    cons = consolidated.select([pl.col(c).cast(t) for c, t in CONSOLIDATED.polars_schema().items()])
    _require_unique(cons, "consolidated", _KEY)

    piv_schema = PIVOTS.polars_schema()
    _require(pivots, "pivots", ["trade_date", "symbol", *_PIVOT_EXTRAS])
    piv = pivots.select(
        pl.col("trade_date").cast(pl.Date).alias("data_date"),
        pl.col("symbol").cast(pl.Utf8),
        *[pl.col(c).cast(piv_schema[c]) for c in _PIVOT_EXTRAS],
    )
    _require_unique(piv, "pivots", _KEY)

    _require(regimes_for_dates, "regimes_for_dates", ["date", "regime_name", "regime_weight"])
    reg = regimes_for_dates.select(
        pl.col("date").cast(pl.Date).alias("data_date"),
        pl.col("regime_name").cast(pl.Utf8),
        pl.col("regime_weight").cast(pl.Int64),
    )
    _require_unique(reg, "regimes_for_dates", ["data_date"])

    df = cons.join(piv, on=_KEY, how="left").join(reg, on="data_date", how="left")
    uncovered = (
        df.filter(pl.col("regime_name").is_null() | pl.col("regime_weight").is_null())
        .get_column("data_date")
        .unique()
        .sort()
    )
    if uncovered.len():
        raise RegimeCoverageError(
            f"{uncovered.len()} matrix dates have no regime (coverage must be 100%): "
            f"{[d.isoformat() for d in uncovered.head(10).to_list()]}"
            + (" ..." if uncovered.len() > 10 else "")
        )

    structs = [
        pl.struct(
            [pl.col(flat_field_name(s.name, f.name)).cast(f.polars_dtype()).alias(f.name) for f in s.fields]
        ).alias(s.name)
        for s in MATRIX_STRUCTS
    ]
    out = df.select(
        "symbol",
        "data_date",
        "timestamp",
        *structs,
        pl.col("regime_name"),
        pl.lit(ts, dtype=pl.Datetime("us", "UTC")).alias("ingestion_ts"),
    )
    schema = DAILY_ML_MATRIX.polars_schema()
    return out.select([pl.col(c).cast(t) for c, t in schema.items()]).sort(_KEY)
