"""Backfill planning for the Databento API: (series, calendar month) chunks with stable ids for the
load ledger, the ``stype_in`` of a series symbol and UTC normalisation of start/end.

Times: a ``date`` means 00:00 UTC; a naive ``datetime`` is UTC; ``end`` is exclusive.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_DATASET = "GLBX.MDP3"


def _utc(x: dt.date | dt.datetime | str) -> dt.datetime:
    """date -> 00:00 UTC; naive datetime -> UTC; aware -> converted to UTC; ISO string parsed."""
    if isinstance(x, str):
        x = (
            dt.datetime.fromisoformat(x.replace("Z", "+00:00"))
            if "T" in x or " " in x
            else dt.date.fromisoformat(x)
        )
    if isinstance(x, dt.datetime):
        return x.replace(tzinfo=dt.UTC) if x.tzinfo is None else x.astimezone(dt.UTC)
    return dt.datetime(x.year, x.month, x.day, tzinfo=dt.UTC)


def infer_stype_in(series: str) -> str:
    """Databento ``stype_in`` of a series symbol: ``ZL.v.0`` -> continuous, ``ZL.FUT`` -> parent,
    a pure integer -> instrument_id, anything else (``ZLZ5``) -> raw_symbol."""
    parts = series.split(".")
    if len(parts) == 3 and parts[1] in ("c", "n", "v") and parts[2].isdigit():
        return "continuous"
    if len(parts) == 2 and parts[1] in ("FUT", "OPT"):
        return "parent"
    if series.isdigit():
        return "instrument_id"
    return "raw_symbol"


@dataclass(frozen=True)
class Chunk:
    """One API request of a backfill: a single series over [start, end) (UTC, end exclusive),
    never crossing a calendar month. ``chunk_id`` is stable, for the load ledger."""

    dataset: str
    schema: str
    series: str
    stype_in: str
    start: dt.datetime
    end: dt.datetime

    @property
    def chunk_id(self) -> str:
        return (
            f"{self.dataset}|{self.schema}|{self.series}|{self.start:%Y%m%dT%H%M%S}|{self.end:%Y%m%dT%H%M%S}"
        )

    @property
    def file_name(self) -> str:
        """Suggested destination name, e.g. ``glbx-mdp3-ZL.v.0-ohlcv-1h-20240101-20240131.dbn.zst``
        (last day inclusive, like portal batch names)."""
        last = (self.end - dt.timedelta(microseconds=1)).date()
        ds = self.dataset.lower().replace(".", "-")
        return f"{ds}-{self.series}-{self.schema}-{self.start:%Y%m%d}-{last:%Y%m%d}.dbn.zst"


def plan_chunks(
    series: Sequence[str],
    start: dt.date | dt.datetime | str,
    end: dt.date | dt.datetime | str,
    *,
    dataset: str = DEFAULT_DATASET,
    schema: str = "ohlcv-1h",
    stype_in: str | None = None,
) -> list[Chunk]:
    """Cut [start, end) into requests by calendar month (UTC) and series, in time-then-series order.

    The first and last chunks are partial months when start/end are not month boundaries.
    ``stype_in`` defaults to :func:`infer_stype_in` of each series. Duplicate series are requested
    once. Empty when end <= start.
    """
    lo, hi = _utc(start), _utc(end)
    out: list[Chunk] = []
    cur = lo
    uniq = list(dict.fromkeys(series))
    while cur < hi:
        nxt = dt.datetime(cur.year + (cur.month == 12), cur.month % 12 + 1, 1, tzinfo=dt.UTC)
        stop = min(nxt, hi)
        for s in uniq:
            out.append(Chunk(dataset, schema, s, stype_in or infer_stype_in(s), cur, stop))
        cur = stop
    return out
