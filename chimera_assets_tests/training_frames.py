"""A synthetic multi-year training table (2021-2025) built through the real matrix/training code, and
the leak a test injects into a training frame."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

import polars as pl

from chimera_assets.training.targets import build_training_table
from chimera_assets_tests.test_matrix import INGESTED, _matrix, _sessions

# CME closures around the split boundaries (the rest of the calendar is Mon-Fri).
HOLIDAYS = (date(2021, 12, 24), date(2022, 12, 26), date(2023, 1, 2), date(2023, 12, 25), date(2024, 1, 1),
            date(2024, 12, 25), date(2025, 1, 1))
ROLL_EVERY = 63  # sessions per contract


def multi_year_parts(start: date = date(2021, 1, 4), end: date = date(2025, 12, 31), seed: int = 7):
    """(matrix, session_bars) of ZL: a seeded random walk of closes (1.5% daily vol) over the weekdays of
    [start, end] minus ``HOLIDAYS``, a new instrument every ``ROLL_EVERY`` sessions."""
    days = _sessions(start, end, HOLIDAYS)
    rng = random.Random(seed)
    closes, c = [], 50.0
    for _ in days:
        c *= math.exp(rng.gauss(0.0, 0.015))
        closes.append(round(c, 4))
    instruments = [1 + i // ROLL_EVERY for i in range(len(days))]
    return _matrix([(d, "ZL") for d in days], closes, instruments, regime=("baseline", 100))


def multi_year_training(**kwargs) -> pl.DataFrame:
    matrix, bars = multi_year_parts(**kwargs)
    return build_training_table(matrix, "ZL", bars, INGESTED)


def inject_next_close_leak(frame: pl.DataFrame, column: str = "distance_to_P") -> pl.DataFrame:
    """``column`` recomputed from the NEXT session's close: close[t+1] - P[t], the classic off-by-one
    bug of a pivot distance (P[t] from the previous session's high, low and close). Where P is
    missing or constant (the synthetic matrix), the pivot of the row's own bar is used."""
    pivot = (pl.col("high").shift(1) + pl.col("low").shift(1) + pl.col("close").shift(1)) / 3
    p = pl.when(pl.col("P").n_unique() > 2).then(pl.col("P")).otherwise(pivot)
    leaked = frame.sort("data_date").with_columns((pl.col("close").shift(-1) - p).alias(column))
    return leaked.select(frame.columns)


def sessions_per_split() -> dict[str, int]:
    """Sessions of the synthetic ZL matrix per split, counted here from the calendar alone: the weekdays
    of 2021-01-04 .. 2025-12-31 minus ``HOLIDAYS``; train < 2023 <= val < 2024 <= test."""
    out = {"train": 0, "val": 0, "test": 0}
    d = date(2021, 1, 4)
    while d <= date(2025, 12, 31):
        if d.weekday() < 5 and d not in HOLIDAYS:
            out["train" if d.year < 2023 else "val" if d.year == 2023 else "test"] += 1
        d += timedelta(days=1)
    return out
