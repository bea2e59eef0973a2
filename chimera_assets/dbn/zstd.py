"""Detecting a truncated or corrupt zstd stream from its frame and block headers (no decompression)."""

from __future__ import annotations

from pathlib import Path

from chimera_assets.dbn.diagnostics import DbnDecodeError

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _read_exactly(fh, n: int, path: Path, where: str) -> bytes:
    """The next ``n`` bytes of ``fh``; fewer means the stream was cut inside ``where``."""
    data = fh.read(n)
    if len(data) < n:
        raise DbnDecodeError(f"{path}: truncated zstd stream ({where})")
    return data


def check_zstd_complete(path: Path) -> None:
    """Walk the zstd frame/block headers (no decompression) and fail on a truncated stream.

    Why: ``databento``'s zstd reader stops silently at the end of a cut compressed stream, so a
    truncated ``.zst`` would decode as a shorter, apparently valid file. Walking block headers is
    O(number of 128 KiB blocks) and reads only a few bytes per block.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        pos = 0
        while pos < size:
            fh.seek(pos)
            magic = _read_exactly(fh, 4, path, "partial frame magic")
            magic_int = int.from_bytes(magic, "little")
            if 0x184D2A50 <= magic_int <= 0x184D2A5F:  # skippable frame
                skip = _read_exactly(fh, 4, path, "skippable frame")
                pos += 8 + int.from_bytes(skip, "little")
                if pos > size:
                    raise DbnDecodeError(f"{path}: truncated zstd stream (skippable frame)")
                continue
            if magic != ZSTD_MAGIC:
                raise DbnDecodeError(f"{path}: corrupt zstd stream (bad frame magic at byte {pos})")
            fhd = _read_exactly(fh, 1, path, "frame header")[0]
            fcs_flag = fhd >> 6
            single_segment = (fhd >> 5) & 1
            checksum = (fhd >> 2) & 1
            dict_flag = fhd & 3
            header_len = 1 + (0 if single_segment else 1) + (0, 1, 2, 4)[dict_flag]
            header_len += (1 if single_segment else 0, 2, 4, 8)[fcs_flag]
            pos += 4 + header_len
            while True:
                fh.seek(pos)
                bh = _read_exactly(fh, 3, path, "file ends inside a frame")
                b = int.from_bytes(bh, "little")
                last, btype, bsize = b & 1, (b >> 1) & 3, b >> 3
                if btype == 3:
                    raise DbnDecodeError(f"{path}: corrupt zstd stream (reserved block type)")
                pos += 3 + (1 if btype == 1 else bsize)
                if last:
                    break
            pos += 4 if checksum else 0
            if pos > size:
                raise DbnDecodeError(f"{path}: truncated zstd stream (file ends inside a frame)")
