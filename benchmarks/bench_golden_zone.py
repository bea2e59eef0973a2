"""Throughput of the golden-zone zig-zag pass and of the whole bar-level computation.

Usage (from the repository root): python -m benchmarks.bench_golden_zone [--rows 1000000] [--symbols 10]
Synthetic random-walk 1h bars (a contract change every ~1,500 bars, i.e. about a quarter of hourly
bars); prints rows/s of the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from chimera_assets.features.golden_zone import REVERSAL_ATR_MULT, compute_golden_zone, zigzag_swings


def synthetic_bars(rows: int, symbols: int, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    per = rows // symbols
    idx = np.arange(per)
    t0 = datetime(2010, 1, 4, tzinfo=UTC)
    ts = pl.datetime_range(t0, t0 + timedelta(hours=per - 1), "1h", eager=True, time_unit="us")
    frames = []
    for s in range(symbols):
        close = 5000 + np.cumsum(rng.normal(0, 4, per))
        rng_hl = np.abs(rng.normal(0, 3, per)) + 0.25
        frames.append(
            pl.DataFrame(
                {
                    "ts_event": ts,
                    "trade_date": (ts + timedelta(hours=7)).dt.date(),
                    "symbol": f"S{s:02d}",
                    "instrument_id": (idx // 1500).astype(np.int64) + 1000 * s,
                    "open": close,
                    "high": close + rng_hl,
                    "low": close - rng_hl,
                    "close": close,
                    "volume": rng.integers(50, 5000, per),
                    "is_spread": False,
                }
            )
        )
    return pl.concat(frames)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--symbols", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    bars = synthetic_bars(args.rows, args.symbols)
    n = bars.height
    close = bars["close"].to_numpy()
    thr = np.full(n, REVERSAL_ATR_MULT * 6.0)  # a typical ATR of this walk
    seg = (bars["instrument_id"] != bars["instrument_id"].shift(1)).fill_null(True).to_numpy()

    best_zz = best_all = float("inf")
    for _ in range(args.repeat):
        t = time.perf_counter()
        zigzag_swings(close, thr, seg)
        best_zz = min(best_zz, time.perf_counter() - t)
        t = time.perf_counter()
        compute_golden_zone(bars, {b for b in bars["symbol"].unique()})
        best_all = min(best_all, time.perf_counter() - t)
    print(f"bars: {n:,} ({args.symbols} symbols)")
    print(f"zig-zag pass:          {n / best_zz:>12,.0f} rows/s  ({best_zz:.3f} s)")
    print(f"compute_golden_zone:   {n / best_all:>12,.0f} rows/s  ({best_all:.3f} s)")


if __name__ == "__main__":
    main()
