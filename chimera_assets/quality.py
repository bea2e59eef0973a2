"""Data quality rules (SPEC 7): pure functions over polars frames, no Dagster.

Each rule finds the *offending rows* of a frame (a polars frame with a ``partition`` column holding
the Dagster partition key the row belongs to, ``"2024-01-03|ZL"``, ``"2024-01-03"`` or NULL for
unpartitioned tables) and ``outcome``/``outcomes_by_partition`` turn them into ``CheckOutcome``s:
passed, severity and a JSON-able metadata dict (counts, thresholds, up to 20 offending keys).

Hard rules (blocking, severity ERROR; also enforced before publishing by the write audit):
``keys_not_null``, ``no_duplicate_keys``, ``ohlc_consistent``, ``regime_coverage``.
Soft rules: ``struct_members_present`` (ERROR, not blocking), ``no_missing_sessions``,
``flips_and_thin_sessions``, ``no_outlier_returns``, ``matrix_freshness`` (WARN).

``evaluate_rule`` runs a rule against a warehouse for a set of partitions (or the whole table); the
Dagster checks (``chimera_assets.checks``) and the dashboard (``ops.data_quality_report``) both use it,
so they always agree. See docs/data_quality.md.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

import polars as pl

from chimera_assets.schemas import (
    CONSOLIDATED,
    DAILY_ML_MATRIX,
    DEFINITIONS,
    GOLDEN_ZONE,
    MARKET_FEATURES,
    OHLCV_1D,
    OHLCV_1H,
    OHLCV_1M,
    PIVOTS,
    POLICY_FEATURES,
    SESSION_BARS,
    STATISTICS,
    TableSpec,
)
from chimera_assets.warehouse.base import Slice, Warehouse, keys_distinct

MAX_OFFENDING_KEYS = 20
PARTITION = "partition"
OHLC = ("open", "high", "low", "close")


class Severity(StrEnum):
    ERROR = "ERROR"
    WARN = "WARN"


@dataclass(frozen=True)
class Rule:
    name: str
    severity: Severity
    blocking: bool
    description: str


RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule("keys_not_null", Severity.ERROR, True, "Required columns (the key and NOT NULL columns) are never NULL."),
        Rule("no_duplicate_keys", Severity.ERROR, True, "No two rows share the table's key."),
        Rule(
            "ohlc_consistent", Severity.ERROR, True,
            "low <= open <= high, low <= close <= high and volume >= 0 (NULL prices are not compared).",
        ),
        Rule(
            "regime_coverage", Severity.ERROR, True,
            "Every row has a regime (name and weight non-NULL, regime_name equal to regime.name): 100% coverage.",
        ),
        Rule(
            "struct_members_present", Severity.ERROR, False,
            "Every STRUCT column has every declared member with its type, and no STRUCT value is NULL.",
        ),
        Rule(
            "no_missing_sessions", Severity.WARN, False,
            "Every session the root's CME calendar (pandas_market_calendars) expects has a session bar.",
        ),
        Rule(
            "flips_and_thin_sessions", Severity.WARN, False,
            "No one-day contract flip (A -> B -> A) and no thin session (volume < ratio x median of the "
            "previous sessions).",
        ),
        Rule(
            "no_outlier_returns", Severity.WARN, False,
            "|log return of the session close| <= k x daily vol (previous session's rv20 / sqrt(252)); "
            "returns across a contract change are not compared.",
        ),
        Rule(
            "matrix_freshness", Severity.WARN, False,
            "The latest matrix date of each root lags the latest closed CME session by at most N sessions.",
        ),
    )
}
HARD_RULES = ("keys_not_null", "no_duplicate_keys", "ohlc_consistent", "regime_coverage")


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds. Environment overrides: CHIMERA_QUALITY_OUTLIER_K, CHIMERA_QUALITY_THIN_RATIO,
    CHIMERA_QUALITY_THIN_WINDOW, CHIMERA_QUALITY_FRESHNESS_LAG, CHIMERA_QUALITY_PER_PARTITION_LIMIT,
    CHIMERA_QUALITY_AS_OF (ISO instant used as "now" by the freshness rule)."""

    outlier_k: float = 6.0
    thin_ratio: float = 0.2
    thin_window: int = 20
    thin_min_prior: int = 5
    # A thin session on a calendar early close (holiday hours) is expected: not reported, only counted.
    thin_ignore_early_close: bool = True
    freshness_max_lag: int = 3
    # Dagster range runs up to this many partitions get one evaluation per partition; larger ones one
    # summary evaluation plus one per failing partition (see docs/data_quality.md).
    per_partition_limit: int = 50
    as_of: datetime | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> QualityConfig:
        env = os.environ if env is None else env

        def num(name: str, cast, default):
            raw = env.get(name)
            if raw in (None, ""):
                return default
            try:
                value = cast(raw)
            except ValueError as exc:
                raise ValueError(f"{name}={raw!r} is not a valid {cast.__name__}") from exc
            if value <= 0:
                raise ValueError(f"{name}={raw!r} must be positive")
            return value

        as_of = None
        if env.get("CHIMERA_QUALITY_AS_OF"):
            as_of = datetime.fromisoformat(env["CHIMERA_QUALITY_AS_OF"])
            if as_of.tzinfo is None:
                as_of = as_of.replace(tzinfo=UTC)
        return cls(
            outlier_k=num("CHIMERA_QUALITY_OUTLIER_K", float, cls.outlier_k),
            thin_ratio=num("CHIMERA_QUALITY_THIN_RATIO", float, cls.thin_ratio),
            thin_window=num("CHIMERA_QUALITY_THIN_WINDOW", int, cls.thin_window),
            freshness_max_lag=num("CHIMERA_QUALITY_FRESHNESS_LAG", int, cls.freshness_max_lag),
            per_partition_limit=num("CHIMERA_QUALITY_PER_PARTITION_LIMIT", int, cls.per_partition_limit),
            as_of=as_of,
        )


@dataclass(frozen=True)
class CheckOutcome:
    """One rule's result over a set of rows (a partition, a run's partitions or a whole table)."""

    rule: str
    passed: bool
    severity: Severity
    metadata: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def offending_keys(self) -> list[dict[str, Any]]:
        return list(self.metadata.get("offending_keys", []))


# --- helpers --------------------------------------------------------------------------------------
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


def owner_date_expr(col: str) -> pl.Expr:
    """The trade-date partition a calendar date belongs to: a weekend day belongs to the next Monday."""
    d = pl.col(col)
    wd = d.dt.weekday()
    return pl.when(wd == 6).then(d + timedelta(days=2)).when(wd == 7).then(d + timedelta(days=1)).otherwise(d)


def partition_key_expr(date_col: str | None, symbol_col: str | None) -> pl.Expr:
    """Dagster partition key of each row: ``"date|symbol"``, ``"date"`` or NULL (unpartitioned)."""
    if date_col is None:
        return pl.lit(None, pl.Utf8).alias(PARTITION)
    d = owner_date_expr(date_col).dt.strftime("%Y-%m-%d")
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


def required_columns(spec: TableSpec) -> list[str]:
    """The key plus every column declared NOT NULL."""
    out = list(spec.key)
    out += [c.name for c in spec.columns if not c.nullable and c.name not in out]
    return out


# --- hard rules -----------------------------------------------------------------------------------
def null_required_rows(frame: pl.DataFrame, spec: TableSpec) -> pl.DataFrame:
    """Rows with a NULL in a required column; ``null_columns`` names them."""
    cols = [c for c in required_columns(spec) if c in frame.columns]
    if not cols or frame.is_empty():
        return _empty_offenders({**{k: frame.schema.get(k, pl.Utf8) for k in spec.key}, "null_columns": pl.Utf8})
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
        return _empty_offenders({**{k: frame.schema.get(k, pl.Utf8) for k in key}, "copies": pl.UInt32})
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
        return _empty_offenders({**{k: frame.schema.get(k, pl.Utf8) for k in spec.key}, "problems": pl.Utf8})
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
        return _empty_offenders({**{k: frame.schema.get(k, pl.Utf8) for k in spec.key}, "problem": pl.Utf8})
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
        rows = _empty_offenders({**{k: frame.schema.get(k, pl.Utf8) for k in spec.key}, "null_structs": pl.Utf8})
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


# --- calendar ---------------------------------------------------------------------------------------
@lru_cache(maxsize=256)
def _valid_days(calendar: str, start: date, end: date) -> tuple[date, ...]:
    import pandas_market_calendars as mcal

    days = mcal.get_calendar(calendar).valid_days(start.isoformat(), end.isoformat())
    return tuple(d.date() for d in days)


def expected_sessions(calendar: str, start: date, end: date) -> list[date]:
    """Trade dates in [start, end] on which the CME calendar ``calendar`` (a pandas_market_calendars
    name, e.g. CME_Agriculture) has a session, early closes included."""
    if start > end:
        return []
    return list(_valid_days(calendar, start, end))


@lru_cache(maxsize=256)
def _early_closes(calendar: str, start: date, end: date) -> tuple[date, ...]:
    import pandas_market_calendars as mcal

    cal = mcal.get_calendar(calendar)
    sched = cal.schedule(start.isoformat(), end.isoformat())
    return tuple(d.date() for d in cal.early_closes(sched).index)


def early_close_sessions(calendar: str, start: date, end: date) -> list[date]:
    """Sessions in [start, end] that the calendar closes early (holiday hours)."""
    return [] if start > end else list(_early_closes(calendar, start, end))


def early_close_keys(sessions: pl.DataFrame, calendars: Mapping[str, str]) -> set[tuple[date, str]]:
    """(trade_date, root) pairs of ``sessions`` (columns trade_date, symbol) that are early closes."""
    out: set[tuple[date, str]] = set()
    if sessions.is_empty():
        return out
    for (root,), sub in sessions.group_by("symbol"):
        cal = calendars.get(root)
        if cal is not None:
            out |= {(d, root) for d in early_close_sessions(cal, sub["trade_date"].min(), sub["trade_date"].max())}
    return out


@lru_cache(maxsize=64)
def _session_closes(calendar: str, day: date) -> tuple[tuple[date, datetime], ...]:
    """(trade date, close in UTC) of the sessions from 20 days before ``day`` to the day after.
    Cached per calendar and day: building a schedule costs ~0.1 s and every root asks."""
    import pandas_market_calendars as mcal

    sched = mcal.get_calendar(calendar).schedule(
        (day - timedelta(days=20)).isoformat(), (day + timedelta(days=1)).isoformat()
    )
    return tuple((d.date(), c.to_pydatetime().astimezone(UTC)) for d, c in zip(sched.index, sched["market_close"],
                                                                                strict=True))


def latest_closed_session(calendar: str, as_of: datetime) -> date | None:
    """The last trade date whose session closed at or before ``as_of``."""
    as_of = as_of.astimezone(UTC)
    closed = [d for d, close in _session_closes(calendar, as_of.date()) if close <= as_of]
    return closed[-1] if closed else None


def expected_partitions(
    partitions: Iterable[tuple[date, str]],
    calendars: Mapping[str, str],
    starts: Mapping[str, date] | None = None,
) -> set[tuple[date, str]]:
    """The (trade_date, root) pairs among ``partitions`` on which the root's calendar has a session
    (roots without a calendar and dates before a root's start are not expected)."""
    by_root: dict[str, list[date]] = {}
    for d, s in set(partitions):
        by_root.setdefault(s, []).append(d)
    out: set[tuple[date, str]] = set()
    for root, days in by_root.items():
        cal = calendars.get(root)
        if cal is None:
            continue
        expected = set(expected_sessions(cal, min(days), max(days)))
        start = (starts or {}).get(root)
        out |= {(d, root) for d in days if d in expected and (start is None or d >= start)}
    return out


def missing_session_rows(
    sessions: pl.DataFrame,
    partitions: Iterable[tuple[date, str]],
    calendars: Mapping[str, str],
    starts: Mapping[str, date] | None = None,
) -> pl.DataFrame:
    """(trade_date, symbol) partitions the root's calendar expects that have no row in ``sessions``
    (columns trade_date, symbol). Roots without a calendar, and dates before a root's start, are skipped."""
    schema = {PARTITION: pl.Utf8, "trade_date": pl.Date, "symbol": pl.Utf8, "calendar": pl.Utf8}
    have = set(zip(sessions["trade_date"].to_list(), sessions["symbol"].to_list(), strict=True))
    rows = [
        (partition_key(d, s), d, s, calendars[s])
        for d, s in expected_partitions(partitions, calendars, starts)
        if (d, s) not in have
    ]
    return pl.DataFrame(rows, schema=schema, orient="row").sort("symbol", "trade_date")


def unexpected_session_rows(sessions: pl.DataFrame, calendars: Mapping[str, str]) -> pl.DataFrame:
    """Session bars on dates the calendar says are closed (informational; never a failure)."""
    out = []
    for root in sorted(set(sessions["symbol"].to_list())):
        cal = calendars.get(root)
        days = sessions.filter(pl.col("symbol") == root)["trade_date"]
        if cal is None or days.is_empty():
            continue
        expected = set(expected_sessions(cal, days.min(), days.max()))
        out += [{"trade_date": d.isoformat(), "symbol": root} for d in days.to_list() if d not in expected]
    return pl.DataFrame(out, schema={"trade_date": pl.Utf8, "symbol": pl.Utf8})


# --- flips, thin sessions, outliers ----------------------------------------------------------------
def flip_and_thin_rows(
    session_bars: pl.DataFrame,
    config: QualityConfig | None = None,
    early_closes: set[tuple[date, str]] | None = None,
) -> pl.DataFrame:
    """Sessions that are a one-day contract flip and/or thin, from columns trade_date, symbol,
    instrument_id, volume (any order, several roots).

    one_day_flip: instrument differs from the previous session's and the next session returns to the
    previous session's instrument (A -> B -> A); it needs the next session, so the last session of a
    root is never a flip yet. thin: volume < thin_ratio x median volume of the previous thin_window
    sessions (at least thin_min_prior of them), the session-bar definition. ``kind`` is
    "one_day_flip", "thin" or "one_day_flip+thin"; ``next_date`` is the session after.
    """
    cfg = config or QualityConfig()
    schema = {
        PARTITION: pl.Utf8, "trade_date": pl.Date, "symbol": pl.Utf8, "kind": pl.Utf8, "instrument_id": pl.Int64,
        "prev_instrument_id": pl.Int64, "next_instrument_id": pl.Int64, "volume": pl.Int64,
        "median_prior_volume": pl.Float64, "next_date": pl.Date,
    }
    if session_bars.is_empty():
        return pl.DataFrame(schema=schema)
    order = {"partition_by": "symbol", "order_by": "trade_date"}
    inst = pl.col("instrument_id")
    f = session_bars.select(
        pl.col("trade_date").cast(pl.Date), pl.col("symbol").cast(pl.Utf8), inst.cast(pl.Int64),
        pl.col("volume").cast(pl.Int64),
    ).sort("symbol", "trade_date")
    f = f.with_columns(
        prev_instrument_id=inst.shift(1).over(**order),
        next_instrument_id=inst.shift(-1).over(**order),
        next_date=pl.col("trade_date").shift(-1).over(**order),
        median_prior_volume=pl.col("volume").cast(pl.Float64).shift(1)
        .rolling_median(cfg.thin_window, min_samples=cfg.thin_min_prior).over(**order),
    )
    flip = (
        (inst != pl.col("prev_instrument_id")) & (pl.col("next_instrument_id") == pl.col("prev_instrument_id"))
    ).fill_null(False)
    thin = (pl.col("volume") < cfg.thin_ratio * pl.col("median_prior_volume")).fill_null(False)
    if early_closes and cfg.thin_ignore_early_close:
        ec = pl.DataFrame(sorted(early_closes), schema={"trade_date": pl.Date, "symbol": pl.Utf8}, orient="row")
        f = f.join(ec.with_columns(_early=pl.lit(True)), on=["trade_date", "symbol"], how="left")
        thin = thin & ~pl.col("_early").fill_null(False)
    kind = (
        pl.when(flip & thin).then(pl.lit("one_day_flip+thin"))
        .when(flip).then(pl.lit("one_day_flip"))
        .when(thin).then(pl.lit("thin"))
    )
    return (
        f.with_columns(kind.alias("kind"), partition_key_expr("trade_date", "symbol"))
        .filter(pl.col("kind").is_not_null())
        .select(list(schema))
    )


def outlier_return_rows(
    session_bars: pl.DataFrame,
    market_features: pl.DataFrame,
    config: QualityConfig | None = None,
    partitions: Iterable[str] | None = None,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Sessions whose close-to-close log return exceeds k x the daily volatility known before it.

    r(D) = ln(close_D / close_prev) over consecutive sessions of one root and the SAME instrument
    (a return across a roll compares two contracts, so it is skipped); sigma(D) = rv20 of the previous
    session / sqrt(252) (rv20 is annualised); outlier when |r| > k x sigma. Returns the offending rows
    and counts: returns_compared, skipped_roll, skipped_no_vol. ``partitions`` limits both to those
    partition keys (the frames may hold earlier sessions as history).
    """
    cfg = config or QualityConfig()
    schema = {
        PARTITION: pl.Utf8, "trade_date": pl.Date, "symbol": pl.Utf8, "instrument_id": pl.Int64,
        "close": pl.Float64, "prev_close": pl.Float64, "log_return": pl.Float64, "daily_vol": pl.Float64,
        "z": pl.Float64, "k": pl.Float64,
    }
    counts = {"returns_compared": 0, "skipped_roll": 0, "skipped_no_vol": 0}
    if session_bars.is_empty():
        return pl.DataFrame(schema=schema), counts
    order = {"partition_by": "symbol", "order_by": "trade_date"}
    f = (
        session_bars.select(
            pl.col("trade_date").cast(pl.Date), pl.col("symbol").cast(pl.Utf8),
            pl.col("instrument_id").cast(pl.Int64), pl.col("close").cast(pl.Float64),
        )
        .join(
            market_features.select(pl.col("trade_date").cast(pl.Date), pl.col("symbol").cast(pl.Utf8),
                                   pl.col("rv20").cast(pl.Float64)),
            on=["trade_date", "symbol"], how="left",
        )
        .sort("symbol", "trade_date")
        .with_columns(
            prev_close=pl.col("close").shift(1).over(**order),
            _prev_inst=pl.col("instrument_id").shift(1).over(**order),
            daily_vol=pl.col("rv20").shift(1).over(**order) / math.sqrt(252),
        )
        .filter(pl.col("prev_close").is_not_null())
        .with_columns(partition_key_expr("trade_date", "symbol"))
    )
    if partitions is not None:
        f = f.filter(pl.col(PARTITION).is_in(list(partitions)))
    same = f.filter(pl.col("instrument_id") == pl.col("_prev_inst"))
    counts["skipped_roll"] = f.height - same.height
    ok = same.filter(
        (pl.col("close") > 0) & (pl.col("prev_close") > 0) & (pl.col("daily_vol") > 0)
    )
    counts["skipped_no_vol"] = same.height - ok.height
    counts["returns_compared"] = ok.height
    out = ok.with_columns(log_return=(pl.col("close") / pl.col("prev_close")).log()).with_columns(
        z=pl.col("log_return") / pl.col("daily_vol"), k=pl.lit(cfg.outlier_k)
    )
    out = out.filter(pl.col("z").abs() > cfg.outlier_k)
    return out.select(list(schema)), counts


def freshness_outcome(
    latest_by_root: Mapping[str, date],
    calendars: Mapping[str, str],
    as_of: datetime,
    max_lag: int = 3,
) -> CheckOutcome:
    """Lag, in expected CME sessions, between each root's latest matrix date and the latest session
    closed at ``as_of``; fails (WARN) when a root lags by more than ``max_lag`` sessions. Roots
    without any matrix row are listed but not judged (never loaded is not stale)."""
    rule = RULES["matrix_freshness"]
    per_root: dict[str, dict[str, Any]] = {}
    stale = []
    for root in sorted(latest_by_root):
        latest = latest_by_root[root]
        cal = calendars.get(root, "CME_Agriculture")
        expected = latest_closed_session(cal, as_of)
        lag = 0 if expected is None or expected <= latest else len(
            [d for d in expected_sessions(cal, latest + timedelta(days=1), expected)]
        )
        per_root[root] = {"latest_date": latest.isoformat(),
                          "latest_expected": expected.isoformat() if expected else None, "lag_sessions": lag}
        if lag > max_lag:
            stale.append({"partition": partition_key(latest, root), "symbol": root, "latest_date": latest.isoformat(),
                          "latest_expected": expected.isoformat() if expected else None, "lag_sessions": lag})
    meta = {
        "as_of": as_of.isoformat(),
        "max_lag_sessions": max_lag,
        "roots_checked": len(per_root),
        "roots_stale": len(stale),
        "max_lag_observed": max((r["lag_sessions"] for r in per_root.values()), default=0),
        "per_root": per_root,
        "offending_keys": stale[:MAX_OFFENDING_KEYS],
    }
    return CheckOutcome(rule.name, not stale, rule.severity, meta, rule.description)


# --- outcomes ---------------------------------------------------------------------------------------
def outcome(
    rule: str,
    offenders: pl.DataFrame,
    rows_checked: int,
    extra: Mapping[str, Any] | None = None,
    partitions_checked: int | None = None,
) -> CheckOutcome:
    """Summary outcome of ``rule`` over a set of rows: passes when ``offenders`` is empty."""
    r = RULES[rule]
    meta: dict[str, Any] = {"rows_checked": int(rows_checked), "offending_rows": offenders.height}
    if partitions_checked is not None:
        failed = offenders[PARTITION].drop_nulls().unique().sort() if PARTITION in offenders.columns else pl.Series([])
        meta["partitions_checked"] = int(partitions_checked)
        meta["partitions_failed"] = failed.len()
        meta["failed_partitions"] = failed.head(MAX_OFFENDING_KEYS).to_list()
    meta.update(_jsonable(dict(extra or {})))
    meta["offending_keys"] = rows_as_dicts(offenders)
    return CheckOutcome(rule, offenders.height == 0, r.severity, meta, r.description)


def outcomes_by_partition(
    rule: str,
    offenders: pl.DataFrame,
    partitions: Iterable[str],
    row_counts: Mapping[str, int],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, CheckOutcome]:
    """One outcome per partition key. Offenders with a NULL partition (a NULL date/symbol) count in
    every partition, so they are never lost."""
    parts = list(dict.fromkeys(partitions))
    grouped: dict[str | None, pl.DataFrame] = {}
    if offenders.height:
        for (pk,), sub in offenders.group_by(PARTITION, maintain_order=True):
            grouped[pk] = sub
    orphans = grouped.get(None)
    out = {}
    for pk in parts:
        sub = grouped.get(pk)
        if orphans is not None:
            sub = orphans if sub is None else pl.concat([sub, orphans], how="vertical_relaxed")
        if sub is None:
            sub = offenders.clear()
        out[pk] = outcome(rule, sub, row_counts.get(pk, 0), extra)
    return out


# --- rule evaluation against a warehouse ---------------------------------------------------------------
RAW_TABLES = (OHLCV_1M, OHLCV_1H, OHLCV_1D, STATISTICS, DEFINITIONS)
PARTITIONED_FEATURE_TABLES = (SESSION_BARS, MARKET_FEATURES, PIVOTS, GOLDEN_ZONE, CONSOLIDATED, DAILY_ML_MATRIX)


def rules_for(spec: TableSpec) -> list[str]:
    """The partition-level rules checked on a table (``matrix_freshness`` is table-level, separate)."""
    names = spec.column_names
    rules = ["keys_not_null", "no_duplicate_keys"]
    if all(c in names for c in OHLC) or "market_data" in names:
        rules.append("ohlc_consistent")
    if "regime" in names or "regime_name" in names:
        rules.append("regime_coverage")
    if any(c.type == "STRUCT" for c in spec.columns):
        rules.append("struct_members_present")
    if spec.fqn == SESSION_BARS.fqn:
        rules += ["no_missing_sessions", "flips_and_thin_sessions"]
    if spec.fqn == MARKET_FEATURES.fqn:
        rules.append("no_outlier_returns")
    return rules


def hard_rules_for(spec: TableSpec) -> list[str]:
    return [r for r in rules_for(spec) if r in HARD_RULES]


@dataclass
class RuleEvaluation:
    """A rule's offending rows over a set of partitions, with the rows counted per partition."""

    rule: str
    table: str
    offenders: pl.DataFrame
    partitions: list[str | None]
    row_counts: dict[str | None, int]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_checked(self) -> int:
        return sum(self.row_counts.values())

    def summary(self) -> CheckOutcome:
        parts = [p for p in self.partitions if p is not None]
        return outcome(self.rule, self.offenders, self.rows_checked, {"table": self.table, **self.extra},
                       partitions_checked=len(parts) if parts else None)

    def by_partition(self) -> dict[str, CheckOutcome]:
        return outcomes_by_partition(self.rule, self.offenders, [p for p in self.partitions if p is not None],
                                     {k: v for k, v in self.row_counts.items() if k is not None},
                                     {"table": self.table, **self.extra})


def frame_rule_offenders(rule: str, spec: TableSpec, frame: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Offenders of a rule that needs only the table's own rows (the hard rules, struct members)."""
    if rule == "keys_not_null":
        return null_required_rows(frame, spec), {"required_columns": required_columns(spec)}
    if rule == "no_duplicate_keys":
        return duplicate_key_rows(frame, spec), {"key": list(spec.key)}
    if rule == "ohlc_consistent":
        return ohlc_violation_rows(frame, spec), {}
    if rule == "regime_coverage":
        off = regime_gap_rows(frame, spec)
        n = frame.height
        return off, {"coverage_pct": 100.0 if n == 0 else round(100.0 * (n - off.height) / n, 4)}
    if rule == "struct_members_present":
        missing, rows = struct_member_problems(frame, spec)
        if missing:  # a schema problem concerns every row of the frame
            rows = pl.concat(
                [rows, _with_partition(frame, spec).select(*_id_columns(spec))
                 .with_columns(null_structs=pl.lit("missing members: " + ", ".join(missing)))],
                how="vertical_relaxed",
            )
        return rows, {"missing_members": missing, "all_null_members": all_null_members(frame, spec),
                      "structs": {c.name: [m.name for m in c.fields] for c in spec.columns if c.type == "STRUCT"}}
    raise KeyError(f"rule {rule} needs more than the table's own rows")


def audit_offenders(spec: TableSpec, frame: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The hard rules of ``spec`` over a staged frame: rule -> offending rows (only failing rules)."""
    out = {}
    for rule in hard_rules_for(spec):
        off, _ = frame_rule_offenders(rule, spec, frame)
        if off.height:
            out[rule] = off
    return out


def partition_row_counts(frame: pl.DataFrame, spec: TableSpec) -> dict[str | None, int]:
    """Rows of ``frame`` per partition key (None for unpartitioned tables or NULL dates)."""
    if frame.is_empty():
        return {}
    counts = _with_partition(frame.select([c for c in (spec.date_column, spec.symbol_column) if c] or
                                          [frame.columns[0]]), spec).group_by(PARTITION).len()
    return dict(zip(counts[PARTITION].to_list(), counts["len"].to_list(), strict=True))


def _widen(keys: list[tuple[date, str | None]], before_days: int, after_days: int) -> Slice:
    by_root: dict[str | None, list[date]] = {}
    for d, s in keys:
        by_root.setdefault(s, []).append(d)
    ranges = tuple(
        (s, min(ds) - timedelta(days=before_days), max(ds) + timedelta(days=after_days)) for s, ds in by_root.items()
    )
    return Slice(ranges)


def _attribute_flips(rows: pl.DataFrame, keys, parts: list[str | None]) -> pl.DataFrame:
    """Keep the rows of the requested partitions; a one-day flip on the session just before them is
    confirmed by the first requested session and reported on that session's partition."""
    if keys is None:
        return rows
    wanted = [p for p in parts if p is not None]
    return rows.with_columns(
        pl.when(pl.col(PARTITION).is_in(wanted)).then(pl.col(PARTITION))
        .when(pl.col("kind").str.contains("one_day_flip"))
        .then(pl.col("next_date").dt.strftime("%Y-%m-%d") + pl.lit("|") + pl.col("symbol"))
        .alias(PARTITION)
    ).filter(pl.col(PARTITION).is_in(wanted))


def evaluate_rule(
    wh: Warehouse,
    spec: TableSpec,
    rule: str,
    keys: list[tuple[date, str | None]] | None = None,
    config: QualityConfig | None = None,
    calendars: Mapping[str, str] | None = None,
    starts: Mapping[str, date] | None = None,
    frame: pl.DataFrame | None = None,
) -> RuleEvaluation:
    """Evaluate ``rule`` on ``spec``'s published rows for the partitions ``keys`` ((date, root) or
    (date, None)); ``keys=None`` means the whole table. ``frame`` (the rows of those partitions,
    already read) saves a read when several rules share it. Rules that look around a partition
    (flips, thin sessions, outliers) read a wider window but report only the requested partitions;
    a one-day flip on the session just before the first requested date is reported on that date's
    partition (the flip is only confirmed by the session after it)."""
    cfg = config or QualityConfig()
    slice_ = None if keys is None or spec.date_column is None else Slice.from_keys(keys)
    if frame is None:
        frame = wh.read(spec, slice_)
    counts = partition_row_counts(frame, spec)
    if keys is None:
        parts: list[str | None] = sorted(p for p in counts if p is not None) or ([None] if spec.date_column is None
                                                                                  else [])
    elif spec.date_column is None:
        parts = [None]
    else:
        parts = [partition_key(d, s if spec.symbol_column else None) for d, s in keys]
    if spec.date_column is None:
        counts = {None: frame.height}

    if rule in ("keys_not_null", "no_duplicate_keys", "ohlc_consistent", "regime_coverage",
                "struct_members_present"):
        off, extra = frame_rule_offenders(rule, spec, frame)
        return RuleEvaluation(rule, spec.fqn, off, parts, counts, extra)

    if rule == "no_missing_sessions":
        cal = dict(calendars or {})
        if keys is None:
            partitions = []
            for root, sub in frame.group_by("symbol"):
                days = sub["trade_date"]
                start = max(days.min(), (starts or {}).get(root[0], days.min()))
                if root[0] in cal:
                    partitions += [(d, root[0]) for d in expected_sessions(cal[root[0]], start, days.max())]
            parts = sorted(set(parts) | {partition_key(d, s) for d, s in partitions})
        else:
            partitions = [(d, s) for d, s in keys if s is not None]
        off = missing_session_rows(frame.select("trade_date", "symbol"), partitions, cal, starts)
        unexpected = unexpected_session_rows(frame.select("trade_date", "symbol"), cal)
        extra = {"calendars": {s: cal.get(s) for s in sorted({s for _, s in partitions})},
                 "sessions_expected": len(expected_partitions(partitions, cal, starts)),
                 "sessions_on_closed_days": unexpected.height,
                 "sessions_on_closed_days_keys": rows_as_dicts(unexpected)}
        return RuleEvaluation(rule, spec.fqn, off, parts, counts, extra)

    if rule == "flips_and_thin_sessions":
        wide = frame if keys is None else wh.read(
            SESSION_BARS, _widen(keys, before_days=7 * cfg.thin_window // 5 + 14, after_days=10),
            columns=["trade_date", "symbol", "instrument_id", "volume"],
        )
        early = early_close_keys(wide.select("trade_date", "symbol"), calendars or {})
        rows = _attribute_flips(flip_and_thin_rows(wide, cfg, early), keys, parts)
        unfiltered = _attribute_flips(flip_and_thin_rows(wide, replace(cfg, thin_ignore_early_close=False)), keys,
                                      parts)
        extra = {"thin_ratio": cfg.thin_ratio, "thin_window": cfg.thin_window, "thin_min_prior": cfg.thin_min_prior,
                 "thin_ignore_early_close": cfg.thin_ignore_early_close,
                 "thin_on_early_close_not_reported": unfiltered.height - rows.height,
                 "one_day_flips": rows.filter(pl.col("kind").str.contains("flip")).height,
                 "thin_sessions": rows.filter(pl.col("kind").str.contains("thin")).height}
        return RuleEvaluation(rule, spec.fqn, rows, parts, counts, extra)

    if rule == "no_outlier_returns":
        if keys is None:
            bars = wh.read(SESSION_BARS, columns=["trade_date", "symbol", "instrument_id", "close"])
            feats = frame
        else:
            wide = _widen(keys, before_days=14, after_days=0)
            bars = wh.read(SESSION_BARS, wide, columns=["trade_date", "symbol", "instrument_id", "close"])
            feats = wh.read(MARKET_FEATURES, wide, columns=["trade_date", "symbol", "rv20"])
        rows, n = outlier_return_rows(bars, feats, cfg, None if keys is None else [p for p in parts if p])
        extra = {"k": cfg.outlier_k, "vol_source": "previous session rv20 / sqrt(252)", **n}
        return RuleEvaluation(rule, spec.fqn, rows, parts, counts, extra)

    raise KeyError(f"unknown rule {rule!r}; known: {sorted(RULES)}")


# Tables checked, in pipeline order (the training tables are added per root by the callers).
CHECKED_TABLES: tuple[TableSpec, ...] = (*RAW_TABLES, *PARTITIONED_FEATURE_TABLES, POLICY_FEATURES)
