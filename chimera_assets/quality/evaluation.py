"""Rule evaluation against a warehouse: which rules a table gets, the rows they read (widened around
the requested partitions where a rule looks at neighbours) and the write-audit offenders.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import polars as pl

from chimera_assets.quality.frames import (
    _id_columns,
    _with_partition,
    partition_key,
    required_columns,
    rows_as_dicts,
)
from chimera_assets.quality.gaps import gap_day_rows
from chimera_assets.quality.hard_rules import (
    all_null_members,
    duplicate_key_rows,
    null_required_rows,
    ohlc_violation_rows,
    regime_gap_rows,
    struct_member_problems,
)
from chimera_assets.quality.outcomes import (
    outcome,
    outcomes_by_partition,
)
from chimera_assets.quality.registry import (
    HARD_RULES,
    OHLC,
    PARTITION,
    RULES,
    CheckOutcome,
    QualityConfig,
)
from chimera_assets.quality.soft_rules import (
    flip_and_thin_rows,
    outlier_return_rows,
    unexpected_session_rows,
)
from chimera_assets.schemas import (
    MARKET_FEATURES,
    PARTITIONED_FEATURE_TABLES,
    POLICY_FEATURES,
    RAW_TABLES,
    SESSION_BARS,
    TableSpec,
)
from chimera_assets.trade_calendar import (
    early_close_keys,
    expected_partitions,
    expected_sessions,
)
from chimera_assets.warehouse.base import Slice, Warehouse


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
        off = gap_day_rows(wh, frame, partitions, cal, starts)
        unexpected = unexpected_session_rows(frame.select("trade_date", "symbol"), cal)
        extra = {"calendars": {s: cal.get(s) for s in sorted({s for _, s in partitions})},
                 "gap_days_by_status": dict(sorted(off.group_by("status").len().rows())),
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
