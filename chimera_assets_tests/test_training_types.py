"""Typed, described training data (issue 25 items 4-5): hindsight columns are flagged and left out of
the features, the reader's frames are typed (polars, or pandas with Arrow dtypes: no ``object``
column), instants are UTC whatever zone name a backend reports."""

from __future__ import annotations

from datetime import date

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from chimera_assets import schemas
from chimera_assets.training import reader as training
from chimera_assets.warehouse import Slice
from chimera_assets_tests.training_frames import multi_year_training

SPEC = schemas.training_table("ZL")


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return multi_year_training(start=date(2023, 10, 2), end=date(2024, 6, 28))


def test_schema_marks_hindsight_and_lookahead_columns():
    flags = {c.name: c.flags for c in SPEC.columns if c.flags}
    assert {n for n, f in flags.items() if "hindsight" in f} == {"regime_name", "regime_weight", "training_weight"}
    ahead = {n for n, f in flags.items() if "lookahead" in f}
    assert ahead == {c for c in SPEC.column_names if c.startswith(("target_", "purged"))}
    matrix_regime = {f.name: f.hindsight for f in schemas.DAILY_ML_MATRIX.column("regime").fields}
    assert matrix_regime == {"name": True, "weight": True, "vol_percentile": False, "k_vol": False}
    assert schemas.DAILY_ML_MATRIX.column("regime_name").hindsight


def test_reader_leaves_hindsight_columns_out_of_the_features_unless_asked(frame, duckdb_warehouse):
    duckdb_warehouse.merge(SPEC, frame, Slice.whole_table())
    plain = training.read("ZL", "1d", warehouse=duckdb_warehouse, keep_purged=True)
    assert not {"regime_name", "regime_weight"} & set(plain.columns)
    assert not {"regime_name", "regime_weight"} & set(training.FEATURE_COLUMNS)
    assert plain["training_weight"].to_list() == frame["training_weight"].to_list()  # the sample weight stays
    assert {"target_1d", "target_1d_raw", "target_crosses_roll_1d"} <= set(plain.columns)
    asked = training.read("ZL", "1d", warehouse=duckdb_warehouse, include_hindsight=True, keep_purged=True)
    assert asked["regime_name"].to_list() == frame["regime_name"].to_list()
    assert asked.columns == training.output_columns("1d", keep_purged=True, include_hindsight=True)


def test_reader_frames_are_typed_in_polars_and_in_pandas(frame, warehouse):
    """On both backends (BigQuery: the emulator, ``bigquery`` marker)."""
    warehouse.merge(SPEC, frame, Slice.whole_table())
    got = training.read("ZL", "1w", warehouse=warehouse, keep_purged=True)
    want = SPEC.polars_schema()
    assert dict(got.schema) == {c: want[c] for c in got.columns}
    assert got.schema["timestamp"] == pl.Datetime("us", "UTC") and got.schema["data_date"] == pl.Date
    pdf = training.read("ZL", "1w", warehouse=warehouse, keep_purged=True, as_pandas=True)
    assert isinstance(pdf, pd.DataFrame) and list(pdf.columns) == got.columns
    assert [c for c, t in pdf.dtypes.items() if t == object] == []  # noqa: E721 - the exact dtype
    arrow = {c: t.pyarrow_dtype for c, t in pdf.dtypes.items()}
    assert arrow["data_date"] == pa.date32()
    assert arrow["timestamp"] == pa.timestamp("us", tz="UTC")
    assert arrow["price_above_P"] == pa.bool_() and arrow["target_crosses_roll_1w"] == pa.bool_()
    assert arrow["purged_1w"] == pa.bool_() and arrow["volume"] == pa.int64()
    # NULL flags stay missing values of a boolean column (no cast to object or float).
    assert pdf["target_crosses_roll_1w"].isna().sum() == got["target_crosses_roll_1w"].null_count() > 0


def test_typed_names_every_instant_utc():
    other = pl.DataFrame({"timestamp": [None]}, schema={"timestamp": pl.Datetime("us", "Etc/UTC")}).with_columns(
        pl.lit("2024-01-02 22:00:00").str.to_datetime().dt.replace_time_zone("Etc/UTC").alias("timestamp"))
    out = training.typed(other)
    assert out.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert out["timestamp"].dt.hour().to_list() == [22]
