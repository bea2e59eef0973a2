"""Target-leakage check of the training tables (blocking). Pure polars, no Dagster.

A feature that was (wrongly) computed from a later session's prices correlates with the same row's
short-horizon target far more than any honest feature can: a return over the next session is mostly
noise that nothing known at the session close predicts well. So, on each split, the absolute Spearman
rank correlation of every feature column with ``target_1d`` and with ``target_1w`` must stay at or
below a threshold calibrated on the real data (docs/matrix.md, "Leakage check"):

| target | threshold | largest real |rho| seen | feature built from a later close |
|---|---|---|---|
| target_1d | 0.40 | 0.30 (one-year samples) | >= 0.56 (>= 0.43 for a boolean) |
| target_1w | 0.60 | 0.46 (one-year samples) | >= 0.85 for one built from the close 5 sessions ahead |

The 1w threshold is higher because 5-session windows overlap: a one-year split has only ~50
independent 1w outcomes, so persistent features (price levels, volatility regime) reach larger
chance correlations with it. A (split, feature, target) pair is judged only with at least
``MIN_PAIRS`` rows where both are non-NULL; fewer give chance correlations above the threshold
(the 2024 volatility percentile, NULL for its first ~100 sessions, reached 0.46 on ~150 rows).
Constant features (no ranks to correlate, e.g. golden-zone columns of a root without them) are skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from chimera_assets.training.reader import FEATURE_COLUMNS, SPLITS

CHECK_NAME = "no_target_leakage"
THRESHOLDS: dict[str, float] = {"target_1d": 0.40, "target_1w": 0.60}
MIN_PAIRS = 100
DESCRIPTION = (
    "On each split, no feature's |Spearman rank correlation| with the same row's target_1d (> 0.40) or "
    "target_1w (> 0.60): a feature built from a later session's close would. Blocking: the rows are not "
    "published when it fails."
)


@dataclass
class LeakageReport:
    """The check's numbers. ``correlations``: split, feature, target, rho, pairs, threshold, judged
    (enough pairs and a defined rho), leaking (judged and |rho| > threshold)."""

    correlations: pl.DataFrame
    thresholds: dict[str, float] = field(default_factory=lambda: dict(THRESHOLDS))
    min_pairs: int = MIN_PAIRS

    @property
    def offenders(self) -> pl.DataFrame:
        return self.correlations.filter(pl.col("leaking")).sort(pl.col("rho").abs(), descending=True)

    @property
    def passed(self) -> bool:
        return self.offenders.is_empty()

    def per_split(self) -> dict[str, dict[str, Any]]:
        """Per split: rows judged, the worst feature (largest |rho| relative to its threshold) and its rho."""
        out: dict[str, dict[str, Any]] = {}
        for s in SPLITS:
            sub = self.correlations.filter(pl.col("split") == s)
            judged = sub.filter(pl.col("judged"))
            entry: dict[str, Any] = {"pairs_max": int(sub["pairs"].max() or 0), "pairs_judged": judged.height}
            if judged.is_empty():
                entry["note"] = f"not judged: fewer than {self.min_pairs} rows with a feature and a target"
            else:
                worst = judged.sort(pl.col("rho").abs() / pl.col("threshold"), descending=True).row(0, named=True)
                entry.update({"worst_feature": worst["feature"], "target": worst["target"],
                              "rho": round(worst["rho"], 4), "threshold": worst["threshold"],
                              "leaking_features": sorted(set(sub.filter(pl.col("leaking"))["feature"].to_list()))})
            out[s] = entry
        return out

    def metadata(self) -> dict[str, Any]:
        """JSON-able numbers for the check's metadata."""
        worst = self.correlations.filter(pl.col("judged")).sort(
            pl.col("rho").abs() / pl.col("threshold"), descending=True)
        meta: dict[str, Any] = {
            "thresholds": self.thresholds,
            "min_pairs": self.min_pairs,
            "passed": self.passed,
            "per_split": self.per_split(),
            "leaking": [{"split": s, "feature": f, "target": t, "rho": round(r, 4), "pairs": n}
                        for s, f, t, r, n in self.offenders.select("split", "feature", "target", "rho", "pairs")
                        .head(20).rows()],
        }
        if worst.height:
            w = worst.row(0, named=True)
            meta.update({"worst_feature": w["feature"], "worst_split": w["split"], "worst_target": w["target"],
                         "worst_rho": round(w["rho"], 4)})
        return meta

    def summary(self) -> str:
        if self.passed:
            return "no feature exceeds the leakage thresholds " + str(self.thresholds)
        parts = [f"{f} vs {t} on {s}: rho={r:+.3f} (> {THRESHOLDS.get(t, math.nan)})"
                 for s, f, t, r in self.offenders.select("split", "feature", "target", "rho").head(5).rows()]
        return f"{self.offenders.height} feature/target pair(s) look leaked: " + "; ".join(parts)


def _candidates(frame: pl.DataFrame) -> list[str]:
    """Feature columns that can be ranked: numbers and booleans (strings such as regime_name are not)."""
    return [c for c in FEATURE_COLUMNS if c in frame.columns
            and (frame.schema[c].is_numeric() or frame.schema[c] == pl.Boolean)]


def leakage_report(
    frame: pl.DataFrame, thresholds: dict[str, float] | None = None, min_pairs: int = MIN_PAIRS
) -> LeakageReport:
    """Spearman rank correlation of every feature column with each target of ``thresholds`` (default
    ``THRESHOLDS``), per split, over the rows where both are non-NULL (NaN counts as NULL)."""
    thresholds = dict(THRESHOLDS if thresholds is None else thresholds)
    features = _candidates(frame)
    exprs = []
    for f in features:
        x = pl.col(f).cast(pl.Float64)
        for t in thresholds:
            y = pl.col(t)
            both = x.is_not_null() & ~x.is_nan() & y.is_not_null() & ~y.is_nan()
            exprs += [pl.corr(x.filter(both), y.filter(both), method="spearman").alias(f"rho\x1f{f}\x1f{t}"),
                      both.sum().alias(f"n\x1f{f}\x1f{t}")]
    rows: list[tuple[str, str, str, float | None, int]] = []
    if exprs and frame.height:
        wide = frame.group_by("split").agg(exprs)
        for rec in wide.iter_rows(named=True):  # one record per split (at most three)
            if rec["split"] is None:
                continue
            for f in features:
                for t in thresholds:
                    rho = rec[f"rho\x1f{f}\x1f{t}"]
                    rho = None if rho is None or math.isnan(rho) else float(rho)
                    rows.append((rec["split"], f, t, rho, int(rec[f"n\x1f{f}\x1f{t}"])))
    corr = pl.DataFrame(rows, schema={"split": pl.Utf8, "feature": pl.Utf8, "target": pl.Utf8, "rho": pl.Float64,
                                      "pairs": pl.Int64}, orient="row")
    corr = corr.with_columns(pl.col("target").replace_strict(thresholds, return_dtype=pl.Float64).alias("threshold"))
    judged = pl.col("rho").is_not_null() & (pl.col("pairs") >= min_pairs)
    corr = corr.with_columns(judged.alias("judged")).with_columns(
        (pl.col("judged") & (pl.col("rho").abs() > pl.col("threshold"))).alias("leaking"))
    return LeakageReport(corr, thresholds, min_pairs)


def leakage_audit(frame: pl.DataFrame) -> None:
    """Write audit: raise ``AuditFailed`` (with the report's numbers as metadata) when a feature of the
    staged training rows looks leaked, so nothing is published."""
    from chimera_assets.warehouse.base import AuditFailed

    report = leakage_report(frame)
    if not report.passed:
        raise AuditFailed(f"target leakage: {report.summary()}; nothing was published",
                          metadata={CHECK_NAME: report.metadata()})


def with_leakage_check(factory):
    """An audit factory (``spec -> audit``) that runs ``factory``'s audit, then ``leakage_audit``: the
    training tables' write audit (hard rules first, then the leakage check)."""

    def make(spec):
        first = factory(spec)

        def audit(frame: pl.DataFrame) -> None:
            if first is not None:
                first(frame)
            leakage_audit(frame)

        return audit

    return make
