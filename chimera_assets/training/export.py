"""``chimera export``: write one root's training set for one horizon to a parquet or CSV file.

    chimera export --root ZL --horizon 1m --split val --format parquet --out zl_1m_val.parquet

The rows and columns are those of ``chimera_assets.training.reader.read`` (features, the chosen target, its
roll-crossing flag, the weight; purged rows of that horizon dropped unless ``--keep-purged``), read
from the configured warehouse (``CHIMERA_WAREHOUSE``: DuckDB or BigQuery) one calendar year at a
time, with a progress line per year on stderr. The file is written beside ``--out`` under a
temporary name and renamed into place at the end, so a failed export never leaves a half-written
file (and never replaces an existing one). Exit 0 on success, 2 with one message naming the bad
input (root, horizon, split, format, path, or a training table that does not exist), 1 when the
warehouse fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from chimera_assets.output_target import OutputTarget, OutputTargetError, check_output_target
from chimera_assets.schemas import training_table
from chimera_assets.training.reader import (
    HORIZONS,
    SPLITS,
    TrainingReadError,
    check_horizon,
    check_root,
    check_split,
    iter_read,
    output_columns,
)
from chimera_assets.training.schema_file import schema_document, write_schema_file
from chimera_assets.warehouse.base import Warehouse, WarehouseError

FORMATS = ("parquet", "csv")
# ISO-8601 UTC with a Z (``2024-01-02T22:00:00Z``; fractional seconds only when there are any).
CSV_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class ExportError(ValueError):
    """A bad export argument (path or format); the message names it."""


def check_out_path(out: Path) -> Path:
    """``out`` if a file can be written there by the rule of ``chimera_assets/output_target.py``."""
    try:
        return check_output_target(out).path or Path("-")
    except OutputTargetError as exc:
        raise ExportError(str(exc)) from None


def _target(out: Path) -> OutputTarget:
    try:
        return check_output_target(out)
    except OutputTargetError as exc:
        raise ExportError(str(exc)) from None


def _empty(horizon: str, keep_purged: bool) -> pl.DataFrame:
    schema = training_table("ZL").polars_schema()  # same columns and types for every root
    return pl.DataFrame(schema={c: schema[c] for c in output_columns(horizon, keep_purged)})


def export_training_set(
    root: str,
    horizon: str,
    out: Path,
    fmt: str = "parquet",
    split: str | None = None,
    keep_purged: bool = False,
    warehouse: Warehouse | None = None,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Write the training set (``reader.read``'s rows and columns) to ``out``; returns the row count.

    Every argument is validated before anything is read or written (``TrainingReadError`` /
    ``ExportError``). ``progress`` gets one line per calendar year read."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown --format {fmt!r}; one of {list(FORMATS)}")
    root, horizon, split = check_root(root), check_horizon(horizon), check_split(split)
    target = _target(out)
    out = target.path or Path(tempfile.mkdtemp()) / "stdout"  # '-': staged, then copied to stdout
    say = progress or (lambda _msg: None)
    say(f"export {root} {horizon}: writing to {target.describe()}")
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    rows, writer = 0, None
    try:
        with open(tmp, "wb") as fh:
            for i, n_years, year, frame in iter_read(root, horizon, split, keep_purged, warehouse):
                if fmt == "parquet":
                    table = frame.to_arrow()
                    if writer is None:
                        writer = pq.ParquetWriter(fh, table.schema, compression="zstd")
                    writer.write_table(table)
                else:
                    frame.write_csv(fh, include_header=writer is None, datetime_format=CSV_DATETIME_FORMAT)
                    writer = True  # the header is written once, with the first year
                rows += frame.height
                say(f"export {root} {horizon}: year {year} ({i}/{n_years}): {frame.height} rows, {rows} so far")
            if writer is None:  # no rows at all: an empty file with the columns
                empty = _empty(horizon, keep_purged)
                if fmt == "parquet":
                    empty.write_parquet(fh)
                else:
                    empty.write_csv(fh, datetime_format=CSV_DATETIME_FORMAT)
            elif fmt == "parquet":
                writer.close()
        if target.stdout:
            with open(tmp, "rb") as src:
                shutil.copyfileobj(src, sys.stdout.buffer)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    _write_schema(out, root, horizon, split, keep_purged, fmt, rows)
    say(f"export {root} {horizon}: wrote {rows} rows to {out}")
    return rows


def _write_schema(out: Path, root: str, horizon: str, split: str | None, keep_purged: bool, fmt: str,
                  rows: int) -> None:
    """The schema file beside ``out`` (``training.schema_file``): names, types, units, descriptions, flags."""
    from chimera_assets.settings import roll_adjustment

    doc = schema_document(root, output_columns(horizon, keep_purged), horizon=horizon, split=split,
                          keep_purged=keep_purged, file_format=fmt, rows=rows, roll_adjustment=roll_adjustment())
    write_schema_file(out, doc)


def add_export_parser(sub) -> argparse.ArgumentParser:
    """The ``export`` subcommand of ``chimera`` (``sub``: the CLI's subparsers)."""
    p = sub.add_parser("export", help="write one root's training set for one horizon to parquet or CSV")
    p.add_argument("--root", required=True, help="a root of the universe, e.g. ZL")
    p.add_argument("--horizon", required=True, help=f"target horizon: {', '.join(HORIZONS)}")
    p.add_argument("--split", help=f"only this split: {', '.join(SPLITS)} (default: all rows)")
    p.add_argument("--keep-purged", action="store_true",
                   help="keep rows whose target window crosses a split boundary (adds purged_<h>)")
    p.add_argument("--format", default="parquet", help="parquet (default) or csv")
    p.add_argument("--out", type=Path, required=True, help="the file to write (its directory must exist)")
    return p


def cmd_export(args: argparse.Namespace) -> int:
    from chimera_assets.settings import SettingsError, get_settings
    from chimera_assets.warehouse import get_warehouse

    def fail(msg: str, code: int = EXIT_USAGE) -> int:
        print(f"chimera: error: {msg}", file=sys.stderr)
        return code

    try:
        wh = get_warehouse(get_settings())
    except SettingsError as exc:
        return fail(str(exc))
    try:
        rows = export_training_set(args.root, args.horizon, args.out, args.format, args.split, args.keep_purged,
                                   wh, progress=lambda m: print(m, file=sys.stderr, flush=True))
    except (TrainingReadError, ExportError) as exc:
        return fail(str(exc))
    except (WarehouseError, OSError) as exc:
        return fail(f"export failed, nothing written to {args.out}: {exc}", EXIT_FAILED)
    finally:
        wh.close()
    print(f"wrote {rows} rows to {args.out}", file=sys.stderr if str(args.out) == "-" else sys.stdout)
    return EXIT_OK
