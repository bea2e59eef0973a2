"""The training-set card: what one ``training.<root>_training_daily`` holds, as markdown. Pure polars.

Recorded on every materialization of a training table (metadata entry ``training_set_card``) so the
UI says, without SQL: how many rows each split keeps per horizon after the per-horizon purge, how
complete each feature is and over which dates, how the targets are distributed, and how many target
windows cross a contract roll. See docs/matrix.md, section "Training-set card".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl

from chimera_assets.training.reader import FEATURE_COLUMNS, HORIZONS, SPLITS

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def kept_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows per split x horizon after the per-horizon purge, long format.

    Columns: split, horizon, rows (all rows of the split), kept (``purged_<h>`` False), labelled (kept
    and ``target_<h>`` non-NULL), kept_fraction (kept / rows; NULL for an empty split). One row per
    split of ``SPLITS`` and horizon, empty splits included (0 rows)."""
    aggs = [pl.len().alias("rows")]
    for h in HORIZONS:
        keep = ~pl.col(f"purged_{h}")
        aggs += [keep.sum().alias(f"kept_{h}"), (keep & pl.col(f"target_{h}").is_not_null()).sum().alias(f"lab_{h}")]
    per_split = frame.group_by("split").agg(aggs)
    skeleton = pl.DataFrame({"split": list(SPLITS)})
    wide = skeleton.join(per_split, on="split", how="left").fill_null(0)
    long = pl.concat(
        [
            wide.select(
                "split",
                pl.lit(h).alias("horizon"),
                pl.col("rows").cast(pl.Int64),
                pl.col(f"kept_{h}").cast(pl.Int64).alias("kept"),
                pl.col(f"lab_{h}").cast(pl.Int64).alias("labelled"),
            )
            for h in HORIZONS
        ]
    )
    return long.with_columns(
        pl.when(pl.col("rows") > 0).then(pl.col("kept") / pl.col("rows")).otherwise(None).alias("kept_fraction")
    )


def feature_coverage(frame: pl.DataFrame, features: Sequence[str] = FEATURE_COLUMNS) -> pl.DataFrame:
    """Per feature: null_fraction (NULL or NaN share of all rows), first_date and last_date with a value.
    One vectorised pass over the frame."""
    n = frame.height
    exprs = []
    for c in features:
        col = pl.col(c)
        missing = col.is_null() | (col.is_nan() if frame.schema[c].is_float() else pl.lit(False))
        dates = pl.col("data_date").filter(~missing)
        exprs += [missing.sum().alias(f"n:{c}"), dates.min().alias(f"lo:{c}"), dates.max().alias(f"hi:{c}")]
    row = frame.select(exprs).row(0, named=True) if exprs else {}
    return pl.DataFrame(
        {
            "feature": list(features),
            "null_fraction": [row[f"n:{c}"] / n if n else None for c in features],
            "first_date": [row[f"lo:{c}"] for c in features],
            "last_date": [row[f"hi:{c}"] for c in features],
        },
        schema={"feature": pl.Utf8, "null_fraction": pl.Float64, "first_date": pl.Date, "last_date": pl.Date},
    )


def target_distribution(frame: pl.DataFrame) -> pl.DataFrame:
    """Per horizon over the rows with a target (all splits, purged or not): n, mean, std and the
    ``QUANTILES`` of ``target_<h>`` (a simple return: 0.01 = +1%)."""
    rows = []
    for h in HORIZONS:
        t = pl.col(f"target_{h}").drop_nulls()
        stats = frame.select(
            t.len().alias("n"), t.mean().alias("mean"), t.std().alias("std"), t.min().alias("min"),
            *[t.quantile(q, "linear").alias(f"p{round(q * 100):02d}") for q in QUANTILES], t.max().alias("max"),
        ).row(0, named=True)
        rows.append({"horizon": h, **stats})
    return pl.DataFrame(rows, schema={"horizon": pl.Utf8, "n": pl.Int64, **{
        k: pl.Float64 for k in ("mean", "std", "min", *(f"p{round(q * 100):02d}" for q in QUANTILES), "max")}})


def roll_crossings(frame: pl.DataFrame) -> pl.DataFrame:
    """Per horizon: labelled rows, rows whose target window crosses a roll, rows where it is unknown."""
    rows = []
    for h in HORIZONS:
        flag, has_target = pl.col(f"target_crosses_roll_{h}"), pl.col(f"target_{h}").is_not_null()
        rows.append({"horizon": h, **frame.select(
            has_target.sum().alias("labelled"),
            (flag.fill_null(False)).sum().alias("crossing"),
            (has_target & flag.is_null()).sum().alias("unknown"),
        ).row(0, named=True)})
    return pl.DataFrame(rows, schema={"horizon": pl.Utf8, "labelled": pl.Int64, "crossing": pl.Int64,
                                      "unknown": pl.Int64})


def _pct(x: float | None) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _num(x: float | None) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.5f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


POLICY_TIME_TEXT = {
    "event": "event time",
    "knowledge": "knowledge time (the later of event and collection time)",
}


def training_card(frame: pl.DataFrame, table: str = "", policy_time: str | None = None,
                  roll_adjustment: str | None = None) -> str:
    """The card of a training table (``frame`` = its rows, ``training_table`` columns) as markdown.
    ``policy_time`` ('event' | 'knowledge') and ``roll_adjustment`` ('ratio' | 'difference' | 'none') are
    the settings the table was built with, stated on the card when given."""
    title = f"### Training-set card{f': {table}' if table else ''}"
    if frame.is_empty():
        return f"{title}\n\nThe table holds no rows."
    first, last = frame["data_date"].min(), frame["data_date"].max()
    out = [title, "", f"{frame.height} rows, data_date {first} .. {last}. Splits: train < 2023-01-01 <= val < "
           "2024-01-01 <= test. A row is purged for horizon h when its own target window (t, t+h] crosses a "
           "split boundary."]
    if policy_time is not None:
        out += ["", f"Policy features: events counted by {POLICY_TIME_TEXT.get(policy_time, policy_time)} "
                    f"(CHIMERA_POLICY_TIME={policy_time}), each root cut at its own session close."]
    if roll_adjustment is not None:
        out += ["", f"Targets: roll-adjusted by {roll_adjustment} at each instrument switch "
                    f"(CHIMERA_ROLL_ADJUSTMENT={roll_adjustment}); target_<h>_raw keeps the unadjusted value."]

    kept = kept_rows(frame)
    out += ["", "#### Rows per split x horizon after purge (kept / with a target, kept share)"]
    rows = []
    for s in SPLITS:
        sub = kept.filter(pl.col("split") == s)
        n = sub["rows"][0]
        cells = [f"{k} / {lab} ({_pct(f)})" if n else "0" for k, lab, f in
                 sub.select("kept", "labelled", "kept_fraction").rows()]
        rows.append([s, str(n), *cells])
    out.append(_table(["split", "rows", *HORIZONS], rows))

    dist = target_distribution(frame)
    qcols = [c for c in dist.columns if c.startswith("p")]
    out += ["", "#### Targets per horizon (simple return, all rows with a target)"]
    out.append(_table(["horizon", "n", "mean", "std", "min", *qcols, "max"],
                      [[r["horizon"], str(r["n"]), *(_num(r[c]) for c in ("mean", "std", "min", *qcols, "max"))]
                       for r in dist.iter_rows(named=True)]))

    rolls = roll_crossings(frame)
    out += ["", "#### Target windows crossing a roll"]
    out.append(_table(["horizon", "rows with a target", "crossing a roll", "share", "unknown"],
                      [[r["horizon"], str(r["labelled"]), str(r["crossing"]),
                        _pct(r["crossing"] / r["labelled"] if r["labelled"] else None), str(r["unknown"])]
                       for r in rolls.iter_rows(named=True)]))

    cov = feature_coverage(frame)
    out += ["", "#### Features: NULL share and dates with values"]
    out.append(_table(["feature", "NULL", "first date", "last date"],
                      [[r["feature"], _pct(r["null_fraction"]), str(r["first_date"] or "never"),
                        str(r["last_date"] or "never")] for r in cov.iter_rows(named=True)]))
    return "\n".join(out)
