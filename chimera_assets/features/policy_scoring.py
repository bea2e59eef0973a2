"""Per-event scoring primitives of the daily policy features: sentiment, credibility, topic multiplier,
frequency penalty, threat and tariff intensity (one row per distinct event).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from chimera_assets.features.policy_events import (
    _event_ids,
    _kind_expr,
    dedupe_events,
)
from chimera_assets.features.policy_vocab import (
    ACTION_PHRASES,
    BEARISH_WORDS,
    BULLISH_WORDS,
    CREDIBILITY_DEFAULT,
    CREDIBILITY_OFFICIAL,
    CREDIBILITY_TIERS,
    FREQ_MIN_EVENTS,
    FREQ_PENALTY,
    FREQ_WINDOW,
    SOY_WORDS,
    TARIFF_AMPLIFIERS,
    THREAT_WEIGHTS,
    TOPIC_DEFAULT,
    TOPIC_MULTIPLIERS,
    _count,
    _has,
    _token_regex,
    word_regex,
)


# ======================================================================================================
# per-event primitives
# ======================================================================================================
def _tier_expr(text: pl.Expr, tiers: Sequence[tuple[Sequence[str], float]], default: float | None) -> pl.Expr:
    """First tier whose words occur in ``text`` gives the value; ``default`` when none does."""
    (first_words, first_value), *rest = tiers
    chain = pl.when(text.str.contains(word_regex(*first_words))).then(pl.lit(first_value))
    for words, value in rest:
        chain = chain.when(text.str.contains(word_regex(*words))).then(pl.lit(value))
    return chain.otherwise(pl.lit(default, dtype=pl.Float64))


def _credibility_expr() -> pl.Expr:
    where = pl.concat_str(
        [pl.col("source").fill_null(""), pl.col("url").fill_null("")], separator=" "
    ).str.to_lowercase()
    chain = pl.when(pl.col("kind") == "official").then(pl.lit(CREDIBILITY_OFFICIAL))
    for tokens, value in CREDIBILITY_TIERS:
        chain = chain.when(where.str.contains(_token_regex(tokens))).then(pl.lit(value))
    return chain.otherwise(pl.lit(CREDIBILITY_DEFAULT))


def _topic_expr() -> pl.Expr:
    # Category tags are snake_case ("executive_order"): read '_' and '-' as spaces before matching.
    category = pl.col("category").fill_null("").str.replace_all(r"[_\-]+", " ")
    by_category = _tier_expr(category, TOPIC_MULTIPLIERS, None)
    by_text = _tier_expr(pl.col("text"), TOPIC_MULTIPLIERS, None)
    return pl.coalesce(by_category, by_text, pl.lit(TOPIC_DEFAULT))


def _freq_penalty(frame: pl.DataFrame) -> pl.Series:
    """0.8 where the same source has >= 3 events in [ts - 3h, ts), else 1.0; ``frame`` sorted by ts.

    Strictly earlier instants only, so simultaneous events do not penalise each other and the value
    never depends on row order.
    """
    n_before = (
        pl.len()
        .rolling(index_column="ts", period=f"{int(FREQ_WINDOW.total_seconds())}s", closed="left")
        .over("source")
    )
    return frame.select(
        pl.when(n_before >= FREQ_MIN_EVENTS).then(FREQ_PENALTY).otherwise(1.0).alias("freq_penalty")
    ).to_series()


def _freq_penalty_known(frame: pl.DataFrame) -> pl.Series:
    """Knowledge-time variant of :func:`_freq_penalty`: an earlier same-source event in [ts - 3h, ts)
    counts only if it was known no later than this one (``known``), so the value uses only what was
    known when this event became known (point in time under knowledge time)."""
    e = frame.select(pl.int_range(pl.len()).alias("_i"), "source", "ts", "known")
    o = e.select(pl.col("source").alias("_src"), pl.col("ts").alias("_ts"), pl.col("known").alias("_kn"))
    hits = e.join_where(
        o,
        pl.col("_src") == pl.col("source"),
        pl.col("_ts") < pl.col("ts"),
        pl.col("_ts") >= pl.col("ts") - FREQ_WINDOW,
        pl.col("_kn") <= pl.col("known"),
    ).group_by("_i").len()
    n_before = pl.col("len").fill_null(0)
    return (
        e.join(hits, on="_i", how="left")
        .sort("_i")
        .select(pl.when(n_before >= FREQ_MIN_EVENTS).then(FREQ_PENALTY).otherwise(1.0).alias("freq_penalty"))
        .to_series()
    )


def _known_expr(time_basis: str, columns: Sequence[str]) -> pl.Expr:
    """When an event becomes usable: ``ts`` (event time), or the later of ``ts`` and ``ingested_at``
    (knowledge time; a NULL or absent ingested_at falls back to ``ts``)."""
    if time_basis == "event" or "ingested_at" not in columns:
        return pl.col("ts")
    ing = pl.col("ingested_at").dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    return pl.max_horizontal(pl.col("ts"), ing)


def event_primitives(
    events: pl.DataFrame, direct_authors: Sequence[str] = (), *, time_basis: str = "event"
) -> pl.DataFrame:
    """Per-event inputs of the daily features (one row per distinct event, sorted by ts).

    Adds: ``known`` (UTC instant the event becomes usable: ``ts`` for ``time_basis="event"``, the later
    of ``ts`` and ``ingested_at`` for ``"knowledge"``); ``sentiment`` in [-1, 1); ``credibility``;
    ``topic_multiplier``; ``freq_penalty`` (0.8 or 1; under knowledge time only earlier events known
    no later than this one count);
    ``base_score`` = credibility x topic x |sentiment| x freq_penalty (score before decay);
    ``is_direct``; ``threat`` and ``action_phrases`` (counts, used for direct texts only);
    ``tariff_intensity`` in [0, 100); flags ``has_trump``, ``has_china_xi``, ``has_soy``.
    Missing ``event_id`` / ``kind`` / ``category`` / ``url`` columns are derived or NULL-filled.
    """
    missing = [c for c in ("ts", "source", "text") if c not in events.columns]
    if missing:
        raise ValueError(f"policy events frame lacks column(s) {missing}")
    ev = events
    for c in ("category", "url"):
        if c not in ev.columns:
            ev = ev.with_columns(pl.lit(None, dtype=pl.Utf8).alias(c))
    ts_dtype = ev.schema["ts"]
    if not isinstance(ts_dtype, pl.Datetime):
        raise ValueError(f"policy events 'ts' must be a Datetime column, got {ts_dtype}")
    ts = pl.col("ts").dt.replace_time_zone("UTC") if ts_dtype.time_zone is None else pl.col("ts")
    ev = ev.with_columns(
        ts.dt.convert_time_zone("UTC").dt.cast_time_unit("us").alias("ts"),
        pl.col("text").cast(pl.Utf8).fill_null(""),
        pl.col("source").cast(pl.Utf8),
    )
    if "event_id" not in ev.columns:
        ev = ev.with_columns(_event_ids(ev))
    if "kind" not in ev.columns:
        ev = ev.with_columns(_kind_expr(direct_authors).alias("kind"))
    elif direct_authors:
        # Stored kinds were computed with the loader's author list; widen them with the caller's.
        ev = ev.with_columns(
            pl.when(_kind_expr(direct_authors) == "direct")
            .then(pl.lit("direct"))
            .otherwise(pl.col("kind"))
            .alias("kind")
        )
    ev = dedupe_events(ev)
    ev = ev.with_columns(_known_expr(time_basis, ev.columns).alias("known"))

    nbull = _count("text", *BULLISH_WORDS)
    nbear = _count("text", *BEARISH_WORDS)
    threat = pl.sum_horizontal([w * _count("text", word) for word, w in THREAT_WEIGHTS])
    amplifier = pl.max_horizontal(
        [pl.when(_has("text", word)).then(pl.lit(w)).otherwise(pl.lit(1.0)) for word, w in TARIFF_AMPLIFIERS]
    )
    t = 0.8 * (8 * _count("text", "tariff") + 9 * _count("text", "trade war")) * amplifier
    ev = ev.with_columns(
        ((nbull - nbear) / (nbull + nbear + 1)).cast(pl.Float64).alias("sentiment"),
        _credibility_expr().alias("credibility"),
        _topic_expr().alias("topic_multiplier"),
        _freq_penalty(ev) if time_basis == "event" else _freq_penalty_known(ev),
        (pl.col("kind") == "direct").alias("is_direct"),
        threat.cast(pl.Int64).alias("threat"),
        _count("text", *ACTION_PHRASES).alias("action_phrases"),
        ((t / 50.0).tanh() * 100.0).alias("tariff_intensity"),
        _has("text", "trump").alias("has_trump"),
        _has("text", "china", "xi").alias("has_china_xi"),
        _has("text", *SOY_WORDS).alias("has_soy"),
    )
    return ev.with_columns(
        (
            pl.col("credibility")
            * pl.col("topic_multiplier")
            * pl.col("sentiment").abs()
            * pl.col("freq_penalty")
        ).alias("base_score")
    )
