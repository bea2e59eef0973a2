"""Which raw partitions a DBN file holds records for: coverage from the records, not the header period.

A file's coverage is the set of (trade-date partition, root) pairs of the rows it gives a raw table
(after the universe's series filter), computed by decoding it once; the result is cached per
(path, size, mtime, the universe's dataset and series), so a sensor tick or a second planning pass
does not decode it again. The file's
``span`` adds, per root, every weekday between its first and last partition: those are days the
file speaks for (a holiday inside a monthly file has no session, so no rows; it is not "missing").
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import polars as pl

from chimera_assets.dbn.decode import iter_decoded_chunks
from chimera_assets.dbn.diagnostics import DbnDecodeError, DecodeStats
from chimera_assets.dbn.header import DbnInfo
from chimera_assets.ingest import ledger
from chimera_assets.ingest.landing import SCHEMA_TABLES, _partition_date, _shape_rows, header, unusable_reason
from chimera_assets.schemas import DEFINITIONS
from chimera_assets.trade_calendar import weekday_dates
from chimera_assets.universe import Universe

PartitionKey = tuple[date, str]


@dataclass(frozen=True)
class FileCoverage:
    """One landing file as the planner sees it.

    ``partitions``: (trade-date partition, root) pairs its records give rows to; ``spoken_for``: those
    plus, per root, the weekdays between its first and last partition (no-session days inside the
    file). ``first_ts``/``last_ts``: the first and last ``ts_event`` of ALL its records (UTC);
    ``records``: records in the file. ``mtime_ns`` orders files (newest wins per key).
    """

    path: Path
    info: DbnInfo
    sha256: str
    mtime_ns: int
    partitions: frozenset[PartitionKey]
    spoken_for: frozenset[PartitionKey]
    records: int
    first_ts: datetime | None
    last_ts: datetime | None

    @property
    def schema(self) -> str:
        return str(self.info.schema)


def _spoken_for(partitions: set[PartitionKey]) -> frozenset[PartitionKey]:
    by_root: dict[str, list[date]] = {}
    for d, r in partitions:
        by_root.setdefault(r, []).append(d)
    out = set(partitions)
    for r, ds in by_root.items():
        out.update((d, r) for d in weekday_dates(min(ds), max(ds)))
    return frozenset(out)


def _refuse_bad_prices(path: Path, bars: pl.DataFrame) -> None:
    """A bar must have finite, non-NULL open/high/low/close (UNDEF_PRICE decodes to NULL): refuse the
    file naming it and the first such bar, rather than publish NULL closes."""
    ohlc = ["open", "high", "low", "close"]
    bad = bars.filter(pl.any_horizontal([pl.col(c).is_null() | ~pl.col(c).is_finite() for c in ohlc]))
    if bad.height:
        b = bad.row(0, named=True)
        raise DbnDecodeError(
            f"{path}: {bad.height} bar(s) with a NULL or non-finite open/high/low/close (UNDEF price), e.g. "
            f"the bar at {b['ts_event']} of {b.get('series') or b['symbol']} (instrument_id {b['instrument_id']}): "
            f"open={b['open']} high={b['high']} low={b['low']} close={b['close']}; the file is refused"
        )


@dataclass(frozen=True)
class _UniverseScope:
    """What a file's coverage depends on besides the file: the universe's dataset and each root's
    series (hashable, so it keys the cache). The universe itself rides along outside equality."""

    dataset: str
    series: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]
    universe: Universe = field(compare=False, repr=False)

    @classmethod
    def of(cls, universe: Universe) -> _UniverseScope:
        series = tuple((r, tuple(c.series), tuple(c.statistics_series)) for r, c in universe.roots.items())
        return cls(universe.dataset, series, universe)


def file_coverage(path: Path, universe: Universe) -> FileCoverage:
    """Decode ``path`` once and return its coverage (cached while its size and mtime, and the
    universe's dataset and series, are unchanged: a rewritten file is decoded again).

    Raises DbnDecodeError naming the file when it cannot be decoded (empty, truncated, corrupt, a
    record count beyond its header's bound, a dataset other than the universe's).
    """
    st = path.stat()
    return _cached_coverage(str(path), st.st_size, st.st_mtime_ns, _UniverseScope.of(universe))


# Bounded: a long-lived sensor process sees every landing file (the old dict was cleared at 4096).
@functools.lru_cache(maxsize=4096)
def _cached_coverage(path_str: str, size: int, mtime_ns: int, scope: _UniverseScope) -> FileCoverage:
    """The coverage of the file at ``path_str``; ``size`` keys the cache, ``mtime_ns`` is recorded."""
    path, universe = Path(path_str), scope.universe
    problem = unusable_reason(path)  # a name the ledger and logs cannot hold, an empty file
    if problem is not None:
        raise DbnDecodeError(problem)
    info = header(path)
    if info.dataset and universe.dataset and info.dataset != universe.dataset:
        raise DbnDecodeError(
            f"{path}: dataset {info.dataset} in the file header, but the universe loads {universe.dataset}; "
            "the file is refused (a file of another venue would be written into GLBX tables)"
        )
    spec = SCHEMA_TABLES.get(str(info.schema))
    if spec is None:
        raise DbnDecodeError(f"{path}: schema {info.schema!r} has no raw table (one of {sorted(SCHEMA_TABLES)})")
    sym_col = "root" if spec is DEFINITIONS else "symbol"
    stats = DecodeStats()
    pairs: list[pl.DataFrame] = []
    first = last = None
    for chunk in iter_decoded_chunks(path, stats=stats):
        if "ts_event" in chunk.columns and chunk.height:
            lo, hi = chunk["ts_event"].min(), chunk["ts_event"].max()
            first = lo if first is None or (lo is not None and lo < first) else first
            last = hi if last is None or (hi is not None and hi > last) else last
        shaped = _shape_rows(spec, chunk, universe)
        if spec.name.startswith("databento_futures_ohlcv"):
            _refuse_bad_prices(path, shaped)
        pairs.append(shaped.select(_partition_date(spec).alias("d"), pl.col(sym_col).alias("r")).unique())
    parts = pl.concat(pairs).unique().drop_nulls() if pairs else pl.DataFrame({"d": [], "r": []})
    partitions = {(d, r) for d, r in parts.rows()}
    cov = FileCoverage(
        path=path, info=info, sha256=ledger.file_sha256(path), mtime_ns=mtime_ns,
        partitions=frozenset(partitions), spoken_for=_spoken_for(partitions), records=stats.records_read,
        first_ts=first, last_ts=last,
    )
    return cov
