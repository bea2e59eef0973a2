"""Read a training set out of ``training.<root>_training_daily``, from either warehouse backend.

    from chimera_assets.training import reader as training
    df = training.read("ZL", "1m", split="val")      # polars DataFrame

The frame holds what a model for one horizon may see and learn from, and nothing else that looks
ahead: the row identifiers (``symbol``, ``data_date``, ``timestamp``), every feature column (the
flattened matrix members, ``FEATURE_COLUMNS``, minus the ``hindsight`` regime name/weight unless
``include_hindsight``), ``split``, the chosen ``target_<h>`` (roll-adjusted), ``target_<h>_raw``, its
``target_crosses_roll_<h>`` and ``training_weight`` (the sample weight). Typed: dates as ``Date``,
flags as ``Boolean``, instants in UTC; ``as_pandas=True`` gives pandas with Arrow dtypes. The other horizons' targets, roll flags and purge
flags are left out (they describe later sessions), and so is ``ingestion_ts`` (a load stamp). Rows
whose own target window crosses a split boundary (``purged_<h>``) are dropped unless
``keep_purged=True``, in which case ``purged_<h>`` is returned too so they can be told apart.
Rows whose target is NULL (the last h sessions: t+h does not exist yet) are kept.

Pure apart from the warehouse read: no Dagster. See docs/matrix.md, section "Reader and export".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import polars as pl

from chimera_assets.features.matrix import MATRIX_STRUCTS, TEST_START, VAL_START
from chimera_assets.schemas import TARGET_HORIZONS, TableSpec, flat_field_name, training_table
from chimera_assets.warehouse.base import Slice, Warehouse

HORIZONS: tuple[str, ...] = tuple(name for name, _ in TARGET_HORIZONS)
SPLITS: tuple[str, ...] = ("train", "val", "test")
ID_COLUMNS: tuple[str, ...] = ("symbol", "data_date", "timestamp")
# Every matrix member, flattened: the columns known at the row's session close (SPEC 6.5/6.7), minus the
# ``hindsight`` ones (the regime name/weight: the calendar was written after the fact).
FEATURE_COLUMNS: tuple[str, ...] = tuple(
    flat_field_name(s.name, f.name) for s in MATRIX_STRUCTS for f in s.fields if not f.hindsight)
HINDSIGHT_COLUMNS: tuple[str, ...] = tuple(
    flat_field_name(s.name, f.name) for s in MATRIX_STRUCTS for f in s.fields if f.hindsight)
# Inclusive data_date range of each split (the table's own boundaries, ``matrix.split_expr``).
SPLIT_DATES: dict[str, tuple[date, date]] = {
    "train": (date(1900, 1, 1), date.fromordinal(VAL_START.toordinal() - 1)),
    "val": (VAL_START, date.fromordinal(TEST_START.toordinal() - 1)),
    "test": (TEST_START, date(2999, 12, 31)),
}


class TrainingReadError(ValueError):
    """A bad root, horizon or split, or a training table that does not exist; the message names it."""


def check_horizon(horizon: str) -> str:
    if horizon not in HORIZONS:
        raise TrainingReadError(f"unknown horizon {horizon!r}; one of {list(HORIZONS)}")
    return horizon


def check_split(split: str | None) -> str | None:
    if split is not None and split not in SPLITS:
        raise TrainingReadError(f"unknown split {split!r}; one of {list(SPLITS)} (or none for all rows)")
    return split


def check_root(root: str) -> str:
    """``root`` upper-cased if the universe holds it, else ``TrainingReadError`` naming the roots."""
    from chimera_assets.universe import UniverseConfigError, get_universe

    if not isinstance(root, str) or not root.strip():
        raise TrainingReadError(f"root must be a non-empty name, got {root!r}")
    try:
        return get_universe().require_roots([root])[0]
    except UniverseConfigError as exc:
        raise TrainingReadError(str(exc)) from exc


def output_columns(horizon: str, keep_purged: bool = False, include_hindsight: bool = False) -> list[str]:
    """The columns ``read`` returns for ``horizon``, in the table's order: the identifiers, the features
    (+ the hindsight columns with ``include_hindsight``), ``target_<h>`` (roll-adjusted),
    ``target_<h>_raw``, ``target_crosses_roll_<h>``, ``split``, (``purged_<h>`` with ``keep_purged``),
    the weight."""
    h = check_horizon(horizon)
    keep = {*ID_COLUMNS, *FEATURE_COLUMNS, "split", f"target_{h}", f"target_{h}_raw", f"target_crosses_roll_{h}",
            "training_weight"}
    if keep_purged:
        keep.add(f"purged_{h}")
    if include_hindsight:
        keep.update(HINDSIGHT_COLUMNS)
    return [c for c in training_table("ZL").column_names if c in keep]  # every root has the same columns


def select_training_set(
    frame: pl.DataFrame, horizon: str, split: str | None = None, keep_purged: bool = False,
    include_hindsight: bool = False,
) -> pl.DataFrame:
    """The pure part of ``read``: ``frame`` (training-table rows) reduced to ``horizon``'s columns and,
    unless ``keep_purged``, to the rows whose ``purged_<h>`` is False; ``split`` keeps one split only.
    Row order is kept (the table's: by data_date)."""
    h = check_horizon(horizon)
    check_split(split)
    out = frame
    if split is not None:
        out = out.filter(pl.col("split") == split)
    if not keep_purged:
        out = out.filter(~pl.col(f"purged_{h}"))
    return typed(out.select(output_columns(h, keep_purged, include_hindsight)))


def typed(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the training table's declared types: dates as ``Date``, flags as ``Boolean``,
    instants as ``Datetime("us", "UTC")`` (a backend may hand back ``Etc/UTC`` or another zone name for
    the same instants; ``convert_time_zone`` keeps the instant and names it UTC)."""
    schema = training_table("ZL").polars_schema()
    out = []
    for c in frame.columns:
        want = schema.get(c)
        if isinstance(want, pl.Datetime) and isinstance(frame.schema[c], pl.Datetime) and frame.schema[c].time_zone:
            out.append(pl.col(c).dt.convert_time_zone("UTC").cast(want))
        else:
            out.append(pl.col(c).cast(want) if want is not None else pl.col(c))
    return frame.select(out)


def to_pandas(frame: pl.DataFrame):
    """``frame`` as pandas with Arrow dtypes (``date32[pyarrow]``, ``bool[pyarrow]``,
    ``timestamp[us, tz=UTC][pyarrow]``, NULLs as ``<NA>``): no ``object`` column, no bool-to-float cast
    of a flag column with NULLs."""
    return frame.to_pandas(use_pyarrow_extension_array=True)


def _warehouse(warehouse: Warehouse | None) -> Warehouse:
    if warehouse is not None:
        return warehouse
    from chimera_assets.warehouse import get_warehouse

    return get_warehouse()


def table_spec(root: str, warehouse: Warehouse) -> TableSpec:
    """The training table of ``root``, checked to exist in ``warehouse``."""
    spec = training_table(check_root(root))
    if not warehouse.table_exists(spec):
        raise TrainingReadError(
            f"training table {spec.fqn} does not exist in {warehouse!r}: materialize it first "
            "(chimera run, or the training group in the UI)"
        )
    return spec


def year_chunks(first: date, last: date, split: str | None) -> list[tuple[int, Slice]]:
    """One slice per calendar year of [first, last], clipped to ``split``'s dates."""
    lo, hi = SPLIT_DATES[split] if split else (first, last)
    lo, hi = max(lo, first), min(hi, last)
    return [(y, Slice(((None, max(lo, date(y, 1, 1)), min(hi, date(y, 12, 31))),)))
            for y in range(lo.year, hi.year + 1)] if lo <= hi else []


def iter_read(
    root: str,
    horizon: str,
    split: str | None = None,
    keep_purged: bool = False,
    warehouse: Warehouse | None = None,
    include_hindsight: bool = False,
) -> Iterator[tuple[int, int, int, pl.DataFrame]]:
    """``read`` in pieces, one calendar year per warehouse read, for exports that report progress.

    Yields (index from 1, number of years, year, frame). Validates everything before the first read."""
    h, s = check_horizon(horizon), check_split(split)
    wh = _warehouse(warehouse)
    spec = table_spec(root, wh)
    dates = wh.read(spec, columns=["data_date"])["data_date"]
    if dates.is_empty():
        return
    chunks = year_chunks(dates.min(), dates.max(), s)
    cols = output_columns(h, keep_purged=True, include_hindsight=include_hindsight)  # purged_<h> drops rows
    for i, (year, slice_) in enumerate(chunks, 1):
        # The table has one symbol, so the slice's symbol-less range covers every row of its dates.
        frame = wh.read(spec, slice_, columns=cols)
        yield i, len(chunks), year, select_training_set(frame, h, s, keep_purged, include_hindsight)


def read(
    root: str,
    horizon: str,
    split: str | None = None,
    keep_purged: bool = False,
    warehouse: Warehouse | None = None,
    include_hindsight: bool = False,
    as_pandas: bool = False,
):
    """The training set of ``root`` for ``horizon`` (1d, 1w, 1m, 3m, 6m, 12m) as a polars DataFrame.

    ``split``: 'train', 'val', 'test' or None (all rows). ``keep_purged``: keep the rows whose target
    window crosses a split boundary (and return ``purged_<h>``). ``warehouse``: defaults to the
    configured one (``CHIMERA_WAREHOUSE``: DuckDB or BigQuery). Columns: ``output_columns``; rows
    sorted by data_date. ``include_hindsight``: also the hindsight columns (``HINDSIGHT_COLUMNS``: the
    regime name and weight, from a calendar written after the fact; left out of the features by
    default). ``as_pandas``: a pandas frame with Arrow dtypes (``to_pandas``) instead of polars.
    Raises ``TrainingReadError`` on a bad root/horizon/split or a missing table.
    """
    h = check_horizon(horizon)
    parts = [f for _, _, _, f in iter_read(root, h, split, keep_purged, warehouse, include_hindsight)]
    if not parts:
        schema = training_table("ZL").polars_schema()
        out = pl.DataFrame(schema={c: schema[c] for c in output_columns(h, keep_purged, include_hindsight)})
    else:
        out = pl.concat(parts, how="vertical").sort("data_date")
    return to_pandas(out) if as_pandas else out
