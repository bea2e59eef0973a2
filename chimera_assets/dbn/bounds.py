"""The most records a DBN header allows (a zstd bomb is refused after one chunk) and a validating count."""

from __future__ import annotations

import warnings
from pathlib import Path

from chimera_assets.dbn.columns import UNDEF_TIMESTAMP
from chimera_assets.dbn.diagnostics import DbnDecodeError
from chimera_assets.dbn.header import enum_str, open_store

# Upper bounds of records per instrument, used by :func:`record_bound`. OHLCV: one bar per
# instrument per interval at most. Statistics and definitions have no fixed grid: these are generous
# per instrument-day ceilings (real GLBX files carry tens of statistics and a few definitions per
# instrument and day).
_BAR_SECONDS = {"ohlcv-1s": 1, "ohlcv-1m": 60, "ohlcv-1h": 3600, "ohlcv-1d": 86400}
_PER_INSTRUMENT_DAY = {"statistics": 5_000, "definition": 500}
#: Floor of every bound: a tiny header never refuses a small file.
MIN_RECORD_BOUND = 100_000


def record_bound(meta) -> int | None:
    """The most records a file with this DBN header can honestly hold (None: no bound derivable).

    Derived from the header alone, so it is known before any record is decompressed: the request
    window [start, end), the instruments the symbology maps (distinct instrument ids in
    ``mappings``, else the number of requested symbols) and the schema's grid (one bar per
    instrument per interval for OHLCV; per instrument-day ceilings for statistics/definitions),
    times 2 for slack, at least ``MIN_RECORD_BOUND``. A zstd bomb (a tiny file expanding to GBs of
    records) exceeds it after one chunk, so decoding stops with bounded memory.
    """
    start, end = getattr(meta, "start", None), getattr(meta, "end", None)
    if start is None or end is None or int(end) >= int(UNDEF_TIMESTAMP) or int(end) <= int(start):
        return None
    ids: set[str] = set()
    for intervals in (getattr(meta, "mappings", None) or {}).values():
        ids.update(str(iv["symbol"]) for iv in intervals)
    n_inst = max(len(ids), len(getattr(meta, "symbols", None) or []), 1)
    span_s = (int(end) - int(start)) / 1e9
    schema = enum_str(meta.schema)
    if schema in _BAR_SECONDS:
        per_inst = span_s / _BAR_SECONDS[schema] + 2
    else:
        per_inst = (span_s / 86400 + 2) * _PER_INSTRUMENT_DAY.get(schema or "", 5_000)
    limit = int(meta.limit) if getattr(meta, "limit", None) else None
    bound = max(MIN_RECORD_BOUND, int(2 * n_inst * per_inst))
    return min(bound, max(limit, MIN_RECORD_BOUND)) if limit else bound


def bounded_chunk_rows(chunk_rows: int, bound: int | None) -> int:
    """Records per chunk under a record ``bound``: a chunk is decompressed before it can be counted,
    so keep chunks small enough (a quarter of the bound, at least 10,000) that one chunk beyond the
    bound stays cheap (1M OHLCV records are ~56 MB). No bound: ``chunk_rows`` unchanged."""
    return chunk_rows if bound is None else min(chunk_rows, max(bound // 4, 10_000))


def count_dbn_records(path: str | Path, chunk_rows: int = 1_000_000) -> int:
    """Number of records in a DBN file, reading every record (validates the whole body).

    Raises DbnDecodeError for empty, truncated (incomplete zstd frame or final record) or non-DBN
    files. Used to validate a download before it replaces the destination file. Any schema.
    """
    from databento.common.error import BentoError, BentoWarning
    from databento_dbn import DBNError

    path = Path(path)
    store, _ = open_store(path)
    bound = record_bound(store.metadata)
    n = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", BentoWarning)
            for arr in store.to_ndarray(count=bounded_chunk_rows(chunk_rows, bound)):
                n += len(arr)
                if bound is not None and n > bound:
                    raise DbnDecodeError(f"{path}: more than {bound:,} records, the most its header allows; "
                                         "refused as a decompression bomb or a corrupt header")
    except BentoWarning as exc:
        raise DbnDecodeError(f"{path}: truncated DBN file ({exc})") from exc
    except (BentoError, DBNError, OSError, ValueError) as exc:
        raise DbnDecodeError(f"{path}: cannot decode records ({type(exc).__name__}: {exc})") from exc
    return n
