"""Per-root policy cut-offs (SPEC 6.4, ISSUE 25): rows keyed by (trade_date, cutoff), each cut at a
session close of the universe's roots; knowledge time as an option.

Scenario dates: Wed 2025-01-15 (CST: 13:20 CT = 19:20 UTC, 16:00 CT = 22:00 UTC) and Thu 2025-01-16.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chimera_assets.features.policy import POLICY_FEATURE_COLUMNS, compute_policy_features
from chimera_assets.features.policy_cutoffs import policy_cutoffs, root_cutoffs
from chimera_assets.features.session_state import session_schedule
from chimera_assets.universe import load_universe

D, D1 = date(2025, 1, 15), date(2025, 1, 16)
GRAIN_D, EQUITY_D = datetime(2025, 1, 15, 19, 20, tzinfo=UTC), datetime(2025, 1, 15, 22, tzinfo=UTC)
GRAIN_D1, EQUITY_D1 = datetime(2025, 1, 16, 19, 20, tzinfo=UTC), datetime(2025, 1, 16, 22, tzinfo=UTC)
AT_14_CT = datetime(2025, 1, 15, 20, tzinfo=UTC)  # 14:00 CT on D: after the grain close, before 16:00
FEATURES = [c for c, _ in POLICY_FEATURE_COLUMNS]
UNIVERSE = load_universe()


def ev(*rows: tuple) -> pl.DataFrame:
    """(ts, source, text[, ingested_at]) rows -> an events frame."""
    return pl.DataFrame(
        [
            {"ts": r[0], "source": r[1], "text": r[2], "ingested_at": r[3] if len(r) > 3 else None}
            for r in rows
        ],
        schema={
            "ts": pl.Datetime("us", "UTC"),
            "source": pl.Utf8,
            "text": pl.Utf8,
            "ingested_at": pl.Datetime("us", "UTC"),
        },
    )


# A coverage-opening event weeks before, so the grain row of D is covered (and reads 0, not NULL).
EARLY = (datetime(2024, 12, 2, 15, tzinfo=UTC), "blog", "start of coverage")


def at(out: pl.DataFrame, d: date, cut: datetime) -> dict:
    rows = out.filter((pl.col("trade_date") == d) & (pl.col("cutoff") == cut))
    assert rows.height == 1, (d, cut, out.select("trade_date", "cutoff").rows())
    return rows.row(0, named=True)


# ------------------------------------------------------------------------------------------------------
# the cut-off rows
# ------------------------------------------------------------------------------------------------------
def test_default_universe_has_a_grain_and_an_equity_cutoff_on_a_regular_day():
    cuts = policy_cutoffs([D, D1], UNIVERSE)
    assert cuts.rows() == [(D, GRAIN_D), (D, EQUITY_D), (D1, GRAIN_D1), (D1, EQUITY_D1)]
    per_root = dict(root_cutoffs([D], UNIVERSE).select("symbol", "cutoff").rows())
    assert per_root["ZL"] == per_root["ZS"] == GRAIN_D  # CME_Agriculture: 13:20 CT
    assert per_root["MES"] == per_root["ES"] == per_root["CL"] == EQUITY_D


def test_cutoffs_are_the_session_schedule_closes_of_the_roots():
    # The consolidated frame joins on session_schedule's session_close: both must be the same instants,
    # early closes (day after Thanksgiving 2025: 12:00 CT; CL 12:45 CT) and days without a session too.
    days = [date(2025, 11, 26), date(2025, 11, 27), date(2025, 11, 28), date(2025, 12, 1)]
    roots = UNIVERSE.root_names
    keys = pl.DataFrame({"trade_date": days}).join(pl.DataFrame({"symbol": roots}), how="cross")
    sched = session_schedule(
        keys, {r: UNIVERSE.roots[r].calendar for r in roots}, {r: UNIVERSE.roots[r].start for r in roots},
        {r: UNIVERSE.roots[r].session_close for r in roots},
    )
    want = sched.select("trade_date", "symbol", pl.col("session_close").alias("cutoff")).sort(
        "trade_date", "symbol"
    )
    assert_frame_equal(root_cutoffs(days, UNIVERSE), want, check_dtypes=False)
    fri = policy_cutoffs([date(2025, 11, 28)], UNIVERSE)["cutoff"].dt.convert_time_zone("America/Chicago")
    assert [t.strftime("%H:%M") for t in fri.to_list()] == ["12:00", "12:45"]
    # Christmas: no calendar session for any root -> each root's regular close as the fallback (13:20 CT
    # for the grains, 16:00 CT for the others): a policy_features partition exists for every weekday.
    assert policy_cutoffs([date(2025, 12, 25)], UNIVERSE)["cutoff"].to_list() == [
        datetime(2025, 12, 25, 19, 20, tzinfo=UTC), datetime(2025, 12, 25, 22, tzinfo=UTC)
    ]


def test_output_is_keyed_by_trade_date_and_cutoff():
    out = compute_policy_features(ev(EARLY), policy_cutoffs([D, D1], UNIVERSE))
    assert out.columns == ["trade_date", "cutoff", *FEATURES]
    assert out.select("trade_date", "cutoff").rows() == policy_cutoffs([D, D1], UNIVERSE).rows()
    with pytest.raises(ValueError, match="time-zone aware"):
        compute_policy_features(
            ev(EARLY), pl.DataFrame({"trade_date": [D], "cutoff": [datetime(2025, 1, 15, 22)]})
        )


# ------------------------------------------------------------------------------------------------------
# the acceptance scenario: an event at 14:00 CT
# ------------------------------------------------------------------------------------------------------
def test_event_at_14_ct_is_in_the_equity_row_of_d_and_the_grain_row_of_the_next_session_only():
    out = compute_policy_features(
        ev(EARLY, (AT_14_CT, "blog", "Trump talks soybeans")), policy_cutoffs([D, D1], UNIVERSE)
    )
    assert at(out, D, GRAIN_D)["trump_mentions"] == 0  # ZL's close came before the post
    assert at(out, D, GRAIN_D)["policy_trump_recency_decay"] is None  # W7 holds no event yet
    assert at(out, D, EQUITY_D)["trump_mentions"] == 1  # MES's close after it
    assert at(out, D1, GRAIN_D1)["trump_mentions"] == 1  # W1 of ZL's next row: (D 13:20, D+1 13:20]
    assert at(out, D1, EQUITY_D1)["trump_mentions"] == 0  # W1 (D 16:00, D+1 16:00] has passed it
    # Decay is measured from the row's own cut-off: 2 h at MES's close, 23 h 20 min at ZL's next one.
    assert at(out, D, EQUITY_D)["policy_trump_recency_decay"] == pytest.approx(math.exp(-2 / 24))
    assert at(out, D1, GRAIN_D1)["policy_trump_recency_decay"] == pytest.approx(math.exp(-(23 + 1 / 3) / 24))


def test_coverage_is_per_cutoff():
    # The first event at 14:00 CT opens coverage for MES's row of D, for ZL only from D+1.
    out = compute_policy_features(ev((AT_14_CT, "blog", "hello")), policy_cutoffs([D, D1], UNIVERSE))
    grain_d = at(out, D, GRAIN_D)
    assert all(grain_d[c] is None for c in FEATURES)
    assert at(out, D, EQUITY_D)["trump_mentions"] == 0
    assert at(out, D1, GRAIN_D1)["trump_mentions"] == 0
    assert at(out, D1, GRAIN_D1)["trump_action_prob"] == 0.0


# ------------------------------------------------------------------------------------------------------
# point in time, several cut-offs
# ------------------------------------------------------------------------------------------------------
LOUD = "Tariff tariff tariff on China! Trump and Xi, trade war disaster. Big news, stay tuned"


def _week_events() -> pl.DataFrame:
    """Events every ~5 h over two weeks, from several sources, so each cut-off sees a different set."""
    start = datetime(2025, 1, 6, 1, tzinfo=UTC)
    rows = [EARLY]
    texts = [
        "Trump tariff on China",
        "soybean export deal",
        "Trump Xi talk: weak demand",
        LOUD,
        "biofuel mandate",
    ]
    for i in range(70):
        src = ("truth_social_api", "reuters", "blog")[i % 3]
        rows.append((start + timedelta(hours=5 * i, minutes=7 * i), src, texts[i % len(texts)]))
    return ev(*rows)


def test_every_row_only_sees_events_up_to_its_own_cutoff():
    days = [
        date(2025, 1, 13) + timedelta(days=i)
        for i in range(10)
        if (date(2025, 1, 13) + timedelta(days=i)).weekday() < 5
    ]
    cuts = policy_cutoffs(days + [date(2025, 1, 20)], UNIVERSE)  # MLK day: equity early close, grains shut
    assert cuts.group_by("trade_date").len()["len"].max() >= 2
    events = _week_events()
    full = compute_policy_features(events, cuts)
    for d, t in cuts.rows():
        # The row computed from only the events at or before its cut-off equals the full row ...
        visible = events.filter(pl.col("ts") <= t)
        alone = compute_policy_features(visible, pl.DataFrame({"trade_date": [d], "cutoff": [t]}))
        assert_frame_equal(
            alone, full.filter((pl.col("trade_date") == d) & (pl.col("cutoff") == t)), abs_tol=1e-12
        )
        # ... and loud events just after it change nothing.
        noisy = pl.concat(
            [
                visible,
                ev(
                    (t + timedelta(microseconds=1), "truth_social_api", LOUD),
                    (t + timedelta(minutes=30), "reuters", "Trump soybean oil ban"),
                ),
            ]
        )
        again = compute_policy_features(noisy, pl.DataFrame({"trade_date": [d], "cutoff": [t]}))
        assert_frame_equal(again, alone, abs_tol=1e-12)


def test_volatility_ma_averages_the_same_wall_clock_cutoff_of_earlier_weekdays():
    # #13 of (D, 13:20 CT) = mean of the non-NULL #11 at 13:20 CT on the weekdays of [D-29, D]; the
    # 16:00 CT values of the same days (which see more events) do not enter it.
    events = _week_events()
    d = date(2025, 1, 17)
    grains = [x for x in (d - timedelta(days=k) for k in range(30)) if x.weekday() < 5]
    grain_cuts = policy_cutoffs(grains, UNIVERSE, roots=["ZL"])
    per_day = compute_policy_features(events, grain_cuts)
    want = per_day["trumpxi_sentiment_volatility"].drop_nulls().mean()
    row = at(
        compute_policy_features(events, policy_cutoffs([d], UNIVERSE)),
        d,
        datetime(2025, 1, 17, 19, 20, tzinfo=UTC),
    )
    assert want is not None and row["trumpxi_volatility_30d_ma"] == pytest.approx(want)
    equity = compute_policy_features(events, policy_cutoffs(grains, UNIVERSE, roots=["MES"]))
    assert equity["trumpxi_sentiment_volatility"].drop_nulls().mean() != pytest.approx(want)


# ------------------------------------------------------------------------------------------------------
# knowledge time
# ------------------------------------------------------------------------------------------------------
def test_knowledge_time_counts_an_event_from_when_it_was_collected():
    # Posted 14:00 CT on D, scraped the next morning (10:00 CT): by event time MES's row of D sees it,
    # by knowledge time only rows cut after the scrape do (ZL's row of D+1, W1 still measured on ts).
    scraped = datetime(2025, 1, 16, 16, tzinfo=UTC)
    events = ev(EARLY, (AT_14_CT, "blog", "Trump talks soybeans", scraped))
    cuts = policy_cutoffs([D, D1], UNIVERSE)
    by_event = compute_policy_features(events, cuts)
    by_knowledge = compute_policy_features(events, cuts, time_basis="knowledge")
    assert at(by_event, D, EQUITY_D)["trump_mentions"] == 1
    assert at(by_knowledge, D, EQUITY_D)["trump_mentions"] == 0
    assert at(by_knowledge, D1, GRAIN_D1)["trump_mentions"] == 1
    # A row of unknown collection time (NULL ingested_at) counts from its event time.
    unknown = ev(EARLY, (AT_14_CT, "blog", "Trump talks soybeans"))
    assert (
        at(compute_policy_features(unknown, cuts, time_basis="knowledge"), D, EQUITY_D)["trump_mentions"] == 1
    )
    with pytest.raises(ValueError, match="time_basis"):
        compute_policy_features(events, cuts, time_basis="ingest")


def test_knowledge_time_is_point_in_time_for_events_collected_after_the_cutoff():
    # Events that happened before MES's close of D but were collected after it: under knowledge time
    # they change nothing up to that close, not even through the frequency penalty of an earlier post.
    late = datetime(2025, 1, 17, 12, tzinfo=UTC)
    base = ev(EARLY, (AT_14_CT, "truth_social_api", "Tariff on China, weak demand", AT_14_CT))
    backfilled = pl.concat(
        [
            base,
            ev(
                *[
                    (AT_14_CT - timedelta(minutes=10 * (i + 1)), "truth_social_api", f"{LOUD} {i}", late)
                    for i in range(4)
                ]
            ),
        ]
    )
    cut = pl.DataFrame({"trade_date": [D], "cutoff": [EQUITY_D]})
    k_base = compute_policy_features(base, cut, time_basis="knowledge")
    assert_frame_equal(compute_policy_features(backfilled, cut, time_basis="knowledge"), k_base)
    # By event time the same back-filled posts do count (the setting changes which events count).
    e_back = compute_policy_features(backfilled, cut)
    assert e_back["trump_mentions"].item() == 4 and k_base["trump_mentions"].item() == 0


# ------------------------------------------------------------------------------------------------------
# the setting and the asset
# ------------------------------------------------------------------------------------------------------
def test_policy_time_setting_parses_and_validates():
    from chimera_assets.settings import SettingsError, get_settings

    assert get_settings({}).policy_time == "event"
    assert get_settings({"CHIMERA_POLICY_TIME": " Knowledge "}).policy_time == "knowledge"
    with pytest.raises(SettingsError, match="CHIMERA_POLICY_TIME"):
        get_settings({"CHIMERA_POLICY_TIME": "ingest"})


@pytest.mark.parametrize("basis", ["event", "knowledge"])
def test_asset_writes_one_row_per_close_and_records_the_time_basis(tmp_path, monkeypatch, basis):
    # Through Dagster: policy_events from a crafted CSV (collected the next morning), then the
    # policy_features partition of D: two rows (13:20 and 16:00 CT) and chimera/policy_time metadata.
    import dagster as dg

    from chimera_assets.definitions import build_definitions
    from chimera_assets.schemas import POLICY_FEATURES
    from chimera_assets.settings import get_settings
    from chimera_assets.warehouse.duckdb_backend import DuckDBWarehouse
    from chimera_assets_tests.dagster_helpers import QUIET, asset_key

    monkeypatch.setenv("CHIMERA_POLICY_TIME", basis)
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "events.csv").write_text(
        "ts,source,text,ingest_timestamp_utc\n"
        "2024-12-02T15:00:00Z,blog,start of coverage,2024-12-02T15:00:00Z\n"
        "2025-01-15T14:00:00-06:00,blog,Trump talks soybeans,2025-01-16T10:00:00-06:00\n"
    )
    defs = build_definitions(policy_dir=str(policy))
    instance = dg.DagsterInstance.ephemeral()
    glob = defs.resolve_implicit_global_asset_job_def()
    runs = (
        ({asset_key("reference.policy_events")}, None),
        ({asset_key("features.policy_features")}, "2025-01-15"),
    )
    for sel, pk in runs:
        job = glob.get_subset(asset_selection=sel)
        assert job.execute_in_process(instance=instance, partition_key=pk, run_config=QUIET).success
    ev = instance.get_latest_materialization_event(asset_key("features.policy_features"))
    assert ev.asset_materialization.metadata["chimera/policy_time"].value == basis
    rows = DuckDBWarehouse(get_settings().duckdb_path).read(POLICY_FEATURES).sort("cutoff")
    assert rows.select("trade_date", "cutoff").rows() == [(D, GRAIN_D), (D, EQUITY_D)]
    assert rows["trump_mentions"].to_list() == ([0, 1] if basis == "event" else [0, 0])
