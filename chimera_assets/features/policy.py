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

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import polars as pl

CHICAGO = ZoneInfo("America/Chicago")
CUTOFF_LOCAL_TIME = time(16, 0)
# Window lengths are exact durations on the UTC axis (a DST switch does not stretch them).
W1_LENGTH = timedelta(hours=24)
W7_LENGTH = timedelta(days=7)
MA_CALENDAR_DAYS = 30
DECAY_HOURS = 24.0
FREQ_WINDOW = timedelta(hours=3)
FREQ_MIN_EVENTS = 3
FREQ_PENALTY = 0.8

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.Utf8(),
    "ts": pl.Datetime("us", "UTC"),
    "source": pl.Utf8(),
    "category": pl.Utf8(),
    "text": pl.Utf8(),
    "url": pl.Utf8(),
    "kind": pl.Utf8(),
    "ingested_from": pl.Utf8(),
}

POLICY_FEATURE_COLUMNS: list[tuple[str, pl.DataType]] = [
    ("trump_action_prob", pl.Float64()),
    ("trump_expected_zl_move", pl.Float64()),
    ("trump_score", pl.Float64()),
    ("trump_score_signed", pl.Float64()),
    ("trump_confidence", pl.Float64()),
    ("trump_sentiment_7d", pl.Float64()),
    ("trump_tariff_intensity", pl.Float64()),
    ("trump_procurement_alert", pl.Boolean()),
    ("trump_mentions", pl.Int64()),
    ("trumpxi_china_mentions", pl.Int64()),
    ("trumpxi_sentiment_volatility", pl.Float64()),
    ("trumpxi_policy_impact", pl.Float64()),
    ("trumpxi_volatility_30d_ma", pl.Float64()),
    ("trump_soybean_sentiment_7d", pl.Float64()),
    ("policy_trump_topic_multiplier", pl.Float64()),
    ("policy_trump_recency_decay", pl.Float64()),
]
POLICY_FEATURE_NAMES: list[str] = [name for name, _ in POLICY_FEATURE_COLUMNS]

# --- keyword vocabularies (POLICY_FEATURES.md, verbatim) ---------------------------------------------
BULLISH_WORDS: tuple[str, ...] = (
    "biofuel", "ethanol", "biodiesel", "renewable", "mandate", "rfs", "china purchase", "purchase", "buy",
    "deal", "agreement", "trade deal", "export", "demand", "strong", "growth",
)  # fmt: skip
BEARISH_WORDS: tuple[str, ...] = (
    "tariff", "tax", "ban", "restriction", "sanction", "war", "conflict", "weak", "decline", "drop", "fall",
    "recession", "crisis",
)  # fmt: skip
# threat = sum(weight * #word) over W7 direct texts
THREAT_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("tariff", 3), ("tax", 2), ("china", 2), ("unfair", 1), ("retaliate", 3),
)  # fmt: skip
ACTION_PHRASES: tuple[str, ...] = ("will be", "going to", "announcing", "very soon", "big news", "stay tuned")
TARIFF_AMPLIFIERS: tuple[tuple[str, float], ...] = (
    ("disaster", 2.0), ("failing", 2.0), ("rigged", 1.8), ("huge", 1.5), ("tremendous", 1.5),
    ("winning", 1.5), ("crooked", 1.4), ("fake", 1.3), ("beautiful", 1.2),
)  # fmt: skip
# Ordered: the first group that matches wins (on category first, then on text).
TOPIC_MULTIPLIERS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("executive order", "policy"), 1.00),
    (("trade", "tariff"), 0.95),
    (("soybean", "soy oil"), 0.90),
    (("biofuel", "energy"), 0.85),
    (("supply", "harvest", "weather"), 0.80),
    (("logistics",), 0.70),
    (("macro",), 0.60),
)
TOPIC_DEFAULT = 0.75
# Credibility tiers, tested on "source url" as tokens separated by anything but [a-z0-9]
# (so "DTN_Policy" and "www.ft.com" match but "microsoft" does not). apnews/dtnpf are the outlets' domains.
CREDIBILITY_TIERS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("reuters", "bloomberg", "wsj", "ft"), 0.95),
    (("cnbc", "ap", "apnews"), 0.90),
    (("agweb", "dtn", "dtnpf", "agriculture.com"), 0.80),
)
CREDIBILITY_OFFICIAL = 1.0
CREDIBILITY_DEFAULT = 0.5
SOY_WORDS: tuple[str, ...] = ("soy", "soybean", "soy oil", "soybean oil", "zl", "biofuel")
ACTION_IMPACT: dict[str, float] = {"tariff": -0.025, "storm": -0.008, "deal": 0.015}

_DIRECT_SOURCE_RE = r"(?i)truth_?social"
_OFFICIAL_SOURCE_RE = r"(?i)federal_?register"

_US_PER_HOUR = 3_600_000_000
# Accepted text timestamps (after "T" -> " " and "Z" -> "+00:00"); with an offset first, then naive = UTC.
_TS_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M%#z",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)


class PolicyInputError(ValueError):
    """A policy-events input file cannot be used; the message names the file and the reason."""


# ======================================================================================================
# regex helpers
# ======================================================================================================
def word_regex(*phrases: str) -> str:
    """Case-insensitive regex matching any of ``phrases`` as whole words.

    Word boundaries are regex ``\\b`` (so ``xi`` does not match ``taxi`` and ``tariff`` does not match
    ``tariffs``); the words of a multiword phrase may be separated by any run of whitespace.
    """
    alts = "|".join(r"\s+".join(re.escape(w) for w in p.split()) for p in phrases)
    return rf"(?i)\b(?:{alts})\b"


def _token_regex(tokens: Iterable[str]) -> str:
    # Boundaries are consuming here (presence test only), so '_' counts as a separator, unlike \b.
    alts = "|".join(re.escape(t) for t in tokens)
    return rf"(?:^|[^a-z0-9])(?:{alts})(?:[^a-z0-9]|$)"


def _count(col: str, *phrases: str) -> pl.Expr:
    """Total hits of each phrase counted separately (overlaps count for every phrase), as Int64."""
    return pl.sum_horizontal([pl.col(col).str.count_matches(word_regex(p)).cast(pl.Int64) for p in phrases])


def _has(col: str, *phrases: str) -> pl.Expr:
    return pl.col(col).str.contains(word_regex(*phrases))


# ======================================================================================================
# loading
# ======================================================================================================
def _read_file(path: Path) -> pl.DataFrame:
    suffix = "".join(path.suffixes[-1:]).lower()
    if not path.is_file():
        raise PolicyInputError(f"policy events file {path}: not found or not a regular file")
    try:
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path)
        if suffix == ".csv":
            # All columns as text: timestamps are parsed below with one consistent rule.
            return pl.read_csv(path, infer_schema=False, encoding="utf8")
        if suffix in (".jsonl", ".ndjson"):
            return pl.read_ndjson(path, infer_schema_length=None)
        if suffix == ".json":
            try:
                return pl.read_ndjson(path, infer_schema_length=None)
            except Exception:  # a JSON array is the other accepted .json shape
                return pl.read_json(path, infer_schema_length=None)
    except Exception as exc:  # every reader failure becomes one clear, file-named error
        msg = str(exc)
        is_text = suffix != ".parquet" and suffix != ".pq"
        reason = (
            "invalid UTF-8" if is_text and ("utf-8" in msg.lower() or "utf8" in msg.lower()) else "unreadable"
        )
        raise PolicyInputError(
            f"policy events file {path}: {reason} ({type(exc).__name__}: {msg[:300]})"
        ) from exc
    raise PolicyInputError(
        f"policy events file {path}: unsupported file type {suffix!r} "
        "(expected .parquet, .pq, .csv, .jsonl, .ndjson, .json)"
    )


def _parse_ts(raw: pl.DataFrame, col: str, path: Path) -> pl.Series:
    s = raw.get_column(col)
    dtype = s.dtype
    if isinstance(dtype, pl.Datetime):
        # Naive timestamps are taken as UTC (the real exports are UTC).
        s = s.dt.replace_time_zone("UTC") if dtype.time_zone is None else s.dt.convert_time_zone("UTC")
        s = s.dt.cast_time_unit("us")
    elif dtype == pl.Date:
        s = s.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    elif dtype == pl.Utf8:
        # Row by row, not one inferred format: real files mix "Z", "+hh:mm" and naive (UTC) stamps.
        text = s.str.strip_chars().str.replace(r"(?i)z$", "+00:00").str.replace("T", " ", literal=True)
        parsed = pl.select(
            pl.coalesce(
                [
                    pl.lit(text).str.to_datetime(fmt, time_unit="us", time_zone="UTC", strict=False)
                    for fmt in _TS_FORMATS
                ]
            )
        ).to_series()
        bad = parsed.is_null() & s.is_not_null()
        if bad.any():
            first = s.filter(bad)[0]
            raise PolicyInputError(
                f"policy events file {path}: column {col!r} has {int(bad.sum())} unparseable timestamp(s), "
                f"first {first[:80]!r}"
            )
        s = parsed
    elif dtype == pl.Null:
        s = pl.Series(col, [None] * raw.height, dtype=pl.Datetime("us", "UTC"))
    else:
        raise PolicyInputError(
            f"policy events file {path}: column {col!r} has type {dtype}, "
            "expected a timestamp or ISO-8601 text"
        )
    n_null = s.null_count()
    if n_null:
        raise PolicyInputError(f"policy events file {path}: column {col!r} has {n_null} empty timestamp(s)")
    return s.alias("ts")


def _text_col(col: str | None) -> pl.Expr:
    if col is None:
        return pl.lit(None, dtype=pl.Utf8)
    return pl.col(col).cast(pl.Utf8)


def _normalise_frame(raw: pl.DataFrame, path: Path) -> pl.DataFrame:
    """Map one file's columns onto (ts, source, category, text, url); see the module docs for layouts."""
    cols = {c.lower(): c for c in raw.columns}
    ts_col = cols.get("ts") or cols.get("timestamp")
    text_col = cols.get("text") or cols.get("title")
    missing = [name for name, c in (("ts|timestamp", ts_col), ("text", text_col)) if c is None]
    if "source" in cols:
        source = pl.col(cols["source"]).cast(pl.Utf8)
    elif "platform" in cols:
        # social_posts layout: "twitter/ScrapeCreators_Twitter"; the platform alone if source_name is empty.
        plat = pl.col(cols["platform"]).cast(pl.Utf8)
        if "source_name" in cols:
            name = pl.col(cols["source_name"]).cast(pl.Utf8)
            source = (
                pl.when(name.is_null() | (name.str.strip_chars() == ""))
                .then(plat)
                .otherwise(pl.concat_str([plat, name], separator="/"))
            )
        else:
            source = plat
    elif "source_name" in cols:
        source = pl.col(cols["source_name"]).cast(pl.Utf8)
    else:
        source = None
        missing.append("source (or platform/source_name)")
    if missing:
        raise PolicyInputError(
            f"policy events file {path}: missing required column(s) {', '.join(missing)}; found {raw.columns}"
        )
    assert text_col is not None and source is not None and ts_col is not None
    ts = _parse_ts(raw, ts_col, path)
    out = raw.select(
        source.alias("source"),
        _text_col(cols.get("category")).alias("category"),
        # An empty CSV field reads as NULL; an event with no words is still an event (media-only posts).
        pl.col(text_col).cast(pl.Utf8).fill_null("").alias("text"),
        _text_col(cols.get("url")).alias("url"),
    ).with_columns(ts)
    bad_source = out.get_column("source").is_null() | (out.get_column("source").str.strip_chars() == "")
    if bad_source.any():
        raise PolicyInputError(
            f"policy events file {path}: {int(bad_source.sum())} row(s) have an empty source"
        )
    return out.with_columns(
        pl.col("source").str.strip_chars(),
        *[
            pl.when(pl.col(c).str.strip_chars() == "")
            .then(None)
            .otherwise(pl.col(c).str.strip_chars())
            .alias(c)
            for c in ("category", "url")
        ],
        pl.lit(path.name).alias("ingested_from"),
    )


def normalised_text_expr(col: str = "text") -> pl.Expr:
    """Text used for identity: NFKC, lower case, whitespace runs collapsed to one space, trimmed."""
    return pl.col(col).str.normalize("NFKC").str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()


def _event_ids(frame: pl.DataFrame) -> pl.Series:
    keys = frame.select(
        normalised_text_expr().alias("n"),
        pl.col("ts").dt.truncate("1m").dt.strftime("%Y-%m-%dT%H:%MZ").alias("m"),
    )
    # polars' hash is not stable across versions; DuckDB's sha256 is the standard digest, vectorised.
    con = duckdb.connect()
    try:
        con.register("k", keys.to_arrow())
        ids = con.sql("SELECT sha256(n || chr(31) || m) AS event_id FROM k").to_arrow_table()
    finally:
        con.close()
    return pl.Series("event_id", pl.from_arrow(ids)["event_id"], dtype=pl.Utf8)


def _kind_expr(direct_authors: Sequence[str]) -> pl.Expr:
    direct = pl.col("source").str.contains(_DIRECT_SOURCE_RE)
    for author in direct_authors:
        if author.strip():
            direct = direct | pl.col("source").str.to_lowercase().str.contains(
                author.strip().lower(), literal=True
            )
    return (
        pl.when(direct)
        .then(pl.lit("direct"))
        .when(pl.col("source").str.contains(_OFFICIAL_SOURCE_RE))
        .then(pl.lit("official"))
        .otherwise(pl.lit("commentary"))
    )


def dedupe_events(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per ``event_id`` (same normalised text in the same UTC minute).

    The earliest ``ts`` is kept (then source, then file name), so a later copy never replaces an
    earlier one: adding a duplicate after a cut-off cannot change anything before it.
    """
    sort_cols = [c for c in ("ts", "source", "ingested_from") if c in frame.columns]
    return (
        frame.sort(sort_cols, nulls_last=True, maintain_order=True)
        .unique(subset="event_id", keep="first", maintain_order=True)
        .sort(["ts", "event_id"])
    )


MAX_TEXT_CHARS = 1_000_000


def _check_text_sizes(frame: pl.DataFrame, path: Path) -> pl.DataFrame:
    too_long = frame.filter(pl.col("text").str.len_chars() > MAX_TEXT_CHARS)
    if too_long.height:
        first = too_long.row(0, named=True)
        raise PolicyInputError(
            f"policy events file {path}: {too_long.height} text(s) longer than {MAX_TEXT_CHARS:,} characters "
            f"(the first, at {first['ts']}, has {len(first['text']):,}); a broken export? fix or remove the file"
        )
    return frame


def load_policy_events(paths: Iterable[Path | str], *, direct_authors: Sequence[str] = ()) -> pl.DataFrame:
    """Read policy event files into one deduplicated frame with :data:`EVENT_SCHEMA` columns.

    Accepted layouts (column names case-insensitive):

    * generic / trump_policy_intelligence: ``ts`` or ``timestamp``, ``source``, ``text``, optional
      ``category`` and ``url``;
    * social_posts: ``platform`` (+ optional ``source_name``), ``title`` as the text, ``timestamp``;
      source becomes ``"platform/source_name"``, category is NULL.

    Timestamps: tz-aware values are converted to UTC, naive ones are taken as UTC, DATE values are
    00:00 UTC, text is ISO 8601 (offsets honoured). ``kind``: ``direct`` for Truth Social sources or a
    source containing one of ``direct_authors`` (case-insensitive), ``official`` for Federal Register
    sources, otherwise ``commentary``. Duplicates (same normalised text in the same UTC minute) are kept
    once. Empty text is kept as an event (``""``). Texts are never truncated: a text longer than
    ``MAX_TEXT_CHARS`` (1,000,000 characters; real posts and orders are far below) is a broken export
    and the file is refused.

    Raises :class:`PolicyInputError` (naming the file) for a missing/unreadable/unsupported file,
    invalid UTF-8, missing ts/text/source columns, or empty/unparseable timestamps or empty sources.
    """
    frames = [_check_text_sizes(_normalise_frame(_read_file(Path(p)), Path(p)), Path(p)) for p in paths]
    frames = [f for f in frames if f.height]
    if not frames:
        return pl.DataFrame(schema=EVENT_SCHEMA)
    events = pl.concat(frames, how="vertical")
    events = events.with_columns(_event_ids(events), _kind_expr(direct_authors).alias("kind"))
    return dedupe_events(events).select([pl.col(c).cast(t) for c, t in EVENT_SCHEMA.items()])


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


def event_primitives(events: pl.DataFrame, direct_authors: Sequence[str] = ()) -> pl.DataFrame:
    """Per-event inputs of the daily features (one row per distinct event, sorted by ts).

    Adds: ``sentiment`` in [-1, 1); ``credibility``; ``topic_multiplier``; ``freq_penalty`` (0.8 or 1);
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
        _freq_penalty(ev),
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
    while d.weekday() >= 5:
        d += timedelta(days=1)
    return d


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
    weekdays = weekdays.filter(weekdays.dt.weekday() <= 5)
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
        .filter((pl.col("k") == 0) | (pl.col("d").dt.weekday() <= 5))
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


__all__ = [
    "EVENT_SCHEMA",
    "POLICY_FEATURE_COLUMNS",
    "POLICY_FEATURE_NAMES",
    "PolicyInputError",
    "compute_policy_features",
    "cutoff_instant",
    "event_primitives",
    "first_covered_trade_date",
    "load_policy_events",
    "policy_feature_struct_dtype",
    "word_regex",
]
