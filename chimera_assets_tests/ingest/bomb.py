"""A zstd bomb crafted from a real DBN header: a ~100 KB ``.dbn.zst`` that expands to 1 GiB of records.

``python -m chimera_assets_tests.ingest.bomb MAKE <src.dbn.zst> <dest.dbn.zst>`` writes one;
``python -m chimera_assets_tests.ingest.bomb DECODE <file>`` decodes it the way the raw assets do and
prints ``peak_rss_mb=<n>`` and the outcome (run in a subprocess so ``ru_maxrss`` is this decode's own).
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

GIB = 1 << 30


def make_bomb(src: Path, dest: Path, size: int = GIB) -> Path:
    """``src``'s header and first record, then that record repeated up to ``size`` bytes, zstd-compressed
    in a stream (never 1 GiB in memory)."""
    import zstandard

    raw = zstandard.ZstdDecompressor().stream_reader(src.open("rb")).read()
    meta_len = int.from_bytes(raw[4:8], "little")
    head = raw[: 8 + meta_len]
    rec_len = raw[8 + meta_len] * 4
    rec = raw[8 + meta_len: 8 + meta_len + rec_len]
    block = rec * ((1 << 20) // rec_len)
    cctx = zstandard.ZstdCompressor(level=19)
    with dest.open("wb") as fh, cctx.stream_writer(fh, closefd=False) as w:
        w.write(head)
        written = 0
        while written < size:
            w.write(block)
            written += len(block)
    return dest


def _decode(path: Path) -> None:
    from chimera_assets.dbn.diagnostics import DbnDecodeError
    from chimera_assets.ingest.coverage import file_coverage
    from chimera_assets.universe import get_universe

    try:
        file_coverage(path, get_universe())
        outcome = "accepted"
    except DbnDecodeError as exc:
        outcome = f"refused: {exc}"
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(f"peak_rss_mb={peak_mb:.0f}")
    print(outcome)


if __name__ == "__main__":
    if sys.argv[1] == "MAKE":
        make_bomb(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        _decode(Path(sys.argv[2]))
