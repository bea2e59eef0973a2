"""Roots as the exchange writes them (6E, 10Y, 2YY): accepted by the universe, the partitions, the asset
keys, the table names (quoted on DuckDB), the CLI; the validator names every problem in one message."""

from __future__ import annotations

from datetime import date, time

import dagster as dg
import polars as pl
import pytest

from chimera_assets.lib.asset_keys import training_key
from chimera_assets.lib.partitions import date_symbol_partitions, parse_partition_key, partition_keys_for
from chimera_assets.schemas import check_column_name, check_identifier, table_for, training_table
from chimera_assets.trade_calendar import root_from_series
from chimera_assets.universe import UniverseConfigError, load_universe

DIGIT_ROOTS = ("6E", "10Y", "2YY", "30Y", "6J", "M6E")


def _write(tmp_path, text: str):
    path = tmp_path / "universe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _universe(tmp_path, roots=DIGIT_ROOTS):
    body = "".join(f'  "{r}":\n    series: [{r}.v.0]\n' for r in roots)
    return load_universe(_write(tmp_path, "roots:\n" + body))


def test_roots_starting_with_a_digit_load_with_the_product_tables_calendar_and_close(tmp_path):
    u = _universe(tmp_path)
    assert u.root_names == list(DIGIT_ROOTS)
    assert (u.roots["6E"].calendar, u.roots["6E"].session_close) == ("CMEGlobex_FX", time(16))
    assert (u.roots["10Y"].calendar, u.roots["10Y"].series) == ("CME_Bond", ("10Y.v.0",))
    assert u.require_roots(["6e", " 10y", "6E"]) == ["6E", "10Y"]  # CLI spelling: case-insensitive, deduped


def test_unquoted_digit_keys_are_strings_to_yaml_too(tmp_path):
    u = load_universe(_write(tmp_path, "roots:\n  6E: {series: [6E.v.0]}\n  10Y: {series: [10Y.v.0]}\n"))
    assert u.root_names == ["6E", "10Y"]


@pytest.mark.parametrize("bad", ["6e", "10", "1234567", "6-E", "6E;", "É6"])
def test_still_refused_names(tmp_path, bad):
    # lower case, digits only (no product), too long for the symbol parser, punctuation, non-ASCII
    with pytest.raises(UniverseConfigError) as err:
        load_universe(_write(tmp_path, f"roots:\n  '{bad}': {{series: [ZL.v.0], calendar: CME_Equity}}\n"))
    assert bad in str(err.value) and "at least one letter" in str(err.value)


def test_the_symbol_parser_reads_digit_roots():
    assert [root_from_series(s) for s in ("6E.v.0", "10Y.FUT", "6EH5", "10YZ25", "2YYM4-2YYU4")] == \
        ["6E", "10Y", "6E", "10Y", "2YY"]


def test_partition_keys_and_the_dagster_partitions_accept_digit_roots(tmp_path):
    u = _universe(tmp_path)
    parts = date_symbol_partitions(u)
    keys = partition_keys_for([date(2024, 1, 3)], ["6E", "10Y"])
    assert keys == ["2024-01-03|6E", "2024-01-03|10Y"]
    assert all(parts.has_partition_key(k) for k in keys)
    assert parse_partition_key("2024-01-03|10Y") == (date(2024, 1, 3), "10Y")
    assert parts.get_partition_key_from_str("2024-01-03|6E").keys_by_dimension == {"date": "2024-01-03", "symbol": "6E"}


def test_training_tables_of_digit_roots_are_valid_asset_keys_and_table_names():
    spec = training_table("6E")
    assert (spec.schema, spec.name) == ("training", "6e_training_daily")
    assert training_key("10Y") == dg.AssetKey(["training", "10y_training_daily"])
    assert table_for("training.10y_training_daily").name == "10y_training_daily"  # the allow-list round trip
    with pytest.raises(KeyError):
        table_for("training.6e;drop_training_daily")
    assert check_identifier("6e_training_daily") == "6e_training_daily"
    for bad in ("6e-training", "x y", "a" * 64, "", 'x"'):
        with pytest.raises(ValueError):
            check_identifier(bad)
    with pytest.raises(ValueError):  # BigQuery refuses a column starting with a digit, quoted or not
        check_column_name("6e")


def test_duckdb_writes_and_reads_a_training_table_named_after_a_digit_root(tmp_path):
    from chimera_assets.warehouse.base import Slice
    from chimera_assets.warehouse.duckdb_backend import DuckDBWarehouse

    spec = training_table("6E")
    wh = DuckDBWarehouse(tmp_path / "wh.duckdb")
    frame = spec.empty_frame().vstack(
        pl.DataFrame({"symbol": ["6E"], "data_date": [date(2024, 1, 3)]}).with_columns(
            **{c: pl.lit(None, dt) for c, dt in spec.polars_schema().items() if c not in ("symbol", "data_date")}
        ).select(spec.column_names).cast(spec.polars_schema())
    )
    wh.merge(spec, frame, Slice.whole_table())
    assert wh.read(spec)["symbol"].to_list() == ["6E"]
    with wh.connect() as con:
        names = con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'training'").fetchall()
    assert ("6e_training_daily",) in names


def test_quoted_iso_dates_are_accepted_and_other_strings_named(tmp_path):
    u = load_universe(_write(tmp_path, 'roots:\n  ZL:\n    start: "2010-06-07"\n  ES:\n    start: 2019-05-06\n'))
    assert (u.roots["ZL"].start, u.roots["ES"].start) == (date(2010, 6, 7), date(2019, 5, 6))
    with pytest.raises(UniverseConfigError, match=r"root ZL: start '2010-13-07' is not a date"):
        load_universe(_write(tmp_path, 'roots:\n  ZL:\n    start: "2010-13-07"\n'))
    with pytest.raises(UniverseConfigError, match="not a timestamp"):
        load_universe(_write(tmp_path, "roots:\n  ZL:\n    start: 2010-06-07 10:00:00\n"))


def test_session_close_override_and_its_errors(tmp_path):
    u = load_universe(_write(tmp_path, 'roots:\n  ZL:\n    session_close: "13:15"\n  ES:\n'))
    assert (u.roots["ZL"].session_close, u.roots["ES"].session_close) == (time(13, 15), time(16))
    with pytest.raises(UniverseConfigError, match=r"root ZL: session_close 800 is not a time; write it quoted"):
        load_universe(_write(tmp_path, "roots:\n  ZL:\n    session_close: 13:20\n"))


def test_two_roots_sharing_one_series_are_refused_naming_both(tmp_path):
    text = "roots:\n  ZL:\n    series: [ZL.v.0]\n  ZS:\n    series: [ZS.v.0, ZL.v.0]\n"
    with pytest.raises(UniverseConfigError) as err:
        load_universe(_write(tmp_path, text))
    assert "roots ZL and ZS share the series 'ZL.v.0'" in str(err.value)
    # the default series of a root counts too (ZC's default is ZC.v.0)
    with pytest.raises(UniverseConfigError, match="roots ZC and ZM share the series 'ZC.v.0'"):
        load_universe(_write(tmp_path, "roots:\n  ZC:\n  ZM:\n    series: [ZC.v.0]\n"))


def test_a_root_outside_the_product_table_needs_a_calendar(tmp_path):
    with pytest.raises(UniverseConfigError, match=r"root QQQ: no calendar given and QQQ is not in chimera's product table"):
        load_universe(_write(tmp_path, "roots:\n  QQQ:\n    series: [QQQ.v.0]\n"))
    u = load_universe(_write(tmp_path, "roots:\n  QQQ:\n    series: [QQQ.v.0]\n    calendar: CME_Equity\n"))
    assert (u.roots["QQQ"].calendar, u.roots["QQQ"].session_close) == ("CME_Equity", None)  # None = the calendar's


def test_every_problem_is_named_in_one_message(tmp_path):
    text = ('roots:\n  ZL:\n    start: "June"\n  "6E":\n    calendar: CME_FXX\n  zz:\n    series: [ZZ.v.0]\n'
            '  QQQ:\n    series: [QQQ.v.0]\n  ES:\n    series: [ZL.v.0]\n')
    with pytest.raises(UniverseConfigError) as err:
        load_universe(_write(tmp_path, text))
    msg = str(err.value)
    for needle in ("start 'June' is not a date", "root 6E: unknown calendar 'CME_FXX'", "'zz'",
                   "root QQQ: no calendar given", "roots ZL and ES share the series 'ZL.v.0'"):
        assert needle in msg, msg
    assert msg.count(str(tmp_path / "universe.yaml")) == 1


def test_cli_export_of_a_digit_root(tmp_path, monkeypatch, capsys):
    """``chimera export --root 6e`` finds ``training.6e_training_daily`` (case-insensitive CLI argument)."""
    from chimera_assets.cli import main
    from chimera_assets.warehouse import get_warehouse
    from chimera_assets.warehouse.base import Slice

    monkeypatch.setenv("CHIMERA_UNIVERSE", str(_write(tmp_path, 'roots:\n  "6E": {series: [6E.v.0]}\n')))
    spec = training_table("6E")
    row = {c: None for c in spec.column_names} | {"symbol": "6E", "data_date": date(2024, 1, 3), "target_1d": 0.01,
                                                    "split": "train", "purged_1d": False, "training_weight": 100}
    get_warehouse().merge(spec, pl.DataFrame([row], schema=spec.polars_schema()), Slice.whole_table())
    out = tmp_path / "6e_1d.parquet"
    assert main(["export", "--root", "6e", "--horizon", "1d", "--out", str(out)]) == 0, capsys.readouterr()
    got = pl.read_parquet(out)
    assert got["symbol"].to_list() == ["6E"] and got["target_1d"].to_list() == [0.01]
