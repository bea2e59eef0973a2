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
Dagster checks (``chimera_assets.lib.checks``) and the dashboard (``ops.data_quality_report``) both use it,
so they always agree. See docs/data_quality.md.

Layout (one concern per module; this package re-exports every public name, so callers import from
``chimera_assets.quality``): ``registry`` (rules, thresholds, ``CheckOutcome``), ``frames`` (partition
keys, offender frames), ``hard_rules``, ``soft_rules``, ``outcomes``
(offenders -> outcomes) and ``evaluation`` (rules against a warehouse, write-audit offenders).
"""

from __future__ import annotations

from chimera_assets.quality.evaluation import (
    CHECKED_TABLES,
    PARTITIONED_FEATURE_TABLES,
    RAW_TABLES,
    RuleEvaluation,
    audit_offenders,
    evaluate_rule,
    frame_rule_offenders,
    hard_rules_for,
    partition_row_counts,
    rules_for,
)
from chimera_assets.quality.frames import (
    owner_date_expr,
    partition_key,
    partition_key_expr,
    required_columns,
    rows_as_dicts,
)
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
    MAX_OFFENDING_KEYS,
    OHLC,
    PARTITION,
    RULES,
    CheckOutcome,
    QualityConfig,
    Rule,
    Severity,
)
from chimera_assets.quality.soft_rules import (
    flip_and_thin_rows,
    freshness_outcome,
    missing_session_rows,
    outlier_return_rows,
    unexpected_session_rows,
)
from chimera_assets.trade_calendar import (
    early_close_keys,
    early_close_sessions,
    expected_partitions,
    expected_sessions,
    latest_closed_session,
)

__all__ = [
    "CHECKED_TABLES",
    "CheckOutcome",
    "HARD_RULES",
    "MAX_OFFENDING_KEYS",
    "OHLC",
    "PARTITION",
    "PARTITIONED_FEATURE_TABLES",
    "QualityConfig",
    "RAW_TABLES",
    "RULES",
    "Rule",
    "RuleEvaluation",
    "Severity",
    "all_null_members",
    "audit_offenders",
    "duplicate_key_rows",
    "early_close_keys",
    "early_close_sessions",
    "evaluate_rule",
    "expected_partitions",
    "expected_sessions",
    "flip_and_thin_rows",
    "frame_rule_offenders",
    "freshness_outcome",
    "hard_rules_for",
    "latest_closed_session",
    "missing_session_rows",
    "null_required_rows",
    "ohlc_violation_rows",
    "outcome",
    "outcomes_by_partition",
    "outlier_return_rows",
    "owner_date_expr",
    "partition_key",
    "partition_key_expr",
    "partition_row_counts",
    "regime_gap_rows",
    "required_columns",
    "rows_as_dicts",
    "rules_for",
    "struct_member_problems",
    "unexpected_session_rows",
]
