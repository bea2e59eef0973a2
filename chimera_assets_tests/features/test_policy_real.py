"""Policy features on the real event exports in ../shared/data/policy-events (skipped when absent)."""

from __future__ import annotations

import re
from bisect import bisect_right
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chimera_assets.features.policy import (
    EVENT_SCHEMA,
    POLICY_FEATURE_COLUMNS,
    compute_policy_features,
    first_covered_trade_date,
    load_policy_events,
    normalised_text_expr,
)
from chimera_assets.features.policy_cutoffs import policy_cutoffs

POLICY_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "policy-events"
INTEL = "trump_policy_intelligence_2025.parquet"
SOCIAL = "social_posts_2008-2025.parquet"
FEATURES = [c for c, _ in POLICY_FEATURE_COLUMNS]
COUNTS = ["trump_mentions", "trumpxi_china_mentions"]
# Five cut-off days spread over the dense 2025 period (Monday after a weekend, DST switch week, ...).
CUTOFF_DAYS = [date(2025, 4, 10), date(2025, 6, 2), date(2025, 10, 6), date(2025, 11, 3), date(2025, 11, 7)]


@pytest.fixture(scope="module")
def policy_dir() -> Path:
    for name in (INTEL, SOCIAL):
        if not (POLICY_DIR / name).is_file():
            pytest.skip(f"real policy events {POLICY_DIR / name} are absent (../shared/data beside the repo)")
    return POLICY_DIR


@pytest.fixture(scope="module")
def events(policy_dir: Path) -> pl.DataFrame:
    return load_policy_events([policy_dir / INTEL, policy_dir / SOCIAL])


def weekdays(start: date, end: date) -> list[date]:
    return [
        start + timedelta(days=i)
        for i in range((end - start).days + 1)
        if (start + timedelta(days=i)).weekday() < 5
    ]


def w1_mention_counts(
    events: pl.DataFrame, dates: list[date], cutoffs: dict[date, datetime] | None = None
) -> dict[date, tuple[int, int]]:
    """Reference for #9 and #10, written apart from the feature code: per date, the events in
    W1 = (T - 24 h, T] (T = ``cutoffs[date]``, default 16:00 America/Chicago on the date, via zoneinfo)
    whose text holds the whole word 'trump', and of those the ones also holding 'china' or 'xi' (plain
    ``re``, per event)."""
    trump, china_xi = re.compile(r"\btrump\b", re.I), re.compile(r"\b(?:china|xi)\b", re.I)
    ev = events.sort("ts")
    stamps, texts = ev["ts"].to_list(), ev["text"].to_list()
    out = {}
    for d in dates:
        cut = (cutoffs or {}).get(d) or datetime.combine(d, time(16), ZoneInfo("America/Chicago")).astimezone(UTC)
        in_w1 = [t for t in texts[bisect_right(stamps, cut - timedelta(hours=24)):bisect_right(stamps, cut)]
                 if trump.search(t)]
        out[d] = (len(in_w1), sum(bool(china_xi.search(t)) for t in in_w1))
    return out


def test_load_both_real_files(policy_dir: Path, events: pl.DataFrame):
    raw_intel = pl.read_parquet(policy_dir / INTEL)
    raw_social = pl.read_parquet(policy_dir / SOCIAL)
    assert events.schema == pl.Schema(EVENT_SCHEMA)
    assert set(events["ingested_from"].unique()) == {INTEL, SOCIAL}
    # Dedupe = distinct (normalised text, UTC minute) over both files, computed independently here.
    keys = pl.concat(
        [
            raw_intel.select(pl.col("text"), pl.col("timestamp").dt.truncate("1m").alias("m")),
            raw_social.select(
                pl.col("title").alias("text"), pl.col("timestamp").dt.truncate("1m").alias("m")
            ),
        ]
    ).select(normalised_text_expr().alias("n"), "m")
    assert events.height == keys.unique().height < raw_intel.height + raw_social.height
    assert events["event_id"].n_unique() == events.height
    # Kinds: Truth Social posts are direct, Federal Register items official, everything else commentary.
    by_kind = dict(events.group_by("kind").agg(pl.col("source").unique().sort()).rows())
    assert by_kind["direct"] == ["TruthSocial", "truth_social_api", "truth_social_monitor"]
    assert by_kind["official"] == ["FederalRegister", "federal_register_api"]
    assert "twitter/ScrapeCreators_Twitter" in by_kind["commentary"]
    assert events["ts"].min() == raw_social["timestamp"].min()
    assert events["ts"].max() == raw_intel["timestamp"].max()


def test_coverage_and_ranges_on_real_data(events: pl.DataFrame):
    dates = weekdays(date(2008, 12, 1), date(2025, 11, 21))
    out = compute_policy_features(events, dates)
    assert out.height == len(dates)
    start = first_covered_trade_date(events["ts"].min())
    assert start == date(2008, 12, 11)  # first social post: 2008-12-11 05:37 UTC (Dec 10 evening in Chicago)
    before = out.filter(pl.col("trade_date") < start)
    assert before.height == 8
    assert before.select(pl.all_horizontal(pl.col(FEATURES).is_null())).to_series().all()
    inside = out.filter(pl.col("trade_date") >= start)
    assert inside.select(pl.col(COUNTS).null_count()).row(0) == (0, 0)
    assert inside.select(pl.min_horizontal(pl.col(COUNTS).min())).item() >= 0
    for col in (
        "trump_action_prob",
        "trump_expected_zl_move",
        "trump_tariff_intensity",
        "trump_procurement_alert",
    ):
        assert inside[col].null_count() == 0, col
    assert inside["trump_score"].drop_nulls().is_between(0.0, 1.0).all()
    assert inside["trump_score_signed"].drop_nulls().is_between(-1.0, 1.0).all()
    assert inside["trump_tariff_intensity"].is_between(0.0, 100.0).all()
    assert inside["trump_confidence"].drop_nulls().is_between(0.5, 1.0).all()
    # Real 2025 activity shows up: the Nov 2025 Truth Social burst fires the storm/tariff rules.
    assert inside["trump_action_prob"].max() > 0.3
    # The two counts on every covered date equal the reference count (and are not all zero).
    want = w1_mention_counts(events, inside["trade_date"].to_list())
    got = dict(zip(inside["trade_date"].to_list(), inside.select(COUNTS).rows(), strict=True))
    assert got == want
    assert sum(n for n, _ in want.values()) > 10 and sum(x for _, x in want.values()) > 0


def test_intelligence_file_alone_covers_from_2025_04_03(policy_dir: Path):
    intel = load_policy_events([policy_dir / INTEL])
    # First item: Federal Register 2025-04-03 00:00 UTC = Apr 2 19:00 CDT, after Apr 2's cut-off.
    out = compute_policy_features(intel, weekdays(date(2025, 3, 31), date(2025, 11, 21)))
    before = out.filter(pl.col("trade_date") < date(2025, 4, 3))
    assert before.height == 3
    assert before.select(pl.all_horizontal(pl.col(FEATURES).is_null())).to_series().all()
    # From the first covered date on, the counts equal the reference's (a few mention Trump).
    inside = out.filter(pl.col("trade_date") >= date(2025, 4, 3))
    got = dict(zip(inside["trade_date"].to_list(), inside.select(COUNTS).rows(), strict=True))
    want = w1_mention_counts(intel, inside["trade_date"].to_list())
    assert got == want and sum(n for n, _ in want.values()) > 0


def _rows(frame: pl.DataFrame, upto: datetime) -> pl.DataFrame:
    return frame.filter(pl.col("cutoff") <= upto)


@pytest.mark.parametrize("cut_day", CUTOFF_DAYS)
@pytest.mark.parametrize("close", ["grain", "equity"])
def test_point_in_time_on_real_data(events: pl.DataFrame, cut_day: date, close: str):
    # The asset's rows: per date one row per distinct close of the default universe (13:20 and 16:00 CT
    # on these days). Cut the event stream at one of cut_day's closes: every row up to it is unchanged.
    dates = weekdays(date(2025, 3, 3), date(2025, 11, 21))
    cuts = policy_cutoffs(dates)
    day_cuts = cuts.filter(pl.col("trade_date") == cut_day)["cutoff"].to_list()
    assert len(day_cuts) == 2  # 13:20 CT grains, 16:00 CT equity index / crude
    t = day_cuts[0] if close == "grain" else day_cuts[1]
    full = compute_policy_features(events, cuts)
    visible = events.filter(pl.col("ts") <= t)
    truncated = _rows(compute_policy_features(visible, cuts), t)
    assert truncated.height == cuts.filter(pl.col("cutoff") <= t).height
    assert_frame_equal(truncated, _rows(full, t), abs_tol=1e-12)

    # Adding loud events after the cut-off (1 microsecond, 1 hour and 3 days later) changes nothing up to it.
    extra = pl.DataFrame(
        {
            "ts": [t + timedelta(microseconds=1), t + timedelta(hours=1), t + timedelta(days=3)],
            "source": ["truth_social_api", "reuters", "federal_register_api"],
            "text": [
                "Tariff tariff tariff on China! Trump and Xi, trade war disaster. Big news, stay tuned",
                "Trump soybean oil ban hits biofuel demand",
                "Executive order: tariff on soybean oil",
            ],
            "category": [None, None, "executive_order"],
            "url": [None, None, None],
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )
    noisy = pl.concat([visible.select(extra.columns), extra])
    assert_frame_equal(_rows(compute_policy_features(noisy, cuts), t), truncated, abs_tol=1e-12)
    # ... while the next row does see them: after the grain close, the same day's 16:00 CT row (the
    # 1 h later post is in its W1); after the equity close, the next trade date's grain row (through
    # W7 at least: after a Friday, W1 skips the weekend).
    nxt = cuts.filter(pl.col("cutoff") > t).head(1)
    assert compute_policy_features(noisy, nxt).row(0) != compute_policy_features(visible, nxt).row(0)
    if close == "grain":
        assert nxt["trade_date"].item() == cut_day


def test_real_events_carry_their_collection_time(events: pl.DataFrame):
    # Both exports have ingest_timestamp_utc (when the original pipeline scraped the row); 100
    # policy-intelligence rows have none and take the file's mtime (counted late under knowledge time).
    assert events["ingested_at"].null_count() == 0
    lag = (events["ingested_at"] - events["ts"]).dt.total_seconds()
    assert (lag >= 0).all()  # (a scrape never precedes the post)
    assert (lag > 86_400).sum() > events.height // 2  # the social posts were back-filled years later


def test_knowledge_time_on_real_data(events: pl.DataFrame):
    # Knowledge time only removes events from windows (known = max(ts, ingested_at) >= ts): counts can
    # only drop, and on the back-filled 2017-2024 social posts they do; it stays point in time.
    dates = weekdays(date(2024, 10, 1), date(2025, 11, 21))
    cuts = policy_cutoffs(dates)
    by_event = compute_policy_features(events, cuts)
    by_knowledge = compute_policy_features(events, cuts, time_basis="knowledge")
    both = by_event.join(by_knowledge, on=["trade_date", "cutoff"], suffix="_k")
    assert both.height == cuts.height
    k, e = both["trump_mentions_k"].fill_null(0), both["trump_mentions"].fill_null(0)
    assert (k <= e).all() and (k < e).any()
    t = cuts.filter(pl.col("trade_date") == date(2025, 10, 6))["cutoff"][0]
    known = events.filter(pl.max_horizontal("ts", "ingested_at") <= t)
    assert_frame_equal(
        _rows(compute_policy_features(known, cuts, time_basis="knowledge"), t), _rows(by_knowledge, t),
        abs_tol=1e-12,
    )
