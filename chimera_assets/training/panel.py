"""Panel reads and walk-forward folds over several roots' training sets. Pure polars, no Dagster.

    from chimera_assets.training.panel import read_panel, walk_forward_folds
    panel = read_panel(["ZL", "MES"], "1d")
    for fold in walk_forward_folds(panel, "1d", embargo=5):
        train, test = panel[fold.train_rows], panel[fold.test_rows]

``read_panel``: one row per (root, session), the root's own training set for the horizon, plus each
other root's features as of the row's own close instant (``timestamp``): the other root's latest row
whose ``timestamp`` is at or before it (an as-of / entity-timestamp join, as Feast's
``get_historical_features``). A root whose session closes later the same day contributes its previous
session. ``<ROOT>__timestamp`` says which instant each other root's features are from.

``walk_forward_folds``: one fold per test calendar year; training rows are earlier years (all of them:
``expanding``; the last ``train_years``: ``rolling``) whose own target window (t, t+h] ends more than
``embargo`` sessions before the test fold's first session (per root, counted in the root's sessions):
no training label overlaps the test fold or the embargo before it. See docs/matrix.md section 5.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl

from chimera_assets.schemas import POLICY_FIELDS, TARGET_HORIZONS
from chimera_assets.training.reader import FEATURE_COLUMNS, check_horizon, check_split, read
from chimera_assets.warehouse.base import Warehouse

_POLICY = {n for n, _ in POLICY_FIELDS}
# Other roots' columns joined by default: every per-root feature. Policy features are date-level, the
# same in every root's row, so another root's copy would add nothing.
OTHER_ROOT_FEATURES: tuple[str, ...] = tuple(c for c in FEATURE_COLUMNS if c not in _POLICY)
SCHEMES = ("expanding", "rolling")
_STEPS = dict(TARGET_HORIZONS)


def other_column(root: str, column: str) -> str:
    """The panel's name of another root's column: ``<ROOT>__<column>`` (e.g. ``ZL__close``)."""
    return f"{root}__{column}"


def build_panel(frames: dict[str, pl.DataFrame], features: Sequence[str] = OTHER_ROOT_FEATURES) -> pl.DataFrame:
    """The panel of ``frames`` (root -> that root's training rows, all sessions, each with ``symbol``,
    ``data_date``, ``timestamp``): the rows of every root stacked, sorted by (timestamp, symbol), plus
    for each root R the columns ``R__timestamp`` and ``R__<feature>`` from R's latest row with
    ``timestamp`` <= the row's own; NULL in R's own rows (those are its plain columns) and before R's
    first row. A row with a NULL timestamp gets NULLs (no instant to join at)."""
    roots = sorted(frames)
    rows = pl.concat([frames[r] for r in roots], how="vertical_relaxed").sort("timestamp", "symbol", nulls_last=True)
    out = rows.with_row_index("_row")
    for r in roots:
        src = frames[r].filter(pl.col("timestamp").is_not_null()).select(
            pl.col("timestamp").alias("_at"), pl.col("timestamp").alias(other_column(r, "timestamp")),
            *[pl.col(c).alias(other_column(r, c)) for c in features],
        ).sort("_at")
        joined = out.filter(pl.col("timestamp").is_not_null()).select("_row", "timestamp").sort("timestamp")
        # backward = the latest source row whose instant is <= the row's (ties included).
        joined = joined.join_asof(src, left_on="timestamp", right_on="_at", strategy="backward").drop("timestamp", "_at")
        new = [c for c in joined.columns if c != "_row"]
        out = out.join(joined, on="_row", how="left").with_columns(
            [pl.when(pl.col("symbol") == r).then(None).otherwise(pl.col(c)).alias(c) for c in new])
    return out.sort("_row").drop("_row")


def read_panel(
    roots: Sequence[str],
    horizon: str,
    split: str | None = None,
    keep_purged: bool = False,
    warehouse: Warehouse | None = None,
    features: Sequence[str] = OTHER_ROOT_FEATURES,
) -> pl.DataFrame:
    """The panel of ``roots`` for ``horizon`` (``build_panel`` over each root's ``reader.read``).

    The as-of sources are every session of the other roots (split and purge only choose the panel's own
    rows: a feature row is known at its close whatever split its label is in). Then ``split`` keeps
    one split and, unless ``keep_purged``, rows with ``purged_<h>`` go (``purged_<h>`` stays with
    ``keep_purged``)."""
    h, s = check_horizon(horizon), check_split(split)
    if not roots or len(set(roots)) != len(roots):
        raise ValueError(f"read_panel needs distinct roots, got {list(roots)}")
    frames = {r.upper(): read(r, h, keep_purged=True, warehouse=warehouse) for r in roots}
    panel = build_panel(frames, features)
    if s is not None:
        panel = panel.filter(pl.col("split") == s)
    if not keep_purged:
        panel = panel.filter(~pl.col(f"purged_{h}")).drop(f"purged_{h}")
    return panel


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: rows (indices into the frame) to train on and to test on."""

    test_year: int
    train_rows: pl.Series
    test_rows: pl.Series


def walk_forward_folds(
    frame: pl.DataFrame,
    horizon: str,
    scheme: str = "expanding",
    train_years: int | None = None,
    embargo: int = 5,
    first_test_year: int | None = None,
    min_train_rows: int = 1,
) -> list[Fold]:
    """Folds by calendar year over ``frame`` (a training set or panel: ``symbol``, ``data_date``,
    ``target_<h>``; every session of each root, NULL targets included, so sessions can be counted).

    Test fold Y: the rows dated in year Y. Training rows: dated before Y (``rolling``: in the
    ``train_years`` years before Y), with a non-NULL ``target_<h>``, and whose target window (t, t+h]
    ends before the embargo: per root, session index of t + h < index of the root's first session in Y
    minus ``embargo`` (sessions). Folds from ``first_test_year`` (default: the second year present) with
    at least ``min_train_rows`` training rows."""
    h = check_horizon(horizon)
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; one of {list(SCHEMES)}")
    if scheme == "rolling" and not (train_years and train_years > 0):
        raise ValueError("a rolling scheme needs train_years >= 1")
    if embargo < 0:
        raise ValueError(f"embargo must be >= 0 sessions, got {embargo}")
    steps = _STEPS[h]
    # _i: the row's session number within its root (its sessions ordered by date).
    f = frame.with_row_index("_row").with_columns(
        (pl.col("data_date").rank("ordinal").over("symbol").cast(pl.Int64) - 1).alias("_i"),
        pl.col("data_date").dt.year().alias("_y"),
    )
    years = sorted(f["_y"].unique().drop_nulls().to_list())
    start = first_test_year if first_test_year is not None else (years[1] if len(years) > 1 else None)
    folds = []
    for y in (x for x in years if start is not None and x >= start):
        first = (f.filter(pl.col("data_date") >= date(y, 1, 1)).group_by("symbol")
                 .agg(pl.col("_i").min().alias("_first")))
        lo = date(y - train_years, 1, 1) if scheme == "rolling" else date(1, 1, 1)
        train = (f.join(first, on="symbol", how="left")
                 .filter((pl.col("_y") < y) & (pl.col("data_date") >= lo) & pl.col(f"target_{h}").is_not_null()
                         # a root without sessions from Y on: no test row of it to overlap
                         & (pl.col("_i") + steps < pl.col("_first").fill_null(2**62) - embargo)))
        test = f.filter(pl.col("_y") == y)
        if train.height >= min_train_rows and test.height:
            folds.append(Fold(y, train["_row"].sort(), test["_row"].sort()))
    return folds
