"""A decompressed size / record count beyond the header's bound is refused (issue 14 case 8): a 98 KB
zstd bomb crafted from a real batch file expands to 1 GiB of records; decoding refuses it naming the
file with peak RSS well under 1.5 GB (measured in a subprocess), and no real file hits the bound."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import databento as db

from chimera_assets.dbn.bounds import count_dbn_records, record_bound
from chimera_assets_tests.conftest import SHARED_DATA, shared_data
from chimera_assets_tests.ingest.bomb import make_bomb

REPO = Path(__file__).resolve().parents[2]


def test_a_zstd_bomb_is_refused_naming_the_file_with_bounded_memory(tmp_path):
    src = next(shared_data("databento-batch").rglob("glbx-mdp3-20240301-20240331.ohlcv-1h.dbn.zst"))
    bomb = make_bomb(src, tmp_path / "bomb-20240301-20240331.ohlcv-1h.dbn.zst")
    size_kb = bomb.stat().st_size / 1024
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "chimera_assets_tests.ingest.bomb", "DECODE", str(bomb)],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    rss = float(re.search(r"peak_rss_mb=(\d+)", out.stdout).group(1))
    print(f"zstd bomb: {size_kb:.0f} KB -> 1 GiB of records; peak RSS while refusing it: {rss:.0f} MB")
    assert size_kb < 200
    assert "refused" in out.stdout and str(bomb) in out.stdout and "decompression bomb" in out.stdout, out.stdout
    assert rss < 1500


def test_no_real_file_reaches_its_bound():
    shared_data("databento-batch")
    files = sorted(SHARED_DATA.rglob("*.dbn*"))
    assert len(files) >= 24
    for p in files:
        bound = record_bound(db.DBNStore.from_file(p).metadata)
        n = count_dbn_records(p)  # raises if the bound is exceeded
        assert bound is None or n <= bound / 4, (p, n, bound)
