"""``ops.data_quality_report``: the data quality dashboard (SPEC 7).

Evaluates every rule of ``chimera_assets.quality`` over every published partition of every checked
table (the same functions the asset checks run), summarises the outcomes per rule and root, and shows
them in the Dagster UI as markdown tables plus a matplotlib chart (PNG written to
``$CHIMERA_HOME/reports/``; the UI shows it from the ``chart_image`` entry, a markdown image with the
PNG inlined as a ``data:`` URI, and inside ``report``; ``chart`` keeps the server path). No table is stored.
"""

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from chimera_assets.lib.asset_keys import DATA_QUALITY_REPORT, asset_key
from chimera_assets.lib.checks.scope import audited_tables, calendars_and_starts
from chimera_assets.lib.io_manager import WarehouseResource
from chimera_assets.quality.evaluation import evaluate_rule, rules_for
from chimera_assets.quality.registry import PARTITION, RULES, QualityConfig, Severity
from chimera_assets.quality.soft_rules import freshness_outcome
from chimera_assets.schemas import DAILY_ML_MATRIX, TableSpec
from chimera_assets.settings import get_settings
from chimera_assets.warehouse.base import Warehouse

REPORT_KEY = DATA_QUALITY_REPORT
SUMMARY_SCHEMA = {
    "table": pl.Utf8, "rule": pl.Utf8, "severity": pl.Utf8, "blocking": pl.Boolean, "root": pl.Utf8,
    "partitions_checked": pl.Int64, "partitions_failed": pl.Int64, "offending_rows": pl.Int64, "examples": pl.Utf8,
}
ALL_ROOTS = "(all)"


def _root_of(partition: str | None, spec: TableSpec) -> str:
    if partition is None:
        return spec.name.split("_training_daily")[0].upper() if spec.schema == "training" else ALL_ROOTS
    return partition.split("|", 1)[1] if "|" in partition else ALL_ROOTS


def quality_summary(
    wh: Warehouse,
    tables: list[TableSpec],
    config: QualityConfig,
    calendars: dict[str, str],
    starts: dict,
    as_of: datetime,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(one row per table x rule x root, the failing partitions with their dates) over whole tables."""
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for spec in tables:
        if not wh.table_exists(spec):
            continue
        frame = wh.read(spec)
        for rule in rules_for(spec):
            ev = evaluate_rule(wh, spec, rule, None, config, calendars, starts, frame=frame)
            r = RULES[rule]
            checked: dict[str, int] = {}
            for p in ev.partitions:
                checked[_root_of(p, spec)] = checked.get(_root_of(p, spec), 0) + 1
            off = ev.offenders
            if off.height and PARTITION in off.columns:
                if spec.schema == "training" and "symbol" in off.columns:
                    off = off.with_columns(pl.col("symbol").alias("_root"))
                else:
                    off = off.with_columns(
                        pl.col(PARTITION).map_elements(lambda p, s=spec: _root_of(p, s), return_dtype=pl.Utf8)
                        .fill_null(_root_of(None, spec)).alias("_root")
                    )
            for root in sorted(set(checked) | (set(off["_root"].to_list()) if off.height else set())):
                sub = off.filter(pl.col("_root") == root) if off.height else off
                failed_parts = sorted({p for p in sub[PARTITION].to_list() if p is not None}) if sub.height else []
                n_failed = len(failed_parts) or (1 if sub.height else 0)
                rows.append({
                    "table": spec.fqn, "rule": rule, "severity": str(r.severity), "blocking": r.blocking,
                    "root": root, "partitions_checked": checked.get(root, 0), "partitions_failed": n_failed,
                    "offending_rows": sub.height, "examples": ", ".join(failed_parts[:5]),
                })
                for p in failed_parts:
                    failures.append({"table": spec.fqn, "rule": rule, "severity": str(r.severity), "root": root,
                                     "partition": p, "date": p.split("|", 1)[0]})
    if wh.table_exists(DAILY_ML_MATRIX):
        keys = wh.read(DAILY_ML_MATRIX, columns=["symbol", "data_date"])
        latest = {s: d for s, d in keys.group_by("symbol").agg(pl.col("data_date").max()).iter_rows()}
        oc = freshness_outcome(latest, calendars, as_of, config.freshness_max_lag)
        for root, info in oc.metadata["per_root"].items():
            stale = info["lag_sessions"] > config.freshness_max_lag
            rows.append({
                "table": DAILY_ML_MATRIX.fqn, "rule": "matrix_freshness", "severity": str(Severity.WARN),
                "blocking": False, "root": root, "partitions_checked": 1, "partitions_failed": int(stale),
                "offending_rows": int(stale),
                "examples": f"latest {info['latest_date']}, expected {info['latest_expected']}, "
                            f"lag {info['lag_sessions']} session(s)",
            })
            if stale:
                failures.append({"table": DAILY_ML_MATRIX.fqn, "rule": "matrix_freshness", "severity": "WARN",
                                 "root": root, "partition": f"{info['latest_date']}|{root}",
                                 "date": info["latest_date"]})
    summary = pl.DataFrame(rows, schema=SUMMARY_SCHEMA)
    fails = pl.DataFrame(failures, schema={"table": pl.Utf8, "rule": pl.Utf8, "severity": pl.Utf8, "root": pl.Utf8,
                                           "partition": pl.Utf8, "date": pl.Utf8})
    return summary, fails


def rule_by_root(summary: pl.DataFrame) -> pl.DataFrame:
    """Failed and checked partitions per rule and root, summed over tables."""
    return (
        summary.group_by("rule", "severity", "root")
        .agg(pl.col("partitions_failed").sum().alias("failed"), pl.col("partitions_checked").sum().alias("checked"))
        .sort("rule", "root")
    )


def _cell(v: Any) -> str:
    """A markdown table cell: pipes in partition keys ("2024-01-03|ZL") must not split the cell."""
    return str(v).replace("|", "\\|")


def _icon(failed: int, severity: str) -> str:
    if failed == 0:
        return "✅"
    return "⚠️" if severity == "WARN" else "❌"


def render_markdown(summary: pl.DataFrame, failures: pl.DataFrame, as_of: datetime, png_b64: str | None) -> str:
    grid = rule_by_root(summary)
    roots = sorted(set(grid["root"].to_list()), key=lambda r: (r == ALL_ROOTS, r))
    rules = [r for r in RULES if r in set(grid["rule"].to_list())]
    n_err = summary.filter((pl.col("severity") == "ERROR") & (pl.col("partitions_failed") > 0)).height
    n_warn = summary.filter((pl.col("severity") == "WARN") & (pl.col("partitions_failed") > 0)).height
    lines = [
        "# Data quality report",
        f"Generated {as_of.isoformat(timespec='seconds')}: {summary['table'].n_unique()} tables, "
        f"{summary.height} table x rule x root results; {n_err} with ERROR failures, {n_warn} with warnings.",
        "",
        "## Failed / checked partitions per rule and root (all tables)",
        "| rule | severity | " + " | ".join(roots) + " |",
        "|---|---|" + "---|" * len(roots),
    ]
    cells = {(r["rule"], r["root"]): r for r in grid.iter_rows(named=True)}
    for rule in rules:
        sev = str(RULES[rule].severity) + (" (blocking)" if RULES[rule].blocking else "")
        row = []
        for root in roots:
            c = cells.get((rule, root))
            row.append("" if c is None else f"{_icon(c['failed'], c['severity'])} {c['failed']}/{c['checked']}")
        lines.append(f"| {rule} | {sev} | " + " | ".join(row) + " |")
    bad = summary.filter(pl.col("partitions_failed") > 0).sort("severity", "table", "rule", "root")
    lines += ["", "## Failures and warnings", ""]
    if bad.is_empty():
        lines.append("None: every rule passed on every partition.")
    else:
        lines += ["| table | rule | severity | root | failed partitions | offending rows | examples |",
                  "|---|---|---|---|---|---|---|"]
        for r in bad.iter_rows(named=True):
            lines.append(f"| {r['table']} | {r['rule']} | {r['severity']} | {r['root']} | {r['partitions_failed']} "
                         f"| {r['offending_rows']} | {_cell(r['examples'])} |")
    if png_b64:
        lines += ["", "## Chart", "", f"![data quality chart](data:image/png;base64,{png_b64})"]
    return "\n".join(lines)


def render_chart(summary: pl.DataFrame, failures: pl.DataFrame, path: Path) -> Path:
    """Heatmap (failed partitions per rule x root, coloured by severity) and failing partitions per month."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    grid = rule_by_root(summary)
    roots = sorted(set(grid["root"].to_list()), key=lambda r: (r == ALL_ROOTS, r)) or ["-"]
    rules = [r for r in RULES if r in set(grid["rule"].to_list())] or ["-"]
    cells = {(r["rule"], r["root"]): r for r in grid.iter_rows(named=True)}
    fig = Figure(figsize=(13, max(4.0, 0.45 * len(rules) + 2)), dpi=100)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1.4]})
    # 0 = not checked, 1 = passed, 2 = warning, 3 = error
    codes = [[0] * len(roots) for _ in rules]
    for i, rule in enumerate(rules):
        for j, root in enumerate(roots):
            c = cells.get((rule, root))
            if c is None:
                continue
            codes[i][j] = 1 if c["failed"] == 0 else (2 if c["severity"] == "WARN" else 3)
            ax1.text(j, i, f"{c['failed']}/{c['checked']}", ha="center", va="center", fontsize=8)
    cmap = ListedColormap(["#eeeeee", "#8fd18f", "#f5c04a", "#e0605a"])
    ax1.imshow(codes, cmap=cmap, vmin=0, vmax=3, aspect="auto")
    ax1.set_xticks(range(len(roots)), roots)
    ax1.set_yticks(range(len(rules)), rules, fontsize=8)
    ax1.set_title("failed / checked partitions (green pass, amber warn, red error)", fontsize=9)
    if failures.height:
        monthly = (
            failures.with_columns(pl.col("date").str.slice(0, 7).alias("month"))
            .group_by("month", "root").len().sort("month")
        )
        first, last = min(monthly["month"].to_list()), max(monthly["month"].to_list())
        months = [m.strftime("%Y-%m") for m in pl.date_range(
            datetime.strptime(first, "%Y-%m").date(), datetime.strptime(last, "%Y-%m").date(), "1mo", eager=True
        ).to_list()]
        bottom = [0] * len(months)
        for root in sorted(set(monthly["root"].to_list())):
            sub = {m: n for m, n in monthly.filter(pl.col("root") == root).select("month", "len").iter_rows()}
            vals = [sub.get(m, 0) for m in months]
            ax2.bar(range(len(months)), vals, bottom=bottom, label=root)
            bottom = [a + b for a, b in zip(bottom, vals, strict=True)]
        ax2.set_xticks(range(len(months)), months, rotation=90, fontsize=7)
        ax2.legend(fontsize=8)
    else:
        ax2.text(0.5, 0.5, "no failing partitions", ha="center", va="center", transform=ax2.transAxes)
    ax2.set_title("failing partitions per month (all rules)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def build_report(wh: Warehouse, as_of: datetime | None = None, reports_dir: Path | None = None) -> dict[str, Any]:
    """Compute, render and write the report; returns the pieces (used by the asset and the tests)."""
    config = QualityConfig.from_env()
    now = as_of or config.as_of or datetime.now(UTC)
    calendars, starts = calendars_and_starts()
    summary, failures = quality_summary(wh, audited_tables(), config, calendars, starts, now)
    out_dir = reports_dir or get_settings().home / "reports"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    png = render_chart(summary, failures, out_dir / f"data_quality_{stamp}.png")
    b64 = base64.b64encode(png.read_bytes()).decode("ascii")
    return {"summary": summary, "failures": failures, "png": png, "png_b64": b64,
            "markdown": render_markdown(summary, failures, now, b64), "as_of": now}


def chart_markdown(png_b64: str) -> str:
    """The chart as a markdown image with the PNG inlined (a ``data:`` URI): the UI shows the picture
    itself, on any machine, instead of a path on the server that ran the report."""
    return f"![data quality chart](data:image/png;base64,{png_b64})"


@dg.asset(
    key=REPORT_KEY,
    deps=[asset_key(s) for s in audited_tables()],
    group_name="ops",
    kinds={"polars", "matplotlib"},
    description="Data quality dashboard: every check rule over every published partition, per rule and root. "
    "Metadata: chart_image (the chart), report (markdown tables + chart), chart (the PNG file on the server).",
)
def data_quality_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    report = build_report(warehouse.get())
    summary: pl.DataFrame = report["summary"]
    failing = summary.filter(pl.col("partitions_failed") > 0)
    context.log.info(f"data quality report: {summary.height} results, {failing.height} failing; chart {report['png']}")
    return dg.MaterializeResult(
        metadata={
            "chart_image": dg.MetadataValue.md(chart_markdown(report["png_b64"])),
            "report": dg.MetadataValue.md(report["markdown"]),
            "chart": dg.MetadataValue.path(str(report["png"])),  # the same PNG, kept on the server
            "results": dg.MetadataValue.int(summary.height),
            "results_failing_error": dg.MetadataValue.int(failing.filter(pl.col("severity") == "ERROR").height),
            "results_failing_warn": dg.MetadataValue.int(failing.filter(pl.col("severity") == "WARN").height),
            "failing_partitions": dg.MetadataValue.int(report["failures"].height),
            "as_of": dg.MetadataValue.text(report["as_of"].isoformat()),
        }
    )


QUALITY_ASSETS = [data_quality_report]
