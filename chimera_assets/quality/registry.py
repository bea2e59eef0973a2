"""The quality rule registry (name, severity, blocking), the thresholds (``QualityConfig``) and the
result type (``CheckOutcome``). Explicit: adding a rule means adding it to ``RULES`` here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from chimera_assets.settings import quality_env

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


def _rules(severity: Severity, blocking: bool, descriptions: Mapping[str, str]) -> tuple[Rule, ...]:
    """The rules of one (severity, blocking) class, from name -> description."""
    return tuple(Rule(name, severity, blocking, text) for name, text in descriptions.items())


RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        *_rules(Severity.ERROR, True, {
            "keys_not_null": "Required columns (the key and NOT NULL columns) are never NULL.",
            "no_duplicate_keys": "No two rows share the table's key.",
            "ohlc_consistent":
                "low <= open <= high, low <= close <= high and volume >= 0 (NULL prices are not compared).",
            "regime_coverage":
                "Every row has a regime (name and weight non-NULL, regime_name equal to regime.name): 100% coverage.",
        }),
        *_rules(Severity.ERROR, False, {
            "struct_members_present":
                "Every STRUCT column has every declared member with its type, and no STRUCT value is NULL.",
        }),
        *_rules(Severity.WARN, False, {
            "no_missing_sessions":
                "Every session the root's CME calendar (pandas_market_calendars) expects has a complete session "
                "bar; the gap days are listed with their status: no_trades (a loaded source covers the day, the "
                "root has no bar), missing (no source covers it), partial (cut short by the vendor).",
            "flips_and_thin_sessions":
                "No one-day contract flip (A -> B -> A) and no thin session (volume < ratio x median of the "
                "previous sessions).",
            "no_outlier_returns":
                "|log return of the session close| <= k x daily vol (previous session's rv20 / sqrt(252)); "
                "returns across a contract change are not compared.",
            "matrix_freshness":
                "The latest matrix date of each root lags the latest closed CME session by at most N sessions.",
        }),
    )
}
# The blocking rules (severity ERROR; also enforced by the write audit before publishing).
HARD_RULES = tuple(name for name, rule in RULES.items() if rule.blocking)


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
        env = quality_env() if env is None else env

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
