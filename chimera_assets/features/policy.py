"""Policy events (``reference.policy_events``) and the 16 daily policy features.

Spec: SPEC 6.4 "policy" and POLICY_FEATURES.md.

Pure polars, no Dagster. Two entry points:

* :func:`load_policy_events` reads parquet / CSV / JSON-lines files of dated texts into one
  deduplicated event frame (:data:`EVENT_SCHEMA`).
* :func:`compute_policy_features` turns that frame into one row per trade date with the 16 features of
  :data:`POLICY_FEATURE_COLUMNS`, strictly point-in-time: the row for trade date D only sees events with
  ``ts <= T(D)``, T(D) = D 16:00 America/Chicago (DST aware).

Every choice the spec leaves open is listed in ``docs/policy_features.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from chimera_assets.features.policy_events import (
    MAX_TEXT_CHARS,
    PolicyInputError,
    dedupe_events,
    load_policy_events,
    normalised_text_expr,
)
from chimera_assets.features.policy_scoring import (
    event_primitives,
)
from chimera_assets.features.policy_vocab import (
    ACTION_IMPACT,
    ACTION_PHRASES,
    BEARISH_WORDS,
    BULLISH_WORDS,
    CHICAGO,
    CREDIBILITY_DEFAULT,
    CREDIBILITY_OFFICIAL,
    CREDIBILITY_TIERS,
    CUTOFF_LOCAL_TIME,
    DECAY_HOURS,
    EVENT_SCHEMA,
    FREQ_MIN_EVENTS,
    FREQ_PENALTY,
    FREQ_WINDOW,
    MA_CALENDAR_DAYS,
    POLICY_FEATURE_COLUMNS,
    POLICY_FEATURE_NAMES,
    SOY_WORDS,
    TARIFF_AMPLIFIERS,
    THREAT_WEIGHTS,
    TOPIC_DEFAULT,
    TOPIC_MULTIPLIERS,
    W1_LENGTH,
    W7_LENGTH,
    word_regex,
)
from chimera_assets.trade_calendar import is_weekday_expr, on_or_after_weekday

_US_PER_HOUR = 3_600_000_000


# ======================================================================================================
# daily features
# ======================================================================================================
def cutoff_instant(d: date) -> datetime:
    """T(D): 16:00 America/Chicago on ``d`` as an aware UTC datetime (21:00 UTC in CDT, 22:00 in CST)."""
    return datetime.combine(d, CUTOFF_LOCAL_TIME, tzinfo=CHICAGO).astimezone(ZoneInfo("UTC"))


def _cutoff_expr(col: str = "trade_date") -> pl.Expr:
    return (
        pl.col(col)
        .cast(pl.Datetime("us"))
        .dt.offset_by("16h")
        .dt.replace_time_zone("America/Chicago")
        .dt.convert_time_zone("UTC")
    )


def first_covered_trade_date(ts: datetime) -> date:
    """First Mon-Fri date D with ``ts <= T(D)``: the first trade date whose windows can contain ``ts``.

    This (not the +7h session rule) defines where coverage starts: an event at 16:30 CT on a Monday
    counts from Tuesday, the first day it can influence. Naive ``ts`` is taken as UTC.
    """
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=ZoneInfo("UTC"))
    d = ts.astimezone(CHICAGO).date()
    if ts > cutoff_instant(d):
        d += timedelta(days=1)
    return on_or_after_weekday(d)


def _as_date_series(trade_dates: Sequence[date] | pl.Series) -> pl.Series:
    s = trade_dates if isinstance(trade_dates, pl.Series) else pl.Series("trade_date", list(trade_dates))
    if s.len() and s.dtype != pl.Date:
        s = s.cast(pl.Date)
    if s.null_count():
        raise ValueError("trade_dates contains NULL")
    return s.cast(pl.Date).unique().sort().alias("trade_date")


def _empty_features() -> pl.DataFrame:
    return pl.DataFrame(schema={"trade_date": pl.Date(), **dict(POLICY_FEATURE_COLUMNS)})


def compute_policy_features(
    events: pl.DataFrame,
    trade_dates: Sequence[date] | pl.Series,
    direct_authors: tuple[str, ...] = (),
    *,
    coverage_start: date | None = None,
) -> pl.DataFrame:
    """The 16 policy features for each distinct date in ``trade_dates`` (sorted ascending).

    Columns: ``trade_date`` Date, then :data:`POLICY_FEATURE_COLUMNS` in order. Only events with
    ``ts <= T(D)`` (16:00 America/Chicago on D) influence row D. W1 = (T-24h, T], W7 = (T-7d, T] on the
    UTC axis. Coverage starts at :func:`first_covered_trade_date` of the earliest event (or at
    ``coverage_start`` when given); rows before it are all NULL. Inside coverage: counts are 0 on empty
    windows; #1/#2 are 0 and #8 False when nothing fires; #7 is 0 on an empty W1; other values are NULL
    on an empty window. #13 averages #11 over Mon-Fri dates in [D-29, D] (D included) and is independent
    of which other dates are requested. Units: probabilities/scores in [0, 1], #2 a fractional price
    move, #7 on a 0-100 scale, #16 a factor in (0, 1].
    """
    dates = _as_date_series(trade_dates)
    if dates.len() == 0:
        return _empty_features()
    ev = event_primitives(events, direct_authors) if events.height else None

    if coverage_start is None and ev is not None:
        coverage_start = first_covered_trade_date(ev.get_column("ts").min())  # type: ignore[arg-type]

    # Evaluation calendar: the requested dates plus every weekday #13 may need.
    lo = dates.min() - timedelta(days=MA_CALENDAR_DAYS - 1)  # type: ignore[operator]
    weekdays = pl.date_range(lo, dates.max(), "1d", eager=True).alias("trade_date")
    weekdays = weekdays.to_frame().filter(is_weekday_expr("trade_date")).to_series()
    cal = (
        pl.concat([weekdays, dates]).unique().sort().to_frame()
        .with_columns(_cutoff_expr().alias("cutoff"))
        .with_columns(pl.col("cutoff").dt.epoch("us").alias("cutoff_us"))
        .with_row_index("ci")
    )  # fmt: skip

    daily = cal.select("ci", "trade_date", "cutoff")
    if ev is not None:
        daily = daily.join(_window_aggregates(ev, cal), on="ci", how="left")
    else:
        daily = daily.with_columns([pl.lit(None, dtype=t).alias(c) for c, t in _AGG_SCHEMA.items()])
    daily = _finish_daily(daily)

    in_cov = pl.lit(False) if coverage_start is None else pl.col("trade_date") >= pl.lit(coverage_start)
    per_day = [n for n in POLICY_FEATURE_NAMES if n != "trumpxi_volatility_30d_ma"]
    daily = daily.select(
        "trade_date", *[pl.when(in_cov).then(pl.col(n)).otherwise(None).alias(n) for n in per_day]
    )

    ma = _volatility_ma(daily, dates)
    out = dates.to_frame().join(daily, on="trade_date", how="left").join(ma, on="trade_date", how="left")
    return out.select(pl.col("trade_date"), *[pl.col(n).cast(t) for n, t in POLICY_FEATURE_COLUMNS]).sort(
        "trade_date"
    )


_AGG_SCHEMA: dict[str, pl.DataType] = {
    "n_w1": pl.Int64(), "threat": pl.Int64(), "phrases": pl.Int64(), "posts_24h": pl.Int64(),
    "score_sum": pl.Float64(), "signed_sum": pl.Float64(), "trump_confidence": pl.Float64(),
    "trump_sentiment_7d": pl.Float64(), "trump_tariff_intensity": pl.Float64(), "trump_mentions": pl.Int64(),
    "trumpxi_china_mentions": pl.Int64(), "sent_std_w1": pl.Float64(), "trumpxi_policy_impact": pl.Float64(),
    "trump_soybean_sentiment_7d": pl.Float64(), "policy_trump_topic_multiplier": pl.Float64(),
    "policy_trump_recency_decay": pl.Float64(),
}  # fmt: skip


def _window_aggregates(ev: pl.DataFrame, cal: pl.DataFrame) -> pl.DataFrame:
    """Aggregate every (date, event-in-W7) pair per date index ``ci``."""
    cut = cal.get_column("cutoff_us")
    ts_us = ev.get_column("ts").dt.epoch("us")
    w7_us = int(W7_LENGTH.total_seconds()) * 1_000_000
    w1_us = int(W1_LENGTH.total_seconds()) * 1_000_000
    # Date indices whose W7 holds the event: T >= ts (first) .. T < ts + 7d (last, exclusive).
    first = cut.search_sorted(ts_us, side="left").cast(pl.Int64)
    stop = cut.search_sorted(ts_us + w7_us, side="left").cast(pl.Int64)
    pairs = (
        ev.with_columns(ts_us.alias("ts_us"), first.alias("i0"), stop.alias("i1"))
        .filter(pl.col("i1") > pl.col("i0"))
        .with_columns(pl.int_ranges("i0", "i1", dtype=pl.UInt32).alias("ci"))
        .explode("ci")
        .join(cal.select("ci", "cutoff_us"), on="ci", how="left")
        .with_columns((pl.col("cutoff_us") - pl.col("ts_us")).alias("age_us"))
        .with_columns(
            (pl.col("age_us") < w1_us).alias("in_w1"),
            (-(pl.col("age_us") / _US_PER_HOUR) / DECAY_HOURS).exp().alias("decay"),
        )
        .with_columns((pl.col("base_score") * pl.col("decay")).alias("score"))
    )
    w1 = pl.col("in_w1")
    top_order = dict(by=["score", "ts_us", "event_id"], descending=[True, True, False])
    return pairs.group_by("ci").agg(
        w1.sum().cast(pl.Int64).alias("n_w1"),
        pl.col("threat").filter(pl.col("is_direct")).sum().cast(pl.Int64).alias("threat"),
        pl.col("action_phrases").filter(pl.col("is_direct")).sum().cast(pl.Int64).alias("phrases"),
        (pl.col("is_direct") & w1).sum().cast(pl.Int64).alias("posts_24h"),
        pl.col("score").sum().alias("score_sum"),
        (pl.col("sentiment").sign() * pl.col("score")).sum().alias("signed_sum"),
        pl.col("credibility").filter(w1).mean().alias("trump_confidence"),
        pl.col("sentiment").mean().alias("trump_sentiment_7d"),
        pl.col("tariff_intensity").filter(w1).max().alias("trump_tariff_intensity"),
        (pl.col("has_trump") & w1).sum().cast(pl.Int64).alias("trump_mentions"),
        (pl.col("has_trump") & pl.col("has_china_xi") & w1)
        .sum()
        .cast(pl.Int64)
        .alias("trumpxi_china_mentions"),
        pl.col("sentiment").filter(w1).std(ddof=0).alias("sent_std_w1"),
        pl.col("sentiment").filter(w1).mean().alias("trumpxi_policy_impact"),
        pl.col("sentiment")
        .filter(pl.col("has_trump") & pl.col("has_soy"))
        .mean()
        .alias("trump_soybean_sentiment_7d"),
        pl.col("topic_multiplier").sort_by(**top_order).first().alias("policy_trump_topic_multiplier"),
        pl.col("decay").sort_by(**top_order).first().alias("policy_trump_recency_decay"),
    )


def _finish_daily(daily: pl.DataFrame) -> pl.DataFrame:
    """Apply the empty-window rules and derive #1, #2, #3, #4, #8 and #11 from the aggregates."""
    zero_fill = ["n_w1", "threat", "phrases", "posts_24h", "trump_mentions", "trumpxi_china_mentions"]
    daily = daily.with_columns(
        *[pl.col(c).fill_null(0) for c in zero_fill],
        pl.col("trump_tariff_intensity").fill_null(0.0),
    )
    threat = pl.col("threat").cast(pl.Float64)
    posts = pl.col("posts_24h").cast(pl.Float64)
    phrases = pl.col("phrases").cast(pl.Float64)
    daily = daily.with_columns(
        pl.when(threat > 10).then(pl.min_horizontal(threat / 20, 0.9)).otherwise(0.0).alias("p_tariff"),
        pl.when(posts > 10).then(pl.min_horizontal(posts / 15, 0.9)).otherwise(0.0).alias("p_storm"),
        pl.when(phrases > 3).then(pl.min_horizontal(phrases / 10, 0.7)).otherwise(0.0).alias("p_deal"),
    ).with_columns(pl.max_horizontal("p_tariff", "p_storm", "p_deal").alias("trump_action_prob"))
    prob = pl.col("trump_action_prob")
    # Ties resolve tariff > storm > deal; no action when nothing fires.
    impact = (
        pl.when(prob <= 0).then(None)
        .when(pl.col("p_tariff") == prob).then(pl.lit(ACTION_IMPACT["tariff"]))
        .when(pl.col("p_storm") == prob).then(pl.lit(ACTION_IMPACT["storm"]))
        .otherwise(pl.lit(ACTION_IMPACT["deal"]))
    )  # fmt: skip
    return daily.with_columns(
        pl.when(prob > 0).then(prob * impact).otherwise(0.0).alias("trump_expected_zl_move"),
        # clip, not min_horizontal: the latter would turn an empty W7 (NULL) into 1.0.
        pl.col("score_sum").clip(upper_bound=1.0).alias("trump_score"),
        pl.col("signed_sum").clip(-1.0, 1.0).alias("trump_score_signed"),
        ((prob > 0.3) & (impact.abs() > 0.02)).fill_null(False).alias("trump_procurement_alert"),
        pl.when(pl.col("n_w1") >= 2)
        .then(pl.col("sent_std_w1"))
        .otherwise(None)
        .alias("trumpxi_sentiment_volatility"),
    )


def _volatility_ma(daily: pl.DataFrame, dates: pl.Series) -> pl.DataFrame:
    """#13 for each requested date: mean of non-NULL #11 over Mon-Fri dates in [D-29, D], plus D itself."""
    span = (
        dates.to_frame()
        .with_columns(pl.int_ranges(0, MA_CALENDAR_DAYS).alias("k"))
        .explode("k")
        .with_columns((pl.col("trade_date") - pl.duration(days=pl.col("k"))).alias("d"))
        .filter((pl.col("k") == 0) | is_weekday_expr("d"))
        .join(
            daily.select(pl.col("trade_date").alias("d"), "trumpxi_sentiment_volatility"), on="d", how="left"
        )
    )
    ma = span.group_by("trade_date").agg(pl.col("trumpxi_sentiment_volatility").mean().alias("ma"))
    # Outside coverage #13 is NULL like everything else: D's own #11 row carries the coverage verdict.
    covered = daily.select("trade_date", pl.col("trump_action_prob").is_not_null().alias("covered"))
    return ma.join(covered, on="trade_date", how="left").select(
        "trade_date",
        pl.when(pl.col("covered")).then(pl.col("ma")).otherwise(None).alias("trumpxi_volatility_30d_ma"),
    )


def policy_feature_struct_dtype() -> pl.Struct:
    """The ``policy`` STRUCT of ``daily_ml_matrix`` (field order = POLICY_FEATURES.md)."""
    return pl.Struct([pl.Field(n, t) for n, t in POLICY_FEATURE_COLUMNS])


# The names of the split-out modules stay importable from here (policy_vocab, policy_events,
# policy_scoring), so importers did not change.
__all__ = [
    "ACTION_IMPACT",
    "ACTION_PHRASES",
    "BEARISH_WORDS",
    "BULLISH_WORDS",
    "CHICAGO",
    "CREDIBILITY_DEFAULT",
    "CREDIBILITY_OFFICIAL",
    "CREDIBILITY_TIERS",
    "CUTOFF_LOCAL_TIME",
    "DECAY_HOURS",
    "EVENT_SCHEMA",
    "FREQ_MIN_EVENTS",
    "FREQ_PENALTY",
    "FREQ_WINDOW",
    "MAX_TEXT_CHARS",
    "MA_CALENDAR_DAYS",
    "POLICY_FEATURE_COLUMNS",
    "POLICY_FEATURE_NAMES",
    "PolicyInputError",
    "SOY_WORDS",
    "TARIFF_AMPLIFIERS",
    "THREAT_WEIGHTS",
    "TOPIC_DEFAULT",
    "TOPIC_MULTIPLIERS",
    "W1_LENGTH",
    "W7_LENGTH",
    "compute_policy_features",
    "cutoff_instant",
    "dedupe_events",
    "event_primitives",
    "first_covered_trade_date",
    "load_policy_events",
    "normalised_text_expr",
    "policy_feature_struct_dtype",
    "word_regex",
]
