"""The table-spec machinery behind ``schemas.py``: identifier rules, ``Column`` and ``TableSpec`` with
their DuckDB / polars / arrow translations, and the compact column declaration helpers.

Types are BigQuery names (the production dialect); the tables themselves are declared in ``schemas.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import polars as pl
import pyarrow as pa

# Names chimera quotes in SQL text (schemas, tables, datasets): ASCII letters, digits, underscore, any
# first character, since training tables are named after roots such as 6E (``6e_training_daily``); both
# DuckDB ("...") and BigQuery (`...`) accept a leading digit in a quoted name. Column names keep a
# letter or underscore first: BigQuery refuses a column starting with a digit even when quoted.
IDENTIFIER = re.compile(r"^[a-z0-9_]{1,63}$", re.IGNORECASE)
COLUMN_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$", re.IGNORECASE)
# Each BigQuery scalar type with its polars dtype, arrow type and DuckDB type (one row per type).
_SCALAR_TYPES: dict[str, tuple[pl.DataType, pa.DataType, str]] = {
    "STRING": (pl.Utf8(), pa.string(), "VARCHAR"),
    "INT64": (pl.Int64(), pa.int64(), "BIGINT"),
    "FLOAT64": (pl.Float64(), pa.float64(), "DOUBLE"),
    "BOOL": (pl.Boolean(), pa.bool_(), "BOOLEAN"),
    "DATE": (pl.Date(), pa.date32(), "DATE"),
    "TIMESTAMP": (pl.Datetime("us", "UTC"), pa.timestamp("us", tz="UTC"), "TIMESTAMPTZ"),
}
SCALAR_TYPES = tuple(_SCALAR_TYPES)
PARTITION_GRANULARITIES = ("DAY", "MONTH", "YEAR")


def check_identifier(name: str) -> str:
    """Return ``name`` if it is a safe SQL identifier (1-63 ASCII letters, digits, underscores; a leading
    digit allowed, the caller always quotes it), else raise ValueError naming it."""
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise ValueError(f"unsafe SQL identifier {name!r}")
    return name


def check_column_name(name: str) -> str:
    """``check_identifier`` plus a letter or underscore first (BigQuery's rule for column names)."""
    if not isinstance(name, str) or not COLUMN_NAME.match(name):
        raise ValueError(f"unsafe SQL column name {name!r}")
    return name


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True
    fields: tuple[Column, ...] = ()
    description: str = ""
    #: ``lookahead``: uses sessions after the row's (labels); ``hindsight``: decided after the fact (the
    #: regime calendar was written later). Neither may be a model input. Units/descriptions: features/columns.py.
    flags: tuple[str, ...] = ()

    @property
    def lookahead(self) -> bool:
        return "lookahead" in self.flags

    @property
    def hindsight(self) -> bool:
        return "hindsight" in self.flags

    def __post_init__(self) -> None:
        check_column_name(self.name)
        if self.type == "STRUCT":
            if not self.fields:
                raise ValueError(f"STRUCT column {self.name} needs fields")
        elif self.type not in SCALAR_TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type}")

    def polars_dtype(self) -> pl.DataType:
        if self.type == "STRUCT":
            return pl.Struct([pl.Field(f.name, f.polars_dtype()) for f in self.fields])
        return _SCALAR_TYPES[self.type][0]

    def arrow_type(self) -> pa.DataType:
        if self.type == "STRUCT":
            return pa.struct([pa.field(f.name, f.arrow_type(), f.nullable) for f in self.fields])
        return _SCALAR_TYPES[self.type][1]

    def duckdb_type(self) -> str:
        if self.type == "STRUCT":
            inner = ", ".join(f'"{f.name}" {f.duckdb_type()}' for f in self.fields)
            return f"STRUCT({inner})"
        return _SCALAR_TYPES[self.type][2]

    def bigquery_type(self) -> str:
        if self.type == "STRUCT":
            inner = ", ".join(f"`{f.name}` {f.bigquery_type()}" for f in self.fields)
            return f"STRUCT<{inner}>"
        return self.type


@dataclass(frozen=True)
class TableSpec:
    """One warehouse table. ``date_column``/``symbol_column`` define the partition slice."""

    schema: str
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    date_column: str | None = None
    symbol_column: str | None = None
    clustering: tuple[str, ...] = ()
    description: str = ""
    # Columns excluded from content comparisons (e.g. ingestion timestamps).
    volatile_columns: tuple[str, ...] = field(default=())
    #: BigQuery time-partitioning grain of ``date_column`` (spec section 5: MONTH for every table here:
    #: a day of 7 roots is KBs, and one job may modify at most 4,000 partitions, so 15+ years of history
    #: must fit in one MERGE; MONTH keeps 2010-2026 at ~200 partitions).
    partition_granularity: str = "MONTH"
    #: BigQuery ``require_partition_filter``: None = the default rule (raw bar and statistics tables,
    #: i.e. ``market_data`` tables partitioned on a date with a ``symbol`` column; they are large).
    require_partition_filter: bool | None = None

    def __post_init__(self) -> None:
        check_identifier(self.schema)
        check_identifier(self.name)
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.fqn}: duplicate column names")
        for k in (*self.key, *(c for c in (self.date_column, self.symbol_column) if c), *self.clustering):
            if k not in names:
                raise ValueError(f"{self.fqn}: {k} is not a column")
        if self.partition_granularity not in PARTITION_GRANULARITIES:
            raise ValueError(f"{self.fqn}: partition_granularity must be one of {PARTITION_GRANULARITIES}")

    @property
    def fqn(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def partition_filter_required(self) -> bool:
        """Whether BigQuery refuses queries on this table without a filter on ``date_column``."""
        if self.date_column is None:
            return False
        if self.require_partition_filter is not None:
            return self.require_partition_filter
        return self.schema == "market_data" and self.symbol_column == "symbol"

    @property
    def bigquery_clustering(self) -> tuple[str, ...]:
        """BigQuery clustering (spec section 5): the symbol, then the date, then the other declared
        clustering columns (``regime_name`` for the matrix); within a MONTH partition this keeps one
        root's days together, so a (date range, root) slice reads few blocks. At most 4 columns."""
        head = tuple(c for c in self.clustering[:1] if c == self.symbol_column)
        date = (self.date_column,) if self.date_column else ()
        rest = tuple(c for c in self.clustering if c not in head and c not in date)
        return (head + date + rest)[:4]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def value_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.name not in self.key]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.fqn} has no column {name}")

    def polars_schema(self) -> dict[str, pl.DataType]:
        return {c.name: c.polars_dtype() for c in self.columns}

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type(), c.nullable) for c in self.columns])

    def empty_frame(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.polars_schema())


def cols(spec: str, key: tuple[str, ...] = ()) -> tuple[Column, ...]:
    """Compact column declaration: ``"name TYPE, name TYPE"``; key columns are NOT NULL."""
    out = []
    for part in spec.split(","):
        name, typ = part.split()
        out.append(Column(name, typ, nullable=name not in key))
    return tuple(out)


def S(name: str, spec: str, nullable: bool = True) -> Column:  # noqa: N802 - reads like the DDL
    return Column(name, "STRUCT", nullable=nullable, fields=cols(spec))
