"""Opening a DBN file (every failure a :class:`DbnDecodeError` naming it) and reading its header."""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from pathlib import Path

from chimera_assets.dbn.columns import UNDEF_TIMESTAMP
from chimera_assets.dbn.diagnostics import DbnDecodeError
from chimera_assets.dbn.zstd import ZSTD_MAGIC, check_zstd_complete


@dataclass(frozen=True)
class DbnInfo:
    """Header facts of one DBN file (cheap: only the metadata is read).

    ``start``/``end`` are the request window in UTC (``end`` is None when the file says UNDEF).
    ``record_count`` is filled only for uncompressed files of fixed-size records (file size
    arithmetic); for ``.zst`` it is None because counting needs a full decompression.
    """

    path: Path
    dataset: str | None
    schema: str | None
    dbn_version: int
    stype_in: str | None
    stype_out: str | None
    symbols: list[str]
    start: dt.datetime | None
    end: dt.datetime | None
    record_count: int | None = None
    limit: int | None = None
    compressed: bool = False
    mapping_intervals: int = 0


def ns_to_utc(ns: int | None) -> dt.datetime | None:
    """Nanoseconds since the epoch -> UTC datetime floored to microseconds; None or UNDEF -> None."""
    if ns is None or ns >= int(UNDEF_TIMESTAMP):
        return None
    return dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=dt.UTC) + dt.timedelta(
        microseconds=(ns % 1_000_000_000) // 1000
    )


def enum_str(v: object) -> str | None:
    """A databento enum (or plain value) as its string value (``Schema.OHLCV_1H`` -> ``"ohlcv-1h"``)."""
    if v is None:
        return None
    return str(getattr(v, "value", v))


def open_store(path: Path):
    """Open a DBNStore, translating every failure into DbnDecodeError naming the file.

    Returns ``(store, compressed)``; ``compressed`` is True for a zstd stream (checked complete first).
    """
    import databento as db  # local import: databento pulls pandas etc.; keep module import light
    from databento.common.error import BentoError, BentoWarning
    from databento_dbn import DBNError

    if not path.exists():
        raise DbnDecodeError(f"{path}: file does not exist")
    if not path.is_file():
        raise DbnDecodeError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise DbnDecodeError(f"{path}: empty file (0 bytes), not a DBN file")
    with open(path, "rb") as fh:
        head = fh.read(4)
    compressed = head == ZSTD_MAGIC
    if compressed:
        check_zstd_complete(path)
    elif head[:3] != b"DBN":
        raise DbnDecodeError(f"{path}: not a DBN file (no 'DBN' magic and not zstd-compressed)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", BentoWarning)
            store = db.DBNStore.from_file(path)
            _ = store.metadata
    except (BentoError, BentoWarning, DBNError, ValueError, OSError) as exc:
        raise DbnDecodeError(f"{path}: not a readable DBN file ({type(exc).__name__}: {exc})") from exc
    return store, compressed


def record_count_uncompressed(path: Path) -> int | None:
    """Record count of an uncompressed DBN file by size arithmetic (fixed-size records only)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return None
        meta_len = int.from_bytes(head[4:8], "little")
        fh.seek(8 + meta_len)
        first = fh.read(1)
    body = size - 8 - meta_len
    if body == 0:
        return 0
    if not first or first[0] == 0:
        return None
    rec_len = first[0] * 4  # DBN record header: length in 32-bit words
    return body // rec_len if body % rec_len == 0 else None


def read_dbn_metadata(path: str | Path) -> DbnInfo:
    """Read a DBN file's header into :class:`DbnInfo` (raises DbnDecodeError on unreadable files)."""
    path = Path(path)
    store, compressed = open_store(path)
    m = store.metadata
    limit = int(m.limit) if m.limit else None
    intervals = sum(len(v) for v in (m.mappings or {}).values())
    return DbnInfo(
        path=path,
        dataset=m.dataset,
        schema=enum_str(m.schema),
        dbn_version=int(m.version),
        stype_in=enum_str(m.stype_in),
        stype_out=enum_str(m.stype_out),
        symbols=[str(s) for s in (m.symbols or [])],
        start=ns_to_utc(m.start),
        end=ns_to_utc(m.end),
        record_count=None if compressed else record_count_uncompressed(path),
        limit=limit,
        compressed=compressed,
        mapping_intervals=intervals,
    )
