"""The schema file every ``chimera export`` writes beside its data file: ``<out>.schema.json``.

One JSON object: ``format`` (1), ``table``, ``root``, ``horizon``, ``split``, ``roll_adjustment``,
``code_version`` (the training tables'), ``file_format``, ``rows`` and ``columns``, a list in the data
file's column order of ``{name, type (BigQuery), polars_type, nullable, unit, description, family,
lookahead, hindsight, code_version}``. ``read_schema_file`` turns it back into a polars schema, so a CSV
reads back with the types the parquet has (``polars_schema``). Pure: no Dagster, no warehouse.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl

from chimera_assets.features.columns import column_doc
from chimera_assets.features.versions import TRAINING_CODE_VERSION
from chimera_assets.schemas import Column, training_table

FORMAT_VERSION = 1
# BigQuery type -> a polars dtype, for reading a file back (instants always in UTC).
_POLARS = {"STRING": pl.Utf8, "INT64": pl.Int64, "FLOAT64": pl.Float64, "BOOL": pl.Boolean, "DATE": pl.Date,
           "TIMESTAMP": pl.Datetime("us", "UTC")}


def schema_path(out: Path) -> Path:
    """Where the schema file of the data file ``out`` goes: ``<out>.schema.json`` beside it."""
    return Path(out).with_name(Path(out).name + ".schema.json")


def schema_document(root: str, columns: list[str], **info) -> dict:
    """The schema file's content for ``columns`` of ``root``'s training table; ``info`` adds the
    export's parameters (horizon, split, roll_adjustment, file_format, rows)."""
    spec = training_table(root)
    by_name: dict[str, Column] = {c.name: c for c in spec.columns}
    cols = []
    for name in columns:
        c = by_name[name]
        cols.append({"name": name, "type": c.type, "polars_type": str(c.polars_dtype()), "nullable": c.nullable,
                     **column_doc(c, spec.name)})
    return {"format": FORMAT_VERSION, "table": spec.fqn, "root": root, "code_version": TRAINING_CODE_VERSION,
            **info, "columns": cols}


def write_schema_file(out: Path, document: dict) -> Path:
    """Write ``document`` to ``schema_path(out)`` atomically (temporary name, then rename)."""
    path = schema_path(out)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_schema_file(path: Path) -> dict:
    """The schema file at ``path`` (or beside the data file ``path``) as a dict."""
    path = Path(path)
    if not path.name.endswith(".schema.json"):
        path = schema_path(path)
    return json.loads(path.read_text(encoding="utf-8"))


def polars_schema(document: dict) -> dict[str, pl.DataType]:
    """The column -> polars dtype mapping a schema file declares (for ``pl.read_csv(schema=...)``)."""
    return {c["name"]: _POLARS[c["type"]] for c in document["columns"]}
