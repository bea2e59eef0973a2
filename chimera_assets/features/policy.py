"""Policy events (``reference.policy_events``) and the 16 daily policy features.

Spec: SPEC 6.4 "policy" and POLICY_FEATURES.md.

Pure polars, no Dagster. Two entry points:

* :func:`load_policy_events` reads parquet / CSV / JSON-lines files of dated texts into one
  deduplicated event frame (:data:`EVENT_SCHEMA`).
* :func:`compute_policy_features` turns that frame into one row per (trade_date, cutoff) with the 16
  features of :data:`POLICY_FEATURE_COLUMNS`, strictly point-in-time: a row only sees events known at or
  before its cut-off T (a session close instant of the universe's roots, ``policy_cutoffs.py``; 16:00
  America/Chicago for plain dates). Known = the event time, or under knowledge time the later of event
  and collection time.

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


def default_cutoffs(trade_dates: Sequence[date] | pl.Series) -> pl.DataFrame:
    """(trade_date, cutoff) with one row per distinct date at T(D) = 16:00 America/Chicago (the
    equity-index close; plain-date callers of :func:`compute_policy_features` get these)."""
    return _as_date_series(trade_dates).to_frame().with_columns(_cutoff_expr().alias("cutoff"))


def _as_cutoff_frame(cutoffs: pl.DataFrame | Sequence[date] | pl.Series) -> pl.DataFrame:
    if not isinstance(cutoffs, pl.DataFrame):
        return default_cutoffs(cutoffs)
    missing = [c for c in ("trade_date", "cutoff") if c not in cutoffs.columns]
    if missing:
        raise ValueError(f"cutoffs frame lacks column(s) {missing} (has {cutoffs.columns})")
    cut = cutoffs.get_column("cutoff")
    if not isinstance(cut.dtype, pl.Datetime) or cut.dtype.time_zone is None:
        raise ValueError(f"cutoffs 'cutoff' must be a time-zone aware Datetime (UTC instants), got {cut.dtype}")
    out = cutoffs.select(
        pl.col("trade_date").cast(pl.Date),
        pl.col("cutoff").dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
    )
    if out.null_count().sum_horizontal().item():
        raise ValueError("cutoffs contain NULL trade_date or cutoff")
    return out.unique().sort("trade_date", "cutoff")


def _empty_features() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"trade_date": pl.Date(), "cutoff": pl.Datetime("us", "UTC"), **dict(POLICY_FEATURE_COLUMNS)}
    )


def _ma_span(rows: pl.DataFrame) -> pl.DataFrame:
    """For each requested (trade_date, cutoff): the (d, c) rows whose #11 its #13 averages: Mon-Fri d in
    [D-29, D] (and D itself) at the same America/Chicago wall-clock offset from midnight as the row's
    own cut-off (13:20 CT rows average 13:20 CT values); D's own entry is the row's exact cut-off."""
    offset = (
        pl.col("cutoff").dt.convert_time_zone(CHICAGO.key).dt.replace_time_zone(None)
        - pl.col("trade_date").cast(pl.Datetime("us"))
    )
    local = pl.col("d").cast(pl.Datetime("us")) + pl.col("offset")
    instant = local.dt.replace_time_zone(CHICAGO.key, ambiguous="earliest", non_existent="null")
    return (
        rows.with_columns(offset.alias("offset"), pl.int_ranges(0, MA_CALENDAR_DAYS).alias("k"))
        .explode("k")
        .with_columns((pl.col("trade_date") - pl.duration(days=pl.col("k"))).alias("d"))
        .filter((pl.col("k") == 0) | is_weekday_expr("d"))
        .with_columns(
            pl.when(pl.col("k") == 0).then(pl.col("cutoff"))
            .otherwise(instant.dt.convert_time_zone("UTC").dt.cast_time_unit("us")).alias("c")
        )  # fmt: skip
        .filter(pl.col("c").is_not_null())
        .select("trade_date", "cutoff", "d", "c")
    )


def compute_policy_features(
    events: pl.DataFrame,
    cutoffs: pl.DataFrame | Sequence[date] | pl.Series,
    direct_authors: tuple[str, ...] = (),
    *,
    coverage_start: date | None = None,
    time_basis: str = "event",
) -> pl.DataFrame:
    """The 16 policy features for each distinct (trade_date, cutoff) row, sorted by (trade_date, cutoff).

    ``cutoffs``: a frame with ``trade_date`` (Date) and ``cutoff`` (aware Datetime, a UTC instant; see
    ``policy_cutoffs.policy_cutoffs``), or plain dates, each then cut at T(D) = 16:00 America/Chicago.
    Columns: ``trade_date``, ``cutoff`` (Datetime us UTC), then :data:`POLICY_FEATURE_COLUMNS` in order.

    Only events *known* by the cut-off T influence a row: known = ``ts`` when ``time_basis`` is
    ``"event"`` (default), the later of ``ts`` and ``ingested_at`` when ``"knowledge"`` (NULL
    ingested_at: ``ts``). Windows and decay are measured on ``ts``: W1 = (T-24h, T], W7 = (T-7d, T]
    on the UTC axis. Coverage is per cut-off: a row is covered when T >= the earliest known instant
    of any event (or its trade_date >= ``coverage_start`` when given); rows before are all NULL.
    Inside coverage: counts are 0 on empty windows; #1/#2 are 0 and #8 False when nothing fires; #7
    is 0 on an empty W1; other values are NULL on an empty window. #13 averages the non-NULL #11 over
    Mon-Fri dates in [D-29, D] (D included) at the row's own Chicago wall-clock cut-off time, and is
    independent of which other rows are requested. Units: probabilities/scores in [0, 1], #2 a
    fractional price move, #7 on a 0-100 scale, #16 a factor in (0, 1].
    """
    if time_basis not in ("event", "knowledge"):
        raise ValueError(f"time_basis must be 'event' or 'knowledge', got {time_basis!r}")
    rows = _as_cutoff_frame(cutoffs)
    if rows.height == 0:
        return _empty_features()
    ev = event_primitives(events, direct_authors, time_basis=time_basis) if events.height else None

    # Evaluation calendar: the requested rows plus every (date, cut-off) #13 may need, by cut-off.
    span = _ma_span(rows)
    cal = (
        span.select(pl.col("d").alias("trade_date"), pl.col("c").alias("cutoff")).unique()
        .sort("cutoff", "trade_date")
        .with_columns(pl.col("cutoff").dt.epoch("us").alias("cutoff_us"))
        .with_row_index("ci")
    )  # fmt: skip

    daily = cal.select("ci", "trade_date", "cutoff")
    if ev is not None:
        daily = daily.join(_window_aggregates(ev, cal), on="ci", how="left")
    else:
        daily = daily.with_columns([pl.lit(None, dtype=t).alias(c) for c, t in _AGG_SCHEMA.items()])
    daily = _finish_daily(daily)

    if coverage_start is not None:
        in_cov = pl.col("trade_date") >= pl.lit(coverage_start)
    elif ev is not None:
        in_cov = pl.col("cutoff") >= pl.lit(ev.get_column("known").min())
    else:
        in_cov = pl.lit(False)
    per_day = [n for n in POLICY_FEATURE_NAMES if n != "trumpxi_volatility_30d_ma"]
    daily = daily.select(
        "trade_date", "cutoff", *[pl.when(in_cov).then(pl.col(n)).otherwise(None).alias(n) for n in per_day]
    )

    ma = _volatility_ma(daily, span)
    key = ["trade_date", "cutoff"]
    out = rows.join(daily, on=key, how="left").join(ma, on=key, how="left")
    return out.select(*key, *[pl.col(n).cast(t) for n, t in POLICY_FEATURE_COLUMNS]).sort(key)


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
    known_us = ev.get_column("known").dt.epoch("us")
    w7_us = int(W7_LENGTH.total_seconds()) * 1_000_000
    w1_us = int(W1_LENGTH.total_seconds()) * 1_000_000
    # Row indices (by cut-off) whose W7 holds the event: T >= known (first; known = ts in event time)
    # .. T < ts + 7d (last, exclusive). An event known only after ts + 7d reaches no row.
    first = cut.search_sorted(known_us, side="left").cast(pl.Int64)
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


def _volatility_ma(daily: pl.DataFrame, span: pl.DataFrame) -> pl.DataFrame:
    """#13 for each requested (trade_date, cutoff): mean of the non-NULL #11 over its ``span`` rows."""
    vol = daily.select(pl.col("trade_date").alias("d"), pl.col("cutoff").alias("c"), "trumpxi_sentiment_volatility")
    key = ["trade_date", "cutoff"]
    ma = span.join(vol, on=["d", "c"], how="left").group_by(key).agg(
        pl.col("trumpxi_sentiment_volatility").mean().alias("ma")
    )
    # Outside coverage #13 is NULL like everything else: the row's own #1 carries the coverage verdict.
    covered = daily.select(*key, pl.col("trump_action_prob").is_not_null().alias("covered"))
    return ma.join(covered, on=key, how="left").select(
        *key, pl.when(pl.col("covered")).then(pl.col("ma")).otherwise(None).alias("trumpxi_volatility_30d_ma")
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
    "default_cutoffs",
    "event_primitives",
    "first_covered_trade_date",
    "load_policy_events",
    "normalised_text_expr",
    "policy_feature_struct_dtype",
    "word_regex",
]
