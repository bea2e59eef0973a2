"""Training sets out of the training tables: per-horizon kept rows, the card, the reader, the export
(both backends), and the blocking target-leakage check (SPEC 6.7, issue 18)."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from chimera_assets.cli import main as cli_main
from chimera_assets.features.versions import TRAINING_CODE_VERSION
from chimera_assets.lib.checks.audits import audit_for
from chimera_assets.schemas import TARGET_HORIZONS, training_table
from chimera_assets.training import reader as training
from chimera_assets.training.card import kept_rows, training_card
from chimera_assets.training.export import ExportError, export_training_set
from chimera_assets.training.leakage import CHECK_NAME, MIN_PAIRS, THRESHOLDS, leakage_report
from chimera_assets.training.schema_file import polars_schema, read_schema_file
from chimera_assets.warehouse import AuditFailed, Slice, get_warehouse
from chimera_assets_tests.frames import frame_hash
from chimera_assets_tests.training_frames import (
    inject_next_close_leak,
    multi_year_training,
    sessions_per_split,
)

SPEC = training_table("ZL")
LOOKAHEAD = {f"target_{h}" for h, _ in TARGET_HORIZONS} | {f"target_crosses_roll_{h}" for h, _ in TARGET_HORIZONS} \
    | {f"target_{h}_raw" for h, _ in TARGET_HORIZONS} | {"purged", *(f"purged_{h}" for h, _ in TARGET_HORIZONS)}
HINDSIGHT = {"regime_name", "regime_weight"}  # the regime calendar was written after the fact


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return multi_year_training()


def _expected(frame: pl.DataFrame, horizon: str, split: str | None, keep_purged: bool = False) -> pl.DataFrame:
    """The training set computed the plain way: the table minus the dropped rows and columns."""
    out = frame if split is None else frame.filter(pl.col("split") == split)
    if not keep_purged:
        out = out.filter(~pl.col(f"purged_{horizon}"))
    dropped = (LOOKAHEAD - {f"target_{horizon}", f"target_{horizon}_raw", f"target_crosses_roll_{horizon}"}
               - ({f"purged_{horizon}"} if keep_purged else set())) | {"ingestion_ts"} | HINDSIGHT
    return out.drop(sorted(dropped)).sort("data_date")


# --- kept rows and the card ---------------------------------------------------------------------------
def test_1d_horizon_keeps_at_least_95_percent_of_each_split_on_a_multi_year_frame(frame):
    # 2021-2025: train 2021-2022, val 2023, test 2024-2025, all three with ~250+ sessions a year.
    kept = kept_rows(frame)
    one_day = {s: r for s, *r in kept.filter(pl.col("horizon") == "1d").select(
        "split", "rows", "kept", "kept_fraction").rows()}
    for split, (rows, _kept, fraction) in one_day.items():
        assert rows > 240, split
        assert fraction >= 0.95, (split, fraction)
    # Exactly the last session before each boundary goes: 2022-12-30 from train, 2023-12-29 from val.
    assert one_day["train"][1] == one_day["train"][0] - 1 and one_day["val"][1] == one_day["val"][0] - 1
    assert one_day["test"][1] == one_day["test"][0]
    assert frame.filter(pl.col("purged_1d"))["data_date"].to_list() == [date(2022, 12, 30), date(2023, 12, 29)]
    # The any-horizon flag keeps only the val rows whose 12m window (252 sessions) ends inside 2023.
    val = frame.filter(pl.col("split") == "val")
    assert {s: frame.filter(pl.col("split") == s).height for s in ("train", "val", "test")} == sessions_per_split()
    assert val["purged"].sum() == val["purged_12m"].sum() == 252 < val.height


def test_card_shows_kept_rows_coverage_targets_and_roll_crossings(frame):
    f = frame.with_columns(  # a feature that starts late: NULL on the first 100 sessions
        pl.when(pl.int_range(pl.len()) >= 100).then(pl.col("close") / 100).otherwise(None).alias("vol_percentile"))
    card = training_card(f, SPEC.fqn)
    lines = card.splitlines()
    val = f.filter(pl.col("split") == "val")
    n_val, n_test = val.height, f.filter(pl.col("split") == "test").height
    val_line = next(x for x in lines if x.startswith("| val |"))
    assert val_line.startswith(f"| val | {n_val} | {n_val - 1} / {n_val - 1} (")
    # 12m: only the rows whose t+252 is still in 2023 are kept (n_val - 252); 1w: the last five go.
    kept_12m = n_val - 252
    assert val_line.endswith(f" | {kept_12m} / {kept_12m} ({100 * kept_12m / n_val:.1f}%) |")
    assert f" {n_val - 5} / {n_val - 5} (" in val_line
    test_line = next(x for x in lines if x.startswith("| test |"))
    assert test_line.startswith(f"| test | {n_test} | {n_test} / {n_test - 1} (100.0%)")
    # Feature coverage: NULL share and the first and last dates with a value.
    first = f["data_date"][100]
    assert f"| vol_percentile | {100 * 100 / f.height:.1f}% | {first} | {f['data_date'].max()} |" in lines
    assert "| vwap | 100.0% | never | never |" in lines  # the synthetic matrix has no market features
    # Target distribution: n and mean of target_1d.
    t1d = f["target_1d"].drop_nulls()
    assert any(x.startswith(f"| 1d | {t1d.len()} | {t1d.mean():.5f} | {t1d.std():.5f} |") for x in lines)
    # Roll crossings: one contract change every 63 sessions -> the 1d windows crossing one are the
    # sessions just before a change.
    changes = (f["close"].len() - 1) // 63
    assert f"| 1d | {t1d.len()} | {changes} | {100 * changes / t1d.len():.1f}% | 0 |" in lines


def test_card_of_an_empty_table_says_so():
    assert "holds no rows" in training_card(SPEC.empty_frame(), SPEC.fqn)


# --- reader -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("horizon", "split"), [("1w", "val"), ("1d", None), ("12m", "train"), ("3m", "test")])
def test_reader_returns_features_one_target_and_drops_that_horizons_purged_rows(frame, duckdb_warehouse,
                                                                                  horizon, split):
    duckdb_warehouse.merge(SPEC, frame, Slice.whole_table())
    got = training.read("zl", horizon, split=split, warehouse=duckdb_warehouse)
    want = _expected(frame, horizon, split)
    assert got.columns == training.output_columns(horizon)
    assert not (set(got.columns) & (LOOKAHEAD - {f"target_{horizon}", f"target_{horizon}_raw",
                                              f"target_crosses_roll_{horizon}"}))
    assert not (set(got.columns) & HINDSIGHT) and "training_weight" in got.columns
    assert got.equals(want)
    assert got.height == frame.filter(
        (pl.col("split") == split) if split else pl.lit(True), ~pl.col(f"purged_{horizon}")).height


def test_reader_keep_purged_returns_the_purged_rows_and_their_flag(frame, duckdb_warehouse):
    duckdb_warehouse.merge(SPEC, frame, Slice.whole_table())
    got = training.read("ZL", "1w", split="train", keep_purged=True, warehouse=duckdb_warehouse)
    assert got.equals(_expected(frame, "1w", "train", keep_purged=True))
    assert got["purged_1w"].sum() == 5 and got.height == frame.filter(pl.col("split") == "train").height


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"root": "ZL", "horizon": "2w"}, "unknown horizon '2w'"),
        ({"root": "ZL", "horizon": "1d", "split": "holdout"}, "unknown split 'holdout'"),
        ({"root": "XYZ", "horizon": "1d"}, "unknown root(s) ['XYZ']"),
        ({"root": "MES", "horizon": "1d"}, "training.mes_training_daily does not exist"),
    ],
)
def test_reader_refuses_bad_arguments_with_one_clear_error(frame, duckdb_warehouse, kwargs, needle):
    duckdb_warehouse.merge(SPEC, frame, Slice.whole_table())
    with pytest.raises(training.TrainingReadError) as info:
        training.read(**kwargs, warehouse=duckdb_warehouse)
    assert needle in str(info.value)


# --- export -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("horizon", "split", "keep"), [("1m", None, False), ("1d", "val", False), ("1w", "test", True)])
def test_export_parquet_round_trips_on_both_backends(frame, warehouse, tmp_path, horizon, split, keep):
    warehouse.merge(SPEC, frame, Slice.whole_table())
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "set.parquet"
    lines: list[str] = []
    n = export_training_set("ZL", horizon, out, "parquet", split, keep, warehouse, progress=lines.append)
    back = pl.read_parquet(out)
    # The table as stored, minus the dropped columns and rows, equals the file.
    want = _expected(warehouse.read(SPEC), horizon, split, keep)
    assert back.equals(want) and n == want.height > 200
    assert any("year 2023" in x for x in lines) or split == "test"
    assert lines[-1].endswith(f"wrote {n} rows to {out}")
    # No temporary file left; the schema file beside the data file.
    assert sorted(p.name for p in out.parent.iterdir()) == ["set.parquet", "set.parquet.schema.json"]
    doc = read_schema_file(out)
    # The schema file round-trips: its names and types are the file's, in order.
    assert polars_schema(doc) == dict(back.schema)
    assert [c["name"] for c in doc["columns"]] == back.columns
    assert (doc["root"], doc["horizon"], doc["rows"], doc["roll_adjustment"]) == ("ZL", horizon, n, "ratio")
    cols = {c["name"]: c for c in doc["columns"]}
    assert cols[f"target_{horizon}"]["lookahead"] and not cols["close"]["lookahead"]
    assert cols["training_weight"]["hindsight"] and cols["close"]["unit"].startswith("price units")
    assert all(c["description"] and c["family"] for c in doc["columns"]), doc["columns"]
    assert doc["code_version"] == TRAINING_CODE_VERSION


def test_cli_export_writes_csv_and_parquet_with_progress_on_stderr(frame, tmp_path, capsys):
    get_warehouse().merge(SPEC, frame, Slice.whole_table())  # the configured warehouse (CHIMERA_HOME)
    pq_out, csv_out = tmp_path / "zl_1m.parquet", tmp_path / "zl_1w.csv"
    assert cli_main(["export", "--root", "ZL", "--horizon", "1m", "--format", "parquet", "--out", str(pq_out)]) == 0
    err = capsys.readouterr().err
    assert "export ZL 1m: year 2021 (1/5)" in err and "year 2025 (5/5)" in err
    assert pl.read_parquet(pq_out).equals(_expected(frame, "1m", None))
    # CSV over five yearly reads: one header, every row.
    assert cli_main(["export", "--root", "ZL", "--horizon", "1w", "--keep-purged", "--format", "csv",
                     "--out", str(csv_out)]) == 0
    want = _expected(frame, "1w", None, keep_purged=True)
    assert csv_out.read_text().count("symbol,data_date") == 1
    back = pl.read_csv(csv_out, schema=want.schema)
    assert back.equals(want) and back.height == frame.height
    # Instants as ISO-8601 UTC with a Z; the schema file alone types the CSV back like the table.
    first = csv_out.read_text().splitlines()[1].split(",")
    assert first[2].endswith("Z") and first[2].startswith(want["timestamp"][0].strftime("%Y-%m-%dT%H:%M:%S"))
    assert pl.read_csv(csv_out, schema=polars_schema(read_schema_file(csv_out))).equals(want)


def test_export_of_an_empty_split_writes_an_empty_file_with_the_columns(frame, duckdb_warehouse, tmp_path):
    duckdb_warehouse.merge(SPEC, frame.filter(pl.col("split") == "test"), Slice.whole_table())
    out = tmp_path / "val.parquet"
    assert export_training_set("ZL", "1d", out, "parquet", "val", warehouse=duckdb_warehouse) == 0
    back = pl.read_parquet(out)
    assert back.height == 0 and back.columns == training.output_columns("1d")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--root", "XYZ", "--horizon", "1m"], "unknown root(s) ['XYZ']"),
        (["--root", "ZL", "--horizon", "5d"], "unknown horizon '5d'"),
        (["--root", "ZL", "--horizon", "1m", "--split", "dev"], "unknown split 'dev'"),
        (["--root", "ZL", "--horizon", "1m", "--format", "xlsx"], "unknown --format 'xlsx'"),
        (["--root", "MES", "--horizon", "1m"], "training.mes_training_daily does not exist"),
        (["--root", "ZL", "--horizon", "1m", "--out", "{tmp}/missing/x.parquet"], "does not exist"),
        (["--root", "ZL", "--horizon", "1m", "--out", "{tmp}"], "is an existing directory"),
    ],
)
def test_cli_export_bad_input_exits_2_with_one_message_and_writes_nothing(frame, tmp_path, capsys, args, needle):
    get_warehouse().merge(SPEC, frame, Slice.whole_table())
    out = tmp_path / "keep.parquet"
    out.write_bytes(b"old")
    if "--out" not in args:
        args = [*args, "--out", str(out)]
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert cli_main(["export", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("error") == 1, err
    assert out.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["keep.parquet"]


def test_export_checks_the_path_before_reading(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        export_training_set("ZL", "1d", tmp_path / "no" / "x.parquet", warehouse=get_warehouse())


# --- leakage ----------------------------------------------------------------------------------------------
def test_leakage_check_passes_honest_features_and_trips_on_a_next_close_feature(frame):
    honest = leakage_report(frame)
    assert honest.passed, honest.summary()
    judged = honest.correlations.filter(pl.col("judged"))
    assert set(judged["split"]) == {"train", "val", "test"} and "close" in set(judged["feature"])

    leaked = leakage_report(inject_next_close_leak(frame))
    assert not leaked.passed
    off = leaked.offenders
    assert set(off["feature"]) == {"distance_to_P"} and set(off["split"]) == {"train", "val", "test"}
    assert (off.filter(pl.col("target") == "target_1d")["rho"].abs() > THRESHOLDS["target_1d"]).all()
    meta = leaked.metadata()
    assert meta["worst_feature"] == "distance_to_P" and meta["worst_target"] == "target_1d"
    for split in ("train", "val", "test"):
        entry = meta["per_split"][split]
        assert entry["worst_feature"] == "distance_to_P" and abs(entry["rho"]) > entry["threshold"] == 0.4
    assert "distance_to_P vs target_1d" in leaked.summary()


def test_leakage_check_does_not_judge_splits_with_too_few_rows(frame):
    small = inject_next_close_leak(frame).filter(pl.col("split") == "val").head(MIN_PAIRS - 10)
    report = leakage_report(small)
    assert report.passed and report.metadata()["per_split"]["val"]["note"].startswith("not judged")


def test_leakage_audit_blocks_publication_and_leaves_the_table_unchanged(frame, duckdb_warehouse):
    audit = audit_for(SPEC)
    duckdb_warehouse.merge(SPEC, frame, Slice.whole_table(), audit=audit)  # honest rows: published
    before = frame_hash(duckdb_warehouse.read(SPEC))
    bad = inject_next_close_leak(frame).with_columns(pl.col("close") + 0)
    with pytest.raises(AuditFailed, match="target leakage: .*distance_to_P vs target_1d") as info:
        duckdb_warehouse.merge(SPEC, bad, Slice.whole_table(), audit=audit)
    assert info.value.metadata[CHECK_NAME]["worst_feature"] == "distance_to_P"
    assert frame_hash(duckdb_warehouse.read(SPEC)) == before


def test_card_states_the_policy_time_basis_and_the_roll_adjustment(frame):
    assert "Policy features" not in training_card(frame, SPEC.fqn)
    card = training_card(frame, SPEC.fqn, policy_time="knowledge", roll_adjustment="ratio")
    assert ("Policy features: events counted by knowledge time (the later of event and collection time) "
            "(CHIMERA_POLICY_TIME=knowledge), each root cut at its own session close.") in card
    assert "roll-adjusted by ratio" in card
    assert "counted by event time (CHIMERA_POLICY_TIME=event)" in training_card(frame, SPEC.fqn, policy_time="event")
