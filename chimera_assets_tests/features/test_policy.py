"""Hand-checked tests of the 16 policy features (POLICY_FEATURES.md) and the policy events loader.

Most scenarios sit on trade date D = Wed 2025-01-15 (CST), cut-off T = 16:00 CT = 22:00 UTC; events are
placed ``h`` hours before T. W1 = (T-24h, T], W7 = (T-7d, T].
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chimera_assets.features.policy import (
    EVENT_SCHEMA,
    POLICY_FEATURE_COLUMNS,
    PolicyInputError,
    compute_policy_features,
    cutoff_instant,
    event_primitives,
    first_covered_trade_date,
    load_policy_events,
)

D = date(2025, 1, 15)
T = datetime(2025, 1, 15, 22, tzinfo=UTC)
WEEK = [date(2025, 1, 13) + timedelta(days=i) for i in range(5)]  # Mon 13 .. Fri 17


def events(*rows: tuple) -> pl.DataFrame:
    """Rows (hours_before_T | datetime, source, text[, category[, url]]) -> a generic events frame."""
    out = []
    for r in rows:
        when, source, text, *rest = r
        ts = when if isinstance(when, datetime) else T - timedelta(hours=when)
        out.append(
            {
                "ts": ts,
                "source": source,
                "text": text,
                "category": rest[0] if rest else None,
                "url": rest[1] if len(rest) > 1 else None,
            }
        )
    return pl.DataFrame(
        out,
        schema={
            "ts": pl.Datetime("us", "UTC"),
            "source": pl.Utf8,
            "text": pl.Utf8,
            "category": pl.Utf8,
            "url": pl.Utf8,
        },
    )


def day(ev: pl.DataFrame, d: date = D, dates: list[date] | None = None, **kw) -> dict:
    out = compute_policy_features(ev, dates or [d], **kw)
    return out.filter(pl.col("trade_date") == d).row(0, named=True)


# ------------------------------------------------------------------------------------------------------
# shape / contract
# ------------------------------------------------------------------------------------------------------
def test_output_columns_and_types_follow_the_spec_table():
    out = compute_policy_features(events((2, "blog", "hello")), WEEK)
    # Keyed by (trade_date, cutoff); plain dates are cut at 16:00 CT (22:00 UTC in January).
    assert out.columns[:2] == ["trade_date", "cutoff"]
    assert out.schema["cutoff"] == pl.Datetime("us", "UTC")
    assert out["cutoff"].to_list() == [datetime(d.year, d.month, d.day, 22, tzinfo=UTC) for d in WEEK]
    assert [(c, out.schema[c]) for c in out.columns[2:]] == POLICY_FEATURE_COLUMNS
    assert len(POLICY_FEATURE_COLUMNS) == 16
    assert out.schema["trump_procurement_alert"] == pl.Boolean
    assert out.schema["trump_mentions"] == pl.Int64
    assert out["trade_date"].to_list() == WEEK


# ------------------------------------------------------------------------------------------------------
# per-event primitives
# ------------------------------------------------------------------------------------------------------
def test_sentiment_credibility_topic_primitives():
    ev = events(
        (1, "reuters_wire", "Strong export demand"),  # bull strong+export+demand = 3 -> 3/4
        (2, "federal_register_api", "Tariff on imports", "executive_order"),  # bear 1 -> -1/2; official
        (3, "cnbc", "Trump: China purchase of soybean oil"),  # "china purchase" + "purchase" = 2 -> 2/3
        (4, "web", "hello policy", None, "https://www.dtnpf.com/x"),  # no words -> 0; dtnpf url -> 0.80
        (5, "microsoft_blog", "tariffs and taxes rise", "harvest_report"),  # plurals are other words -> 0
        (6, "TruthSocial", "Trade deal!", "general"),  # "deal" + "trade deal" = 2 -> 2/3
    )
    p = event_primitives(ev).sort("ts", descending=True)
    assert p["sentiment"].to_list() == pytest.approx([0.75, -0.5, 2 / 3, 0.0, 0.0, 2 / 3])
    assert p["credibility"].to_list() == pytest.approx([0.95, 1.0, 0.90, 0.80, 0.5, 0.5])
    # topic: category first (executive_order -> 1.00, harvest_report -> 0.80), then text
    # ("soybean oil" -> "soybean" 0.90, "policy" -> 1.00, "trade" 0.95); nothing -> 0.75.
    assert p["topic_multiplier"].to_list() == pytest.approx([0.75, 1.0, 0.90, 1.0, 0.80, 0.95])
    assert p["kind"].to_list() == [
        "commentary",
        "official",
        "commentary",
        "commentary",
        "commentary",
        "direct",
    ]


def test_word_boundaries_taxi_is_not_xi_and_phrases_match_across_whitespace():
    ev = events(
        (1, "blog", "Trump takes a taxi"),
        (2, "blog", "TRUMP's talk with Xi"),
        (3, "blog", "Trumpism and trade\n  war"),
    )
    p = event_primitives(ev).sort("ts", descending=True)
    assert p["has_trump"].to_list() == [True, True, False]
    assert p["has_china_xi"].to_list() == [False, True, False]
    # "trade\n  war": the phrase matches across any whitespace: t = 0.8 * 9 = 7.2 -> tanh(0.144) * 100
    assert p["tariff_intensity"].to_list() == pytest.approx([0.0, 0.0, math.tanh(7.2 / 50) * 100])
    r = day(ev)
    assert r["trump_mentions"] == 2
    assert r["trumpxi_china_mentions"] == 1  # the taxi post is not a Xi mention


def test_freq_penalty_three_same_source_events_in_the_previous_three_hours():
    ev = events(
        (4, "blog", "buy"),
        (3, "blog", "buy."),
        (2, "blog", "buy!"),
        (1, "blog", "buy?"),  # [ts-3h, ts) holds the 4h, 3h and 2h posts -> 3 -> penalty 0.8
        (1.5, "other", "buy"),  # another source: never counted for "blog", itself has 0 before it
    )
    p = event_primitives(ev).sort("ts")
    assert p.select("source", "freq_penalty").rows() == [
        ("blog", 1.0),
        ("blog", 1.0),
        ("blog", 1.0),
        ("other", 1.0),
        ("blog", 0.8),
    ]
    # Simultaneous events do not penalise each other (strictly earlier instants only).
    same = events(*[(1, "blog", f"post {i}") for i in range(5)])
    assert event_primitives(same)["freq_penalty"].to_list() == [1.0] * 5


# ------------------------------------------------------------------------------------------------------
# #1, #2, #8: action probability, expected move, procurement alert
# ------------------------------------------------------------------------------------------------------
def test_action_prob_tariff_fires_from_w7_direct_texts_only():
    ev = events(
        # 3 days back: still in W7. threat = 3*3 (tariff) + 2*1 (china) + 1 (unfair) = 12 > 10
        (72, "truth_social_api", "Tariff tariff tariff on China, unfair"),
        (1, "reuters", "tariff tariff tariff tariff retaliate"),  # commentary: ignored by #1
    )
    r = day(ev)
    assert r["trump_action_prob"] == pytest.approx(0.6)  # min(12/20, 0.9)
    assert r["trump_expected_zl_move"] == pytest.approx(-0.015)  # 0.6 * -0.025
    assert r["trump_procurement_alert"] is True  # 0.6 > 0.3 and |-0.025| > 0.02


def test_action_prob_storm_counts_direct_posts_in_w1():
    rows = [(h, "truth_social_monitor", "hello") for h in range(1, 12)]  # 11 posts in W1
    rows.append((30, "truth_social_monitor", "hello"))  # W7 only: not in posts_24h
    r = day(events(*rows))
    assert r["trump_action_prob"] == pytest.approx(11 / 15)  # 0.7333
    assert r["trump_expected_zl_move"] == pytest.approx(11 / 15 * -0.008)  # -0.005867
    assert r["trump_procurement_alert"] is False  # |-0.008| <= 0.02


def test_action_prob_deal_and_tie_order():
    deal = events((5, "TruthSocial", "Big news: we are going to win, stay tuned, very soon"))  # 4 phrases
    r = day(deal)
    assert r["trump_action_prob"] == pytest.approx(0.4)  # min(4/10, 0.7)
    assert r["trump_expected_zl_move"] == pytest.approx(0.006)  # 0.4 * 0.015
    assert r["trump_procurement_alert"] is False

    # threat 12 -> 0.6 and 6 phrases -> 0.6: a tie resolves to tariff.
    tie = events(
        (5, "TruthSocial", "Tariff tariff tariff on China, unfair"),
        (6, "TruthSocial", "Big news, going to, stay tuned, very soon, announcing, it will be great"),
    )
    r = day(tie)
    assert r["trump_action_prob"] == pytest.approx(0.6)
    assert r["trump_expected_zl_move"] == pytest.approx(-0.015)
    assert r["trump_procurement_alert"] is True


def test_action_prob_is_zero_when_nothing_fires_or_windows_are_empty():
    ev = events((1, "TruthSocial", "tariff tariff tariff"))  # threat 9: not > 10
    r = day(ev)
    assert (r["trump_action_prob"], r["trump_expected_zl_move"], r["trump_procurement_alert"]) == (
        0.0,
        0.0,
        False,
    )
    # 9 days later both windows are empty: still 0 / 0 / False inside coverage.
    later = day(ev, date(2025, 1, 24))
    assert (later["trump_action_prob"], later["trump_expected_zl_move"]) == (0.0, 0.0)
    assert later["trump_procurement_alert"] is False


def test_direct_authors_extend_the_direct_kind():
    rows = [(h, "x/RealDonaldTrump", "hello") for h in range(1, 12)]
    assert day(events(*rows))["trump_action_prob"] == 0.0  # commentary by default
    r = day(events(*rows), direct_authors=("realdonaldtrump",))
    assert r["trump_action_prob"] == pytest.approx(11 / 15)


# ------------------------------------------------------------------------------------------------------
# #3, #4, #15, #16: scores, top event, decay
# ------------------------------------------------------------------------------------------------------
SCORE_EVENTS = (
    # cred 0.95 x topic 0.75 x |0.75| x decay exp(-12/24) = 0.534375 * 0.606531 = 0.324115
    (12, "reuters_wire", "Strong export demand"),
    # cred 1.0 x topic 1.0 (executive_order) x |-0.5| x exp(-30/24) = 0.5 * 0.286505 = 0.143252
    (30, "federal_register_api", "Tariff on imports", "executive_order"),
    # sentiment 0 -> score 0
    (2, "blog", "hello"),
)


def test_trump_score_and_signed_score():
    r = day(events(*SCORE_EVENTS))
    assert r["trump_score"] == pytest.approx(0.3241148 + 0.1432524, abs=1e-6)  # 0.467367
    assert r["trump_score_signed"] == pytest.approx(0.3241148 - 0.1432524, abs=1e-6)  # 0.180862


def test_trump_score_caps_at_one_and_signed_clips_at_minus_one():
    rows = [(h, "federal_register_api", f"ban number {h}") for h in range(1, 6)]  # 5 x ~0.49 each
    r = day(events(*rows))
    assert r["trump_score"] == 1.0
    assert r["trump_score_signed"] == -1.0


def test_freq_penalty_enters_the_score():
    ev = events((4, "blog", "buy"), (3, "blog", "buy."), (2, "blog", "buy!"), (1, "blog", "buy?"))
    # base = 0.5 (cred) x 0.75 (topic) x 0.5 (|sentiment| of "buy": 1/2) = 0.1875
    # sum = 0.1875 x (e^-4/24 + e^-3/24 + e^-2/24 + 0.8 e^-1/24) = 0.1875 x 3.416374 = 0.640570
    assert day(ev)["trump_score"] == pytest.approx(0.6405702, abs=1e-6)


def test_top_event_topic_multiplier_and_recency_decay():
    r = day(events(*SCORE_EVENTS))
    assert r["policy_trump_topic_multiplier"] == 0.75  # the reuters post has the highest score
    assert r["policy_trump_recency_decay"] == pytest.approx(math.exp(-0.5))  # 12h old: 0.606531
    # All scores 0 -> tie -> the latest event wins (weather 5h old beats policy 10h old).
    tie = events((10, "blog", "policy hello"), (5, "blog", "weather hello"))
    r = day(tie)
    assert r["policy_trump_topic_multiplier"] == 0.80
    assert r["policy_trump_recency_decay"] == pytest.approx(math.exp(-5 / 24))  # 0.811936


def test_decay_is_exp_minus_hours_over_24():
    r = day(events((36, "blog", "hello")))
    assert r["policy_trump_recency_decay"] == pytest.approx(math.exp(-1.5))  # 0.223130
    r = day(events((0, "blog", "hello")))  # exactly at T: included, decay 1
    assert r["policy_trump_recency_decay"] == 1.0


# ------------------------------------------------------------------------------------------------------
# #5, #6, #7, #9 .. #14: window means, counts, volatility
# ------------------------------------------------------------------------------------------------------
def test_trump_confidence_mean_credibility_over_w1():
    ev = events(
        (1, "reuters", "a"),  # 0.95
        (2, "CNBC", "b"),  # 0.90
        (3, "web", "c", None, "https://www.agweb.com/news"),  # 0.80
        (4, "microsoft", "d"),  # 0.50 ("ft" is not a token of "microsoft")
        (5, "FederalRegister", "e"),  # official 1.0
        (30, "blog", "f"),  # outside W1
    )
    assert day(ev)["trump_confidence"] == pytest.approx(4.15 / 5)  # 0.83


def test_trump_sentiment_7d_mean_over_w7():
    ev = events(
        *SCORE_EVENTS,  # sentiments 0.75, -0.5, 0
        (24 * 8, "blog", "buy buy buy"),  # 8 days old: outside W7
        (T + timedelta(minutes=1), "blog", "ban ban"),  # after T: never seen by D
    )
    assert day(ev)["trump_sentiment_7d"] == pytest.approx(0.25 / 3)  # 0.083333


def test_trump_tariff_intensity_max_over_w1():
    ev = events(
        # tariff 1, trade war 1 -> 8 + 9 = 17; amplifiers disaster 2.0 and huge 1.5 -> largest 2.0
        # t = 0.8 * 17 * 2.0 = 27.2 -> tanh(0.544) * 100 = 49.600984
        (2, "blog", "Tariff and trade war, a disaster and huge"),
        (3, "blog", "tariff"),  # t = 6.4 -> 12.730550
        (30, "blog", "tariff tariff tariff trade war rigged"),  # outside W1
    )
    assert day(ev)["trump_tariff_intensity"] == pytest.approx(49.600984, abs=1e-6)
    # W1 empty (only the 30h-old post in W7): 0, not NULL
    assert day(events((30, "blog", "tariff")))["trump_tariff_intensity"] == 0.0


def test_trump_mentions_and_trumpxi_china_mentions_count_w1_events():
    ev = events(
        (1, "blog", "Trump meets Xi"),  # trump + xi
        (2, "blog", "Trump on China trade"),  # trump + china
        (3, "blog", "Trump rides a taxi"),  # trump only
        (4, "blog", "Xi and China"),  # no trump
        (5, "blog", "Trumpism rising"),  # not the word trump
        (30, "blog", "Trump and China"),  # outside W1
    )
    r = day(ev)
    assert r["trump_mentions"] == 3
    assert r["trumpxi_china_mentions"] == 2


def test_trumpxi_sentiment_volatility_and_policy_impact_over_w1():
    r = day(events((1, "a", "Strong export demand"), (2, "b", "Tariff on imports"), (3, "c", "hello")))
    # sentiments 0.75, -0.5, 0: mean 0.083333, population std sqrt(0.791667 / 3) = 0.513701
    assert r["trumpxi_sentiment_volatility"] == pytest.approx(0.5137012, abs=1e-6)
    assert r["trumpxi_policy_impact"] == pytest.approx(0.25 / 3)
    one = day(events((1, "a", "buy"), (30, "b", "ban")))  # one W1 event
    assert one["trumpxi_sentiment_volatility"] is None  # NULL under 2 events
    assert one["trumpxi_policy_impact"] == pytest.approx(0.5)


def test_trumpxi_volatility_30d_ma_window_includes_d_and_29_days_back():
    t_dec16 = cutoff_instant(date(2024, 12, 16))
    t_jan8 = cutoff_instant(date(2025, 1, 8))
    ev = events(
        (t_dec16 - timedelta(hours=1), "a", "deal"),  # Mon 2024-12-16: sentiments 0.5, -0.5 -> #11 = 0.5
        (t_dec16 - timedelta(hours=2), "b", "ban"),
        (t_jan8 - timedelta(hours=1), "a", "buy"),  # Wed 2025-01-08: 0.5, 0 -> #11 = 0.25
        (t_jan8 - timedelta(hours=2), "b", "hello"),
        (1, "a", "Strong export demand"),  # Wed 2025-01-15: #11 = 0.513701
        (2, "b", "Tariff on imports"),
        (3, "c", "hello"),
    )
    dates = [date(2024, 12, 16), date(2025, 1, 8), date(2025, 1, 14), D, date(2025, 1, 16)]
    out = compute_policy_features(ev, dates).select("trade_date", "trumpxi_volatility_30d_ma")
    ma = dict(out.rows())
    assert ma[date(2024, 12, 16)] == pytest.approx(0.5)
    assert ma[date(2025, 1, 8)] == pytest.approx((0.5 + 0.25) / 2)  # 0.375
    # 2025-01-14 - 29 days = 2024-12-16: still inside; 2025-01-14's own #11 is NULL (empty W1)
    assert ma[date(2025, 1, 14)] == pytest.approx(0.375)
    # 2025-01-15 - 29 days = 2024-12-17: the Dec 16 value drops out
    assert ma[D] == pytest.approx((0.25 + 0.5137012) / 2, abs=1e-6)  # 0.381851
    assert ma[date(2025, 1, 16)] == pytest.approx((0.25 + 0.5137012) / 2, abs=1e-6)
    # Independent of which other dates are requested (a one-partition run equals a backfill).
    alone = compute_policy_features(ev, [D])
    assert alone["trumpxi_volatility_30d_ma"][0] == pytest.approx(ma[D])


def test_trump_soybean_sentiment_7d():
    ev = events(
        (2, "a", "Trump: China purchase of soybean oil"),  # 2/3
        (50, "b", "Trump tariff hits soy"),  # -1/2 (W7)
        (3, "c", "Trump rides a taxi"),  # no soy word
        (4, "d", "soybean demand strong"),  # no trump
        (5, "e", "Trump likes soybeans"),  # "soybeans" is not the word "soybean"
    )
    assert day(ev)["trump_soybean_sentiment_7d"] == pytest.approx((2 / 3 - 0.5) / 2)  # 0.083333
    assert day(events((2, "c", "Trump rides a taxi")))["trump_soybean_sentiment_7d"] is None


# ------------------------------------------------------------------------------------------------------
# coverage, empty windows, point in time, DST
# ------------------------------------------------------------------------------------------------------
def test_coverage_nulls_before_first_event_and_empty_window_rules():
    ev = events((2, "blog", "hello"))  # first event: Wed 2025-01-15 20:00 UTC -> coverage from the 15th
    out = compute_policy_features(ev, WEEK + [date(2025, 1, 27)])
    feats = [c for c, _ in POLICY_FEATURE_COLUMNS]
    before = out.filter(pl.col("trade_date") < D)
    assert before.height == 2
    assert before.select(pl.all_horizontal(pl.col(feats).is_null())).to_series().all()
    # 2025-01-27: inside coverage, both windows empty.
    r = out.filter(pl.col("trade_date") == date(2025, 1, 27)).row(0, named=True)
    assert {k: r[k] for k in ("trump_mentions", "trumpxi_china_mentions")} == {
        "trump_mentions": 0,
        "trumpxi_china_mentions": 0,
    }
    assert (r["trump_action_prob"], r["trump_expected_zl_move"], r["trump_tariff_intensity"]) == (
        0.0,
        0.0,
        0.0,
    )
    assert r["trump_procurement_alert"] is False
    nulls = [
        "trump_score", "trump_score_signed", "trump_confidence", "trump_sentiment_7d",
        "trumpxi_sentiment_volatility", "trumpxi_policy_impact", "trumpxi_volatility_30d_ma",
        "trump_soybean_sentiment_7d", "policy_trump_topic_multiplier", "policy_trump_recency_decay",
    ]  # fmt: skip
    assert all(r[k] is None for k in nulls)
    # Empty events: nothing is covered.
    empty = compute_policy_features(pl.DataFrame(schema=EVENT_SCHEMA), WEEK)
    assert empty.select(pl.all_horizontal(pl.col(feats).is_null())).to_series().all()


def test_coverage_starts_on_the_first_date_whose_window_holds_the_event():
    # Fri 2025-01-17 16:30 CST = 22:30 UTC, after Friday's cut-off -> coverage starts Mon 2025-01-20.
    first = datetime(2025, 1, 17, 22, 30, tzinfo=UTC)
    assert first_covered_trade_date(first) == date(2025, 1, 20)
    assert first_covered_trade_date(datetime(2025, 1, 17, 22, 0, tzinfo=UTC)) == date(2025, 1, 17)  # == T
    out = compute_policy_features(events((first, "blog", "Trump")), [date(2025, 1, 17), date(2025, 1, 20)])
    fri, mon = out.rows(named=True)
    assert fri["trump_mentions"] is None
    # Monday's W1 is (Sun 22:00, Mon 22:00] UTC: the Friday-evening post is only in W7.
    assert mon["trump_mentions"] == 0
    assert mon["policy_trump_recency_decay"] == pytest.approx(math.exp(-(71.5) / 24))
    # An explicit coverage start overrides the first event.
    forced = compute_policy_features(
        events((first, "blog", "Trump")), [date(2025, 1, 17)], coverage_start=date(2025, 1, 1)
    )
    assert forced["trump_mentions"][0] == 0


def test_events_after_the_cutoff_change_nothing():
    base = events(*SCORE_EVENTS, (1, "TruthSocial", "Tariff tariff tariff on China, unfair"))
    later = pl.concat(
        [
            base,
            events(
                (T + timedelta(microseconds=1), "TruthSocial", "tariff tariff tariff tariff Trump Xi"),
                (T + timedelta(hours=5), "reuters", "Trump soybean oil ban"),
            ),
        ]
    )
    a = compute_policy_features(base, WEEK).filter(pl.col("trade_date") <= D)
    b = compute_policy_features(later, WEEK).filter(pl.col("trade_date") <= D)
    assert_frame_equal(a, b)
    assert a.filter(pl.col("trade_date") == D)["trump_action_prob"][0] == pytest.approx(0.6)


def test_cutoff_is_16_00_chicago_across_dst():
    assert cutoff_instant(date(2025, 3, 7)) == datetime(2025, 3, 7, 22, tzinfo=UTC)  # CST
    assert cutoff_instant(date(2025, 3, 10)) == datetime(2025, 3, 10, 21, tzinfo=UTC)  # CDT (DST from 3/9)
    assert cutoff_instant(date(2025, 11, 3)) == datetime(2025, 11, 3, 22, tzinfo=UTC)  # CST again (11/2)
    ev = events(
        (datetime(2025, 3, 3, 12, tzinfo=UTC), "blog", "start of coverage"),
        (datetime(2025, 3, 7, 21, 30, tzinfo=UTC), "blog", "Trump one"),  # 15:30 CST: Friday
        (datetime(2025, 3, 10, 20, 59, tzinfo=UTC), "blog", "Trump two"),  # 15:59 CDT: Monday
        (datetime(2025, 3, 10, 21, 30, tzinfo=UTC), "blog", "Trump three"),  # 16:30 CDT: Tuesday
    )
    out = compute_policy_features(ev, [date(2025, 3, 7), date(2025, 3, 10), date(2025, 3, 11)])
    assert out["trump_mentions"].to_list() == [1, 1, 1]
    # Monday's W1 holds only "Trump two" (decay of 1 minute); under a CST cut-off it would hold two posts.
    mon = out.row(1, named=True)
    assert mon["policy_trump_recency_decay"] == pytest.approx(math.exp(-(1 / 60) / 24))


# ------------------------------------------------------------------------------------------------------
# loader
# ------------------------------------------------------------------------------------------------------
def test_load_generic_csv_jsonl_and_social_parquet(tmp_path: Path):
    csv = tmp_path / "news.csv"
    csv.write_text(
        "ts,source,category,text,url\n"
        "2025-01-15T12:00:05Z,reuters,trade_policy,Trump  TARIFF  news,https://reuters.com/a\n"
        '2025-01-15T06:00:50-06:00,reuters_copy,,"trump tariff news",\n'  # same text, same UTC minute
        "2025-01-15T12:01:10Z,reuters,,Trump tariff news,\n"  # next minute: a separate event
        "2025-01-15 13:00:00,federal_register_api,executive_order,EO 1,\n",  # naive: UTC
        encoding="utf-8",
    )
    jsonl = tmp_path / "posts.jsonl"
    jsonl.write_text(
        json.dumps({"timestamp": "2025-01-15T14:00:00+00:00", "source": "truth_social_api", "text": "Hi"})
        + "\n",
        encoding="utf-8",
    )
    social = tmp_path / "social.parquet"
    pl.DataFrame(
        {
            "platform": ["twitter", "facebook"],
            "title": ["Soy demand", "USDA news"],
            "timestamp": [datetime(2025, 1, 15, 15, tzinfo=UTC), datetime(2025, 1, 15, 16, tzinfo=UTC)],
            "source_name": ["ScrapeCreators_Twitter", None],
        }
    ).write_parquet(social)

    ev = load_policy_events([csv, jsonl, social])
    assert ev.schema == pl.Schema(EVENT_SCHEMA)
    assert ev.height == 6  # 4 CSV rows - 1 duplicate + 1 + 2
    assert ev["ts"].to_list() == [
        datetime(2025, 1, 15, 12, 0, 5, tzinfo=UTC),  # earliest copy kept
        datetime(2025, 1, 15, 12, 1, 10, tzinfo=UTC),
        datetime(2025, 1, 15, 13, tzinfo=UTC),
        datetime(2025, 1, 15, 14, tzinfo=UTC),
        datetime(2025, 1, 15, 15, tzinfo=UTC),
        datetime(2025, 1, 15, 16, tzinfo=UTC),
    ]
    assert ev["source"].to_list() == [
        "reuters", "reuters", "federal_register_api", "truth_social_api",
        "twitter/ScrapeCreators_Twitter", "facebook",
    ]  # fmt: skip
    assert ev["kind"].to_list() == [
        "commentary",
        "commentary",
        "official",
        "direct",
        "commentary",
        "commentary",
    ]
    assert ev["category"].to_list() == ["trade_policy", None, "executive_order", None, None, None]
    assert ev["url"].to_list()[0] == "https://reuters.com/a"
    assert ev["ingested_from"].to_list() == [
        "news.csv", "news.csv", "news.csv", "posts.jsonl", "social.parquet", "social.parquet",
    ]  # fmt: skip
    assert ev["event_id"].n_unique() == 6
    # Stable ids: reloading gives the same hashes.
    assert load_policy_events([csv, jsonl, social])["event_id"].to_list() == ev["event_id"].to_list()
    assert load_policy_events([]).schema == pl.Schema(EVENT_SCHEMA)


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("bad.csv", b"ts,source,text\n2025-01-01T00:00:00Z,a,caf\xe9\n", "invalid UTF-8"),
        ("notext.csv", b"ts,source,body\n2025-01-01T00:00:00Z,a,hello\n", "text"),
        ("nots.csv", b"when,source,text\n2025-01-01,a,hello\n", "ts|timestamp"),
        ("nosource.csv", b"ts,text\n2025-01-01T00:00:00Z,hello\n", "source"),
        ("badts.csv", b"ts,source,text\n2025-01-01T00:00:00Z,a,x\nyesterday,a,y\n", "unparseable"),
        ("emptysrc.csv", b"ts,source,text\n2025-01-01T00:00:00Z,,x\n", "empty source"),
        ("broken.parquet", b"PAR1 this is not parquet", "unreadable"),
        ("events.xlsx", b"whatever", "unsupported"),
    ],
)
def test_bad_input_raises_one_clear_error_naming_the_file(
    tmp_path: Path, name: str, content: bytes, needle: str
):
    good = tmp_path / "good.csv"
    good.write_text("ts,source,text\n2025-01-01T00:00:00Z,a,hello\n", encoding="utf-8")
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(PolicyInputError) as info:
        load_policy_events([good, bad])
    assert name in str(info.value)
    assert needle in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_file_is_a_policy_input_error(tmp_path: Path):
    with pytest.raises(PolicyInputError, match="nope.parquet"):
        load_policy_events([tmp_path / "nope.parquet"])


def test_huge_text_is_refused_naming_the_file(tmp_path: Path):
    huge = "tariff " * 800_000 + "Trump"  # 5.6 MB in one CSV field: a broken export, not a post
    path = tmp_path / "huge.csv"
    pl.DataFrame({"ts": ["2025-01-15T20:00:00Z"], "source": ["blog"], "text": [huge]}).write_csv(path)
    with pytest.raises(PolicyInputError, match=r"huge\.csv.*longer than 1,000,000 characters"):
        load_policy_events([path])


def test_long_but_plausible_text_is_loaded_whole_and_scored(tmp_path: Path):
    text = "tariff " * 100_000 + "Trump"  # 700 KB: long, still under the limit
    path = tmp_path / "long.csv"
    pl.DataFrame({"ts": ["2025-01-15T20:00:00Z"], "source": ["blog"], "text": [text]}).write_csv(path)
    ev = load_policy_events([path])
    assert ev["text"].str.len_chars()[0] == len(text)
    r = day(ev)
    assert r["trump_mentions"] == 1
    assert r["trump_tariff_intensity"] == pytest.approx(100.0)  # tanh saturates
    assert r["trumpxi_policy_impact"] == pytest.approx(-100_000 / 100_001)


