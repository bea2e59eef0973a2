"""Policy event files -> one deduplicated event frame (:data:`EVENT_SCHEMA`): reading parquet / CSV /
JSON-lines, normalising the layouts and timestamps, event ids, kinds and de-duplication.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from chimera_assets.features.policy_vocab import (
    EVENT_SCHEMA,
)

_DIRECT_SOURCE_RE = r"(?i)truth_?social"
_OFFICIAL_SOURCE_RE = r"(?i)federal_?register"
# Accepted text timestamps (after "T" -> " " and "Z" -> "+00:00"); with an offset first, then naive = UTC.
_TS_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M%#z",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)
# Columns naming when a row was collected (the real exports' ``ingest_timestamp_utc``), first match wins.
INGEST_COLUMNS = ("ingested_at", "ingest_timestamp_utc", "ingest_timestamp", "ingest_ts")


class PolicyInputError(ValueError):
    """A policy-events input file cannot be used; the message names the file and the reason."""


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


def _parse_ts(raw: pl.DataFrame, col: str, path: Path, *, allow_null: bool = False) -> pl.Series:
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
    if n_null and not allow_null:
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
    ingested_at = _ingested_at(raw, cols, path)
    out = raw.select(
        source.alias("source"),
        _text_col(cols.get("category")).alias("category"),
        # An empty CSV field reads as NULL; an event with no words is still an event (media-only posts).
        pl.col(text_col).cast(pl.Utf8).fill_null("").alias("text"),
        _text_col(cols.get("url")).alias("url"),
    ).with_columns(ts, ingested_at)
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


def _ingested_at(raw: pl.DataFrame, cols: dict[str, str], path: Path) -> pl.Series:
    """When each row was collected (UTC): the file's ingest column (:data:`INGEST_COLUMNS`) where it has
    a value, else the file's modification time: the latest moment we can vouch the row was in hand
    (conservative for a knowledge-time backtest: a row of unknown collection time counts late)."""
    mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    col = next((cols[c] for c in INGEST_COLUMNS if c in cols), None)
    if col is None:
        return pl.Series("ingested_at", [mtime] * raw.height, dtype=pl.Datetime("us", "UTC"))
    parsed = _parse_ts(raw, col, path, allow_null=True)
    return parsed.fill_null(mtime).alias("ingested_at")


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
    earlier one: adding a duplicate after a cut-off cannot change anything before it. ``ingested_at``
    (when present) becomes the earliest collection time of any copy (NULLs ignored).
    """
    sort_cols = [c for c in ("ts", "source", "ingested_from") if c in frame.columns]
    if "ingested_at" in frame.columns:
        frame = frame.with_columns(pl.col("ingested_at").min().over("event_id"))
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
