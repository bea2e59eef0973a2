"""Benchmark: DBN -> polars decode speed on a SYNTHETIC ohlcv-1m file of >= 2 million records.

Run: ``python benchmarks/bench_decode.py [--roots ZL,MES,ES,ZS,ZM,ZC,CL] [--start 2024-01-01]
[--end 2025-01-01] [--repeat 3] [--real]``. Generation time is reported separately; the decode
figure covers only ``decode_dbn_file`` (zstd + DBN records + symbology join + trade dates -> polars).
``--real`` also times the real 24-file portal batch when ../shared/data is present.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from chimera_assets.dbn.decode import decode_dbn_file
from chimera_assets.dbn.diagnostics import DecodeStats
from chimera_assets.demo.data import demo_dbn_bytes

BATCH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "databento-batch"


def _best(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--roots", default="ZL,MES,ES,ZS,ZM,ZC,CL")
    ap.add_argument("--start", default="2024-01-01")
    ap.add_argument("--end", default="2025-01-01", help="exclusive")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--real", action="store_true", help="also time the real portal batch")
    args = ap.parse_args()
    roots = args.roots.split(",")
    start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)

    import databento  # noqa: F401 - import cost is not decode cost

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        # One file for the whole window (the decoder's worst case: a single big file).
        big = Path(tmp) / f"demo-glbx-ohlcv-1m-{start:%Y%m%d}-{(end - dt.timedelta(days=1)):%Y%m%d}.dbn.zst"
        big.write_bytes(demo_dbn_bytes(roots, start, end, "ohlcv-1m"))
        gen_s = time.perf_counter() - t0
        size_mb = big.stat().st_size / 1e6

        stats = DecodeStats()
        decode_dbn_file(big, stats=stats)  # warm-up (page cache, lazy imports)
        n = stats.records_read
        best, df = _best(lambda: decode_dbn_file(big), args.repeat)
        print(f"SYNTHETIC ohlcv-1m: {len(roots)} roots {start}..{end}: {n:,} records, {size_mb:.1f} MB zstd")
        print(f"  generation + encode + zstd: {gen_s:.2f}s")
        print(
            f"  decode-only: best of {args.repeat}: {best:.3f}s -> {n / best:,.0f} rows/s ({df.height:,} rows out)"
        )
        if n < 2_000_000:
            print("  WARNING: fewer than 2M records; widen --start/--end or add --roots")

    if args.real:
        files = sorted(BATCH.glob("*/*.dbn.zst"))
        if not files:
            print(f"real batch absent under {BATCH}; skipped")
            return

        def run() -> int:
            return sum(decode_dbn_file(f).height for f in files)

        run()
        best, rows = _best(run, args.repeat)
        print(
            f"REAL portal batch: {len(files)} files, {rows:,} records: {best:.3f}s -> {rows / best:,.0f} rows/s"
        )


if __name__ == "__main__":
    main()
