"""The first and last record timestamps of a DBN file, decoded once per file content and kept on disk.

File selection starts from the header's period (cheap), but the header can disagree with the records
(a hand-edited or re-encoded file, a batch job whose request window differs from what it delivered).
Coverage comes from the records (SPEC 6.2), so a file whose header period misses the requested dates is
asked for its records' span. Decoding every such file on every run would make each ``chimera run`` read
the whole landing directory, so the span is cached in ``$CHIMERA_HOME/cache/record_spans.json`` keyed
by path, size and mtime (a rewritten file is decoded again), and in this process.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from chimera_assets.dbn.decode import iter_decoded_chunks
from chimera_assets.dbn.diagnostics import DbnDecodeError
from chimera_assets.settings import SettingsError, get_settings

logger = logging.getLogger(__name__)
MAX_ENTRIES = 50_000  # bounds the cache file (~5 MB); the oldest entries go first

Span = tuple[datetime, datetime]


def _cache_path() -> Path | None:
    try:
        return get_settings().home / "cache" / "record_spans.json"
    except SettingsError:
        return None


_loaded: dict[Path, dict[str, list[int] | None]] = {}  # the cache file as this process read it


def _entries(path: Path) -> dict[str, list[int] | None]:
    if path not in _loaded:
        _loaded[path] = _load(path)
    return _loaded[path]


def _load(path: Path) -> dict[str, list[int] | None]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _store(path: Path, key: str, value: list[int] | None) -> None:
    """Add one entry (read-modify-write, atomic rename: concurrent writers lose an entry at worst)."""
    try:
        data = _load(path)  # entries other processes added meanwhile
        data[key] = value
        _entries(path)[key] = value
        if len(data) > MAX_ENTRIES:
            data = dict(list(data.items())[-MAX_ENTRIES:])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)
    except OSError as exc:  # a read-only home only costs a decode next time
        logger.debug("record span cache %s not written: %s", path, exc)


def _ns(value: datetime) -> int:
    return int(value.timestamp() * 1_000_000) * 1000


def _utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


def _decode_span(path: Path) -> list[int] | None:
    first = last = None
    for chunk in iter_decoded_chunks(path):
        if "ts_event" in chunk.columns and chunk.height:
            lo, hi = chunk["ts_event"].min(), chunk["ts_event"].max()
            first = lo if first is None or (lo is not None and lo < first) else first
            last = hi if last is None or (hi is not None and hi > last) else last
    return None if first is None or last is None else [_ns(first), _ns(last)]


@functools.lru_cache(maxsize=16_384)
def _span(path_str: str, size: int, mtime_ns: int) -> tuple[int, int] | None:
    key = f"{path_str}|{size}|{mtime_ns}"
    cache = _cache_path()
    if cache is not None:
        data = _entries(cache)
        if key in data:
            v = data[key]
            return (int(v[0]), int(v[1])) if v else None
    try:
        value = _decode_span(Path(path_str))
    except DbnDecodeError:
        return None  # not cached: the file is reported where its header's dates are requested
    if cache is not None:
        _store(cache, key, value)
    return (value[0], value[1]) if value else None


def record_span(path: Path) -> Span | None:
    """(first, last) ``ts_event`` of the file's records in UTC, None if it has none or is unreadable."""
    try:
        st = path.stat()
    except OSError:
        return None
    got = _span(str(path), st.st_size, st.st_mtime_ns)
    return None if got is None else (_utc(got[0]), _utc(got[1]))
