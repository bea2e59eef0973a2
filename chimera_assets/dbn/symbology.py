"""A file's symbology (metadata ``mappings``) as a frame, joined to records on (instrument_id, UTC date).

The root and spread flag of each series are computed once per series here, never once per record.
Records the symbology cannot name get their root from caller-supplied ``instrument_roots`` (files
requested with ``stype_in=instrument_id``) or are dropped and counted in :class:`DecodeStats`.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from chimera_assets.dbn.diagnostics import DecodeStats
from chimera_assets.trade_calendar import is_spread_symbol_expr, root_expr

MAPPING_SCHEMA = {
    "instrument_id": pl.Int64,
    "map_date": pl.Date,
    "series": pl.Utf8,
    "symbol": pl.Utf8,
    "series_is_spread": pl.Boolean,
    "n_series": pl.UInt32,
}


def mapping_frame(mappings: Mapping[str, list[dict]] | None) -> tuple[pl.DataFrame, list[str]]:
    """Expand metadata mappings into one row per (instrument_id, UTC date), end date exclusive.

    Returns the frame (columns of ``MAPPING_SCHEMA``) and the series whose root cannot be parsed.
    The Python loop runs over mapping intervals (hundreds), never over records; the root and the
    spread flag are computed here, once per series, instead of once per record. Interval symbols
    that are not integers (a file whose stype_out is not instrument_id) cannot be joined to records
    and are ignored. Where several series map the same instrument on the same date, the
    alphabetically first is kept and ``n_series`` records the ambiguity. Series whose root cannot be
    parsed are left out, so their records count as unmapped (dropped with a warning).
    """
    series, iids, starts, ends = [], [], [], []
    for sym, intervals in (mappings or {}).items():
        for iv in intervals:
            target = str(iv["symbol"])
            if not target.isdigit():
                continue
            series.append(str(sym))
            iids.append(int(target))
            starts.append(iv["start_date"])
            ends.append(iv["end_date"])
    if not series:
        return pl.DataFrame(schema=MAPPING_SCHEMA), []
    frame = (
        pl.DataFrame(
            {"series": series, "instrument_id": iids, "start": starts, "end": ends},
            schema={"series": pl.Utf8, "instrument_id": pl.Int64, "start": pl.Date, "end": pl.Date},
        )
        .filter(pl.col("end") > pl.col("start"))
        .with_columns(symbol=root_expr("series"), series_is_spread=is_spread_symbol_expr("series"))
    )
    bad = sorted(frame.filter(pl.col("symbol").is_null()).get_column("series").unique().to_list())
    frame = (
        frame.filter(pl.col("symbol").is_not_null())
        .with_columns(map_date=pl.date_ranges("start", pl.col("end") - pl.duration(days=1), interval="1d"))
        .explode("map_date")
        .sort("series")
        .group_by("instrument_id", "map_date")
        .agg(
            pl.col("series").first(),
            pl.col("symbol").first(),
            pl.col("series_is_spread").first(),
            pl.col("series").n_unique().alias("n_series"),
        )
        .select(list(MAPPING_SCHEMA))
        .cast(MAPPING_SCHEMA)
    )
    return frame, bad


def roots_frame(instrument_roots: Mapping[int, str] | pl.DataFrame | None) -> pl.DataFrame | None:
    """``instrument_roots`` (instrument_id -> root, or a frame with instrument_id, root; the last row
    of an id wins) as the frame :func:`join_symbology` takes: instrument_id (Int64), _root_override."""
    if instrument_roots is None:
        return None
    if isinstance(instrument_roots, pl.DataFrame):
        return instrument_roots.select(
            pl.col("instrument_id").cast(pl.Int64), pl.col("root").cast(pl.Utf8).alias("_root_override")
        ).unique("instrument_id", keep="last")
    items = list(instrument_roots.items())
    return pl.DataFrame(
        {"instrument_id": [int(k) for k, _ in items], "_root_override": [str(v) for _, v in items]},
        schema={"instrument_id": pl.Int64, "_root_override": pl.Utf8},
    )


def join_symbology(
    frame: pl.DataFrame,
    mapping: pl.DataFrame,
    instrument_roots: pl.DataFrame | None,
    stats: DecodeStats,
) -> pl.DataFrame:
    """Add ``series``, ``symbol`` (root) and ``series_is_spread``; drop and count unmapped records.

    ``instrument_roots`` (columns instrument_id, _root_override) names the root of records the file
    symbology does not cover (stype_in=instrument_id files); their series stays NULL.
    """
    out = frame.join(mapping, on=["instrument_id", "map_date"], how="left", maintain_order="left")
    if instrument_roots is not None:
        out = out.join(instrument_roots, on="instrument_id", how="left", maintain_order="left")
        out = out.with_columns(
            symbol=pl.coalesce("symbol", "_root_override"),
            series_is_spread=pl.col("series_is_spread").fill_null(False),
        ).drop("_root_override")
    n_amb = out.get_column("n_series").gt(1).sum()
    stats.ambiguous_records += int(n_amb or 0)
    missing_mask = out.get_column("symbol").is_null()
    n_missing = int(missing_mask.sum())
    if n_missing:
        stats.unmapped_dropped += n_missing
        room = 50 - len(stats.unmapped_instrument_ids)
        if room > 0:
            ids = out.get_column("instrument_id").filter(missing_mask).unique().sort().to_list()
            seen = set(stats.unmapped_instrument_ids)
            stats.unmapped_instrument_ids.extend([i for i in ids if i not in seen][:room])
        out = out.filter(~missing_mask)
    return out
