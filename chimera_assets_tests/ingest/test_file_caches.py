"""Per-file caches of the landing layer: a header, a file's coverage and its sha256 are computed once per
(path, size, mtime) in bounded ``functools.lru_cache``s, never kept in module dicts a test must clear."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
from pathlib import Path

from chimera_assets.demo.data import write_demo_files
from chimera_assets.ingest import coverage, landing, ledger, prune
from chimera_assets.universe import load_universe

D0, D1 = dt.date(2024, 1, 2), dt.date(2024, 1, 4)


def _demo(tmp_path: Path, name: str, schema: str, roots=("ZL",), end=D1) -> Path:
    (src,) = write_demo_files(tmp_path / name, list(roots), D0, end, schema=schema, files="monthly")
    return src


def _replace(dest: Path, src: Path, mtime_ns: int) -> None:
    """Put ``src``'s bytes at ``dest`` with an explicit mtime (no reliance on the clock's resolution)."""
    dest.write_bytes(src.read_bytes())
    os.utime(dest, ns=(mtime_ns, mtime_ns))


def test_no_module_level_mutable_cache_and_every_cache_is_bounded():
    for mod in (landing, coverage, prune, ledger):
        mutable = [n for n, v in vars(mod).items() if isinstance(v, dict | list | set) and not n.isupper() and not n.startswith("__")]
        assert mutable == [], f"{mod.__name__}: module-level mutable state {mutable}"
    cached = [v for mod in (landing, coverage, prune) for v in vars(mod).values() if hasattr(v, "cache_info")]
    assert len(cached) == 3
    assert all(f.cache_info().maxsize for f in cached), "every cache has a bound"


def test_a_header_is_read_once_and_again_when_the_file_changes(tmp_path):
    p = tmp_path / "landing" / "f.dbn.zst"
    p.parent.mkdir()
    _replace(p, _demo(tmp_path, "a", "ohlcv-1h"), 1_700_000_000_000_000_000)
    first = landing.header(p)
    assert first.schema == "ohlcv-1h" and first.path == p
    assert landing.header(p) is first  # cached: the same object, not a second read
    _replace(p, _demo(tmp_path, "b", "ohlcv-1d"), 1_700_000_000_000_000_001)
    assert landing.header(p).schema == "ohlcv-1d"


def test_coverage_is_decoded_again_when_the_file_or_the_universes_series_change(tmp_path):
    universe = load_universe()
    p = tmp_path / "landing" / "f.dbn.zst"
    p.parent.mkdir()
    _replace(p, _demo(tmp_path, "a", "ohlcv-1h"), 1_700_000_000_000_000_000)
    cov = coverage.file_coverage(p, universe)
    assert {r for _, r in cov.partitions} == {"ZL"} and cov.mtime_ns == 1_700_000_000_000_000_000
    assert coverage.file_coverage(p, universe) is cov
    # the same roots, but ZL's series no longer include the file's ZL.v.0: no partition is covered
    other = dataclasses.replace(
        universe, roots={**universe.roots, "ZL": dataclasses.replace(universe.roots["ZL"], series=("ZL.c.0",))}
    )
    assert coverage.file_coverage(p, other).partitions == frozenset()
    _replace(p, _demo(tmp_path, "b", "ohlcv-1h", roots=("ZL", "MES"), end=D1 + dt.timedelta(days=1)),
             1_700_000_000_000_000_001)
    again = coverage.file_coverage(p, universe)
    assert {r for _, r in again.partitions} == {"ZL", "MES"} and again.sha256 == ledger.file_sha256(p)


def test_present_sha256s_hashes_a_rewritten_file_again(tmp_path):
    d = tmp_path / "landing"
    d.mkdir()
    p = d / "f.dbn.zst"
    _replace(p, _demo(tmp_path, "a", "ohlcv-1h"), 1_700_000_000_000_000_000)
    assert prune.present_sha256s([d]) == {hashlib.sha256(p.read_bytes()).hexdigest()}
    _replace(p, _demo(tmp_path, "b", "ohlcv-1d"), 1_700_000_000_000_000_001)
    assert prune.present_sha256s([d]) == {hashlib.sha256(p.read_bytes()).hexdigest()}


def test_file_sha256_is_the_sha256_of_the_whole_file(tmp_path):
    p = tmp_path / "big.bin"
    body = os.urandom(3 << 20) + b"tail"  # several read buffers, not a multiple of any of them
    p.write_bytes(body)
    assert ledger.file_sha256(p) == hashlib.sha256(body).hexdigest()
    (tmp_path / "empty.bin").write_bytes(b"")
    assert ledger.file_sha256(tmp_path / "empty.bin") == hashlib.sha256(b"").hexdigest()
