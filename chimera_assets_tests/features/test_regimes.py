"""Regime YAML validation, calendar, weights and per-date lookup (SPEC 6.4 "regime", 6.6)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from chimera_assets.features.regimes import (
    CALENDAR_SCHEMA,
    DEFAULT_CALENDAR_END,
    DEFAULT_CALENDAR_START,
    Regime,
    RegimeConfigError,
    build_regime_calendar,
    build_regime_weights,
    load_regimes,
    regime_for_dates,
    validate_regimes,
)

SPEC_WEIGHTS = {
    "tech_bubble_1998_2000": (date(1998, 1, 1), date(2000, 3, 31), 50),
    "commodity_emergence_2000_2003": (date(2000, 4, 1), date(2003, 12, 31), 75),
    "china_supercycle_2004_2007": (date(2004, 1, 1), date(2007, 7, 31), 100),
    "financial_crisis_2008_2009": (date(2007, 8, 1), date(2009, 6, 30), 200),
    "qe_commodity_boom_2010_2011": (date(2009, 7, 1), date(2011, 12, 31), 150),
    "plateau_transition_2012_2014": (date(2012, 1, 1), date(2014, 6, 30), 100),
    "commodity_crash_2014_2016": (date(2014, 7, 1), date(2016, 12, 31), 250),
    "pre_tradewar_2017": (date(2017, 1, 1), date(2017, 12, 31), 125),
    "tradewar_escalation_2018_2019": (date(2018, 1, 1), date(2019, 12, 31), 300),
    "covid_shock_2020": (date(2020, 1, 1), date(2020, 12, 31), 350),
    "covid_recovery_2021": (date(2021, 1, 1), date(2021, 6, 30), 200),
    "inflation_surge_2021_2022": (date(2021, 7, 1), date(2022, 12, 31), 400),
    "disinflation_2023": (date(2023, 1, 1), date(2023, 10, 31), 250),
    "trump_anticipation_2024": (date(2023, 11, 1), date(2025, 1, 19), 400),
    "trump_second_term": (date(2025, 1, 20), date(2029, 1, 20), 600),
}


def write_yaml(tmp_path: Path, regimes: str, baseline: str = "") -> Path:
    path = tmp_path / "regimes.yaml"
    path.write_text(f"{baseline}regimes:\n{regimes}", encoding="utf-8")
    return path


def test_default_yaml_matches_spec_6_6():
    regimes = load_regimes()
    dated = {r.name: (r.start, r.end, r.weight) for r in regimes if not r.is_baseline}
    assert dated == SPEC_WEIGHTS
    assert regimes[-1] == Regime("baseline", None, None, 100, regimes[-1].description)
    assert all(r.description for r in regimes)


def test_calendar_2023_11_01_to_2029_01_20_has_1908_rows():
    cal = build_regime_calendar(load_regimes(), date(2023, 11, 1), date(2029, 1, 20))
    assert cal.schema == pl.Schema(CALENDAR_SCHEMA)
    # One row per calendar day, counted by date arithmetic: the two regimes of SPEC 6.6 split the range
    # at 2025-01-19 / 2025-01-20.
    def days(a: date, b: date) -> int:
        return (b - a).days + 1

    assert cal.height == days(date(2023, 11, 1), date(2029, 1, 20)) == 1908
    assert dict(cal.group_by("regime").len().rows()) == {
        "trump_anticipation_2024": days(date(2023, 11, 1), date(2025, 1, 19)),
        "trump_second_term": days(date(2025, 1, 20), date(2029, 1, 20)),
    }
    first = cal.row(0, named=True)
    assert first == {
        "date": date(2023, 11, 1),
        "regime": "trump_anticipation_2024",
        "valid_from": date(2023, 11, 1),
        "valid_to": date(2025, 1, 19),
    }


def test_default_calendar_range_is_one_row_per_day_with_baseline_after_the_last_regime():
    cal = build_regime_calendar(load_regimes())
    assert (cal["date"].min(), cal["date"].max()) == (DEFAULT_CALENDAR_START, DEFAULT_CALENDAR_END)
    assert cal.height == (DEFAULT_CALENDAR_END - DEFAULT_CALENDAR_START).days + 1 == 11688
    assert cal["date"].is_unique().all()
    # The default regimes tile 1998-01-01 .. 2029-01-20 without gaps; afterwards: baseline, open-ended.
    assert cal.filter(pl.col("date") <= date(2029, 1, 20))["regime"].ne("baseline").all()
    tail = cal.filter(pl.col("date") > date(2029, 1, 20))
    assert tail.height == (DEFAULT_CALENDAR_END - date(2029, 1, 20)).days
    assert tail.select("regime", "valid_from", "valid_to").unique().rows() == [
        ("baseline", date(2029, 1, 21), None)
    ]


def test_dates_outside_all_regimes_get_baseline_weight_100():
    dates = pl.Series([date(2030, 6, 1), date(1990, 1, 1), None, date(2020, 5, 5), date(2029, 1, 20)])
    out = regime_for_dates(load_regimes(), dates)
    assert out.schema == pl.Schema({"date": pl.Date, "regime_name": pl.Utf8, "regime_weight": pl.Int64})
    assert out.rows() == [
        (date(2030, 6, 1), "baseline", 100),
        (date(1990, 1, 1), "baseline", 100),
        (None, None, None),
        (date(2020, 5, 5), "covid_shock_2020", 350),
        (date(2029, 1, 20), "trump_second_term", 600),
    ]


def test_baseline_gap_bounds_and_custom_baseline_weight(tmp_path: Path):
    path = write_yaml(
        tmp_path,
        "  - {name: a, start: 2020-01-01, end: 2020-01-02, weight: 200}\n"
        "  - {name: b, start: 2020-01-05, end: 2020-01-05, weight: 300, description: short}\n",
        baseline="baseline: {name: baseline, weight: 120, description: fallback}\n",
    )
    regimes = load_regimes(path)
    cal = build_regime_calendar(regimes, date(2019, 12, 31), date(2020, 1, 6))
    assert cal.rows() == [
        (date(2019, 12, 31), "baseline", None, date(2019, 12, 31)),  # no regime before
        (date(2020, 1, 1), "a", date(2020, 1, 1), date(2020, 1, 2)),
        (date(2020, 1, 2), "a", date(2020, 1, 1), date(2020, 1, 2)),
        (date(2020, 1, 3), "baseline", date(2020, 1, 3), date(2020, 1, 4)),  # the gap between a and b
        (date(2020, 1, 4), "baseline", date(2020, 1, 3), date(2020, 1, 4)),
        (date(2020, 1, 5), "b", date(2020, 1, 5), date(2020, 1, 5)),
        (date(2020, 1, 6), "baseline", date(2020, 1, 6), None),  # no regime after
    ]
    weights = build_regime_weights(regimes)
    assert weights.schema == pl.Schema({"regime": pl.Utf8, "weight": pl.Int64, "description": pl.Utf8})
    assert weights.rows() == [("a", 200, ""), ("b", 300, "short"), ("baseline", 120, "fallback")]
    looked_up = regime_for_dates(regimes, [date(2020, 1, 3), date(2020, 1, 5)])
    assert looked_up["regime_weight"].to_list() == [120, 300]


def test_default_weights_table():
    weights = build_regime_weights(load_regimes())
    assert weights.height == len(SPEC_WEIGHTS) + 1  # the dated regimes and the baseline
    assert dict(zip(weights["regime"], weights["weight"], strict=True)) == {
        **{k: v[2] for k, v in SPEC_WEIGHTS.items()},
        "baseline": 100,
    }


def test_overlapping_regimes_are_rejected_naming_both(tmp_path: Path):
    path = write_yaml(
        tmp_path,
        "  - {name: long_one, start: 2020-01-01, end: 2020-12-31, weight: 200}\n"
        "  - {name: inner_short, start: 2020-03-01, end: 2020-03-31, weight: 300}\n"
        "  - {name: later, start: 2021-01-01, end: 2021-12-31, weight: 300}\n",
    )
    with pytest.raises(RegimeConfigError) as info:
        load_regimes(path)
    assert "long_one" in str(info.value) and "inner_short" in str(info.value)
    assert "overlap" in str(info.value)
    # One shared day is an overlap too (end is inclusive), also when built in code.
    touching = [
        Regime("x", date(2020, 1, 1), date(2020, 1, 10), 100),
        Regime("y", date(2020, 1, 10), date(2020, 1, 20), 100),
    ]
    with pytest.raises(RegimeConfigError, match=r"'x'.*'y'"):
        build_regime_calendar(touching, date(2020, 1, 1), date(2020, 1, 31))


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ("{name: ok_name, start: 2020-01-01, end: 2020-12-31, weight: 49}", "weight 49"),
        ("{name: ok_name, start: 2020-01-01, end: 2020-12-31, weight: 1001}", "weight 1001"),
        ("{name: ok_name, start: 2020-01-01, end: 2020-12-31, weight: 100.5}", "weight 100.5"),
        ("{name: ok_name, start: 2020-01-01, end: 2020-12-31, weight: '100'}", "weight '100'"),
        ("{name: ok_name, start: 2020-01-01, end: 2020-12-31, weight: true}", "weight True"),
        ("{name: Bad-Name, start: 2020-01-01, end: 2020-12-31, weight: 100}", "'Bad-Name'"),
        ("{name: 'has space', start: 2020-01-01, end: 2020-12-31, weight: 100}", "'has space'"),
        ("{name: ok_name, start: 2020-12-31, end: 2020-01-01, weight: 100}", "after end"),
        ("{name: ok_name, start: 2020-02-30, end: 2020-12-31, weight: 100}", "day is out of range"),
        ("{name: ok_name, start: 'March 1st', end: 2020-12-31, weight: 100}", "not a date"),
        ("{name: ok_name, start: 2020-01-01, end: 2020-12-31, wieght: 100}", "unknown key(s) ['wieght']"),
    ],
)
def test_bad_regime_entries_are_rejected(tmp_path: Path, entry: str, needle: str):
    path = write_yaml(tmp_path, f"  - {entry}\n")
    with pytest.raises(RegimeConfigError) as info:
        load_regimes(path)
    assert needle in str(info.value)
    assert str(path) in str(info.value)


def test_other_config_errors(tmp_path: Path):
    dup = write_yaml(
        tmp_path,
        "  - {name: a, start: 2020-01-01, end: 2020-01-02, weight: 100}\n"
        "  - {name: a, start: 2021-01-01, end: 2021-01-02, weight: 100}\n",
    )
    with pytest.raises(RegimeConfigError, match="duplicate"):
        load_regimes(dup)
    bad_base = write_yaml(
        tmp_path,
        "  - {name: a, start: 2020-01-01, end: 2020-01-02, weight: 100}\n",
        "baseline: {weight: 20}\n",
    )
    with pytest.raises(RegimeConfigError, match="baseline: weight 20"):
        load_regimes(bad_base)
    (tmp_path / "broken.yaml").write_text("regimes: [unclosed\n", encoding="utf-8")
    with pytest.raises(RegimeConfigError, match="broken.yaml"):
        load_regimes(tmp_path / "broken.yaml")
    with pytest.raises(RegimeConfigError, match="missing.yaml"):
        load_regimes(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="after end"):
        build_regime_calendar(load_regimes(), date(2020, 1, 2), date(2020, 1, 1))


def test_regime_for_dates_matches_the_calendar_everywhere():
    regimes = load_regimes()
    cal = build_regime_calendar(regimes)
    sample = cal["date"].gather_every(7)
    looked_up = regime_for_dates(regimes, sample.reverse())
    expected = cal.filter(pl.col("date").is_in(sample.implode())).sort("date", descending=True)
    assert looked_up["regime_name"].to_list() == expected["regime"].to_list()
    assert looked_up["date"].to_list() == sample.reverse().to_list()
    weights = dict(build_regime_weights(regimes).select("regime", "weight").rows())
    assert looked_up["regime_weight"].to_list() == [weights[r] for r in expected["regime"]]
    assert regime_for_dates(regimes, [date(2025, 1, 19) + timedelta(days=i) for i in range(2)])[
        "regime_name"
    ].to_list() == ["trump_anticipation_2024", "trump_second_term"]


@pytest.mark.parametrize(
    ("regimes", "baseline", "needle"),
    [
        ("  - {name: ok, start: 2020-01-01 10:00:00, end: 2020-12-31, weight: 100}\n", "",
         "regime 'ok': start datetime.datetime(2020, 1, 1, 10, 0) must be a date (YYYY-MM-DD), not a timestamp"),
        ("  - {name: ok, start: 2020-01-01, end: 2020-12-31, weight: 100, description: 5}\n", "",
         "regime 'ok': description 5 must be text"),
        ("  - 7\n", "", "regimes[0]: expected a mapping, got 7"),
        ("  - {name: a, start: 2020-01-01, end: 2020-01-02, weight: 100}\n", "baseline: {colour: 1}\n",
         "baseline: unknown key(s) ['colour']"),
        ("  - {name: a, start: 2020-01-01, end: 2020-01-02, weight: 100}\n", "extra: 1\n",
         "unknown key(s) ['extra']"),
    ],
)
def test_bad_regime_files_name_the_file_the_entry_and_the_key(tmp_path: Path, regimes, baseline, needle):
    path = write_yaml(tmp_path, regimes, baseline)
    with pytest.raises(RegimeConfigError) as info:
        load_regimes(path)
    assert needle in str(info.value) and str(path) in str(info.value)


def test_quoted_iso_dates_and_a_null_description_are_accepted(tmp_path: Path):
    path = write_yaml(
        tmp_path,
        "  - {name: a, start: '2020-01-01', end: ' 2020-01-31 ', weight: 150, description: '  x  '}\n",
        "baseline: {name: base, weight: 120, description: null}\n",
    )
    assert load_regimes(path) == [
        Regime("a", date(2020, 1, 1), date(2020, 1, 31), 150, "x"),
        Regime("base", None, None, 120, ""),
    ]


def test_regimes_built_in_code_are_checked_by_the_same_rules():
    with pytest.raises(RegimeConfigError, match="regime 'Bad': name 'Bad' must match"):
        validate_regimes([Regime("Bad", date(2020, 1, 1), date(2020, 1, 2), 100)])
    with pytest.raises(RegimeConfigError, match="regime 'a': weight True must be an integer in 50..1000"):
        validate_regimes([Regime("a", date(2020, 1, 1), date(2020, 1, 2), True)])  # type: ignore[arg-type]
