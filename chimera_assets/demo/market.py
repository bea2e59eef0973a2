"""SYNTHETIC market generation for :mod:`chimera_assets.demo.data`: root profiles, the quarterly
contract schedule and rolls, the UTC minute session grid, seeded 1m bars and their aggregation.

EVERYTHING HERE IS SYNTHETIC (seeded random walks, not market data); the ``demo/data.py`` module docstring
lists what is modelled and the units.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from chimera_assets.features.session_bars import ohlcv_aggregations

_NS = 1_000_000_000
_MIN_NS = 60 * _NS
_DAY_NS = 86_400 * _NS
_ANCHOR_EPOCH = dt.date(2000, 1, 3)
_CT = "America/Chicago"


@dataclass(frozen=True)
class RootProfile:
    """Synthetic-market parameters of one root (units: native quote unit per contract)."""

    price: float  # level around 2024
    tick: float  # minimum price increment
    daily_vol: float  # daily log-return standard deviation
    rth_rate: float  # mean contracts per regular-hours minute
    carry_per_quarter: float  # front-contract premium at the start of a quarter (fraction)


PROFILES: dict[str, RootProfile] = {
    "ZL": RootProfile(45.0, 0.01, 0.016, 45.0, 0.006),
    "ZS": RootProfile(1000.0, 0.25, 0.012, 90.0, 0.004),
    "ZM": RootProfile(300.0, 0.1, 0.014, 55.0, 0.004),
    "ZC": RootProfile(450.0, 0.25, 0.013, 120.0, 0.008),
    "ZW": RootProfile(550.0, 0.25, 0.017, 60.0, 0.010),
    "CL": RootProfile(75.0, 0.01, 0.022, 400.0, 0.003),
    "ES": RootProfile(5000.0, 0.25, 0.010, 1500.0, 0.012),
    "MES": RootProfile(5000.0, 0.25, 0.010, 2500.0, 0.012),
    "NQ": RootProfile(17500.0, 0.25, 0.013, 600.0, 0.012),
    "GC": RootProfile(2000.0, 0.1, 0.009, 300.0, 0.010),
}
_DEFAULT_PROFILE = RootProfile(100.0, 0.01, 0.015, 50.0, 0.005)
# Micro contracts follow their full-size twin's price path (same index), with their own volume.
PRICE_TWIN = {"MES": "ES", "MNQ": "NQ", "MCL": "CL", "MGC": "GC", "MYM": "YM", "M2K": "RTY"}
_QUARTER_MONTHS = {3: "H", 6: "M", 9: "U", 12: "Z"}


def profile(root: str) -> RootProfile:
    """Synthetic parameters of a root (a generic profile for roots without their own)."""
    return PROFILES.get(root, _DEFAULT_PROFILE)


def _root_code(root: str) -> int:
    return zlib.crc32(root.encode()) & 0x7FFFFFFF


def instrument_id_for(root: str, contract: str) -> int:
    """Stable synthetic instrument id of a contract code (e.g. ``ZLH4``): 6-7 digits like Globex."""
    return 100_000 + zlib.crc32(f"{root}|{contract}".encode()) % 8_900_000


def _third_friday(year: int, month: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(4 - first.weekday()) % 7 + 14)


def contract_schedule(root: str, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Front quarterly contract per UTC date in [start, end) (end exclusive).

    Columns: date, raw_symbol (e.g. ``ZLH4``), instrument_id, expiration (third Friday, date),
    roll_date (first UTC date on which the *next* contract is front).
    """
    rows = []
    for year in range(start.year - 1, end.year + 2):
        for month, code in _QUARTER_MONTHS.items():
            expiry = _third_friday(year, month)
            raw = f"{root}{code}{year % 10}"
            rows.append((expiry - dt.timedelta(days=8), raw, expiry))
    rows.sort()
    roll_dates = np.array([r[0] for r in rows], dtype="datetime64[D]")
    days = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D"))
    idx = np.searchsorted(roll_dates, days, side="right")  # first contract whose roll date > day
    return pl.DataFrame(
        {
            "date": days,
            "raw_symbol": [rows[i][1] for i in idx],
            "instrument_id": [instrument_id_for(root, rows[i][1]) for i in idx],
            "expiration": [rows[i][2] for i in idx],
            "roll_date": [rows[i][0] for i in idx],
        },
        schema={
            "date": pl.Date,
            "raw_symbol": pl.Utf8,
            "instrument_id": pl.Int64,
            "expiration": pl.Date,
            "roll_date": pl.Date,
        },
    )


def demo_contracts(roots: Sequence[str], start: dt.date, end: dt.date) -> pl.DataFrame:
    """Distinct synthetic contracts front in [start, end): root, raw_symbol, instrument_id, expiration,
    first_date, last_date (UTC dates). Handy as synthetic 'definitions' in tests."""
    frames = [
        contract_schedule(r, start, end)
        .group_by("raw_symbol", "instrument_id", "expiration")
        .agg(pl.col("date").min().alias("first_date"), pl.col("date").max().alias("last_date"))
        .with_columns(root=pl.lit(r))
        for r in roots
    ]
    return (
        pl.concat(frames)
        .select("root", "raw_symbol", "instrument_id", "expiration", "first_date", "last_date")
        .sort("root", "first_date")
    )


# --------------------------------------------------------------------------------------------------
# Minute-level generation
# --------------------------------------------------------------------------------------------------


def _session_grid(start: dt.date, end: dt.date) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """UTC minute grid of [start, end) with the open-session mask and a per-minute activity profile.

    Returns (ts_ns int64 [n_days*1440], open bool, activity float) where activity is the fraction
    of the regular-hours volume rate expected in that minute (0 when closed).
    """
    n_days = (end - start).days
    t0 = int(dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC).timestamp()) * _NS
    ts = t0 + np.arange(n_days * 1440, dtype=np.int64) * _MIN_NS
    # Chicago local fields per UTC *hour* (the offset changes on hour boundaries only), gathered
    # back onto minutes: cheaper than converting millions of minutes.
    hours = pl.Series("h", ts[::60] // 1000).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    local = hours.dt.convert_time_zone(_CT)
    wd = np.repeat(local.dt.weekday().to_numpy().astype(np.int8), 60)  # Mon=1 .. Sun=7
    minute_of_day = np.repeat(local.dt.hour().to_numpy().astype(np.int16) * 60, 60) + np.tile(
        np.arange(60, dtype=np.int16), n_days * 24
    )
    in_break = (minute_of_day >= 16 * 60) & (minute_of_day < 17 * 60)
    is_open = (
        ((wd >= 1) & (wd <= 4) & ~in_break)
        | ((wd == 5) & (minute_of_day < 16 * 60))
        | ((wd == 7) & (minute_of_day >= 17 * 60))
    )
    rth = (minute_of_day >= 8 * 60 + 30) & (minute_of_day < 15 * 60 + 15)
    europe = (minute_of_day >= 2 * 60) & (minute_of_day < 8 * 60 + 30)
    reopen = (minute_of_day >= 17 * 60) & (minute_of_day < 18 * 60)
    activity = np.where(rth, 1.0, np.where(europe, 0.12, np.where(reopen, 0.15, 0.04)))
    # The first and last half hour of the day session trade heaviest (U-shaped profile).
    activity = np.where(rth & ((minute_of_day < 9 * 60) | (minute_of_day >= 14 * 60 + 45)), 1.8, activity)
    return ts, is_open, np.where(is_open, activity, 0.0)


def _daily_anchors(root: str, seed: int, n_days_total: int) -> np.ndarray:
    """Log-price at 00:00 UTC of each day since _ANCHOR_EPOCH (a mean-reverting random walk).

    Mean reversion (half-life ~2 years) keeps 25 years of synthetic prices near the root's level.
    """
    p = profile(root)
    rng = np.random.default_rng([seed, _root_code(PRICE_TWIN.get(root, root)), 0])
    shocks = rng.standard_normal(n_days_total + 1) * p.daily_vol
    x = np.empty(n_days_total + 1)
    x[0] = 0.0
    kappa = np.log(2) / 500.0
    # An AR(1) recursion has no closed vectorised form with numpy alone; 9k days x few roots.
    for i in range(1, n_days_total + 1):
        x[i] = (1 - kappa) * x[i - 1] + shocks[i]
    return np.log(p.price) + x


def _minute_bars(root: str, start: dt.date, end: dt.date, seed: int) -> pl.DataFrame:
    """Synthetic 1m bars of one root's front contract over UTC dates [start, end)."""
    p = profile(root)
    ts, is_open, activity = _session_grid(start, end)
    n_days = (end - start).days
    first = (start - _ANCHOR_EPOCH).days
    if first < 0:
        raise ValueError(f"synthetic data starts at {_ANCHOR_EPOCH}, got start {start}")
    anchors = _daily_anchors(root, seed, first + n_days + 1)[first : first + n_days + 1]
    code = _root_code(PRICE_TWIN.get(root, root))  # price shocks shared with a micro's twin
    vol_code = _root_code(root)
    sigma_min = p.daily_vol / np.sqrt(1380.0)
    z = np.empty((n_days, 1440))
    u = np.empty((n_days, 1440))
    volume = np.empty((n_days, 1440), dtype=np.int64)
    act2 = activity.reshape(n_days, 1440)
    for d in range(n_days):
        # One generator per (seed, root, day): any request window regenerates identical days.
        rng = np.random.default_rng([seed, code, first + d + 1])
        z[d] = rng.standard_normal(1440)
        u[d] = rng.random(1440)
        # Poisson volume (own generator so a micro's volume differs from its twin's); bigger
        # moves trade more.
        vrng = np.random.default_rng([seed, vol_code, first + d + 1, 1])
        volume[d] = vrng.poisson(p.rth_rate * act2[d] * np.exp(0.35 * np.abs(z[d])))
    volume = volume.ravel()
    # Brownian bridge from anchors[d] to anchors[d+1] over the day's 1440 minute ends.
    walk = np.cumsum(z * sigma_min, axis=1)
    frac = np.arange(1, 1441) / 1440.0
    target = (anchors[1:] - anchors[:-1])[:, None]
    log_close = anchors[:-1, None] + walk - frac[None, :] * (walk[:, -1:] - target)
    log_close = log_close.ravel()
    log_open = np.concatenate([[anchors[0]], log_close[:-1]])

    sched = contract_schedule(root, start, end)
    days_to_expiry = (sched.get_column("expiration") - sched.get_column("date")).dt.total_days().to_numpy()
    carry = np.repeat(1.0 + p.carry_per_quarter * days_to_expiry / 91.0, 1440)
    iid = np.repeat(sched.get_column("instrument_id").to_numpy(), 1440)

    tick_fp = round(p.tick * _NS)

    def to_ticks(x: np.ndarray) -> np.ndarray:
        return np.maximum(np.rint(np.exp(x) * carry / p.tick).astype(np.int64), 1)

    o_t = to_ticks(log_open)
    c_t = to_ticks(log_close)
    u_flat = u.ravel()
    # Wicks: 0-3 ticks beyond the body, more often on busy minutes.
    wick_hi = np.floor(u_flat * 4 * np.sqrt(activity + 0.05)).astype(np.int64)
    wick_lo = np.floor((1 - u_flat) * 4 * np.sqrt(activity + 0.05)).astype(np.int64)
    h_t = np.maximum(o_t, c_t) + wick_hi
    l_t = np.maximum(np.minimum(o_t, c_t) - wick_lo, 1)
    # A few thin overnight hours trade nothing at all (gaps), deterministic per day.
    hour_u = u.reshape(n_days * 24, 60)[:, 0]
    hour_activity = activity.reshape(n_days * 24, 60).mean(axis=1)
    dead_hour = np.repeat((hour_u < 0.03) & (hour_activity > 0) & (hour_activity < 0.1), 60)
    keep = is_open & (volume > 0) & ~dead_hour
    return pl.DataFrame(
        {
            "ts_event": ts[keep],
            "instrument_id": iid[keep],
            "open": o_t[keep] * tick_fp,
            "high": h_t[keep] * tick_fp,
            "low": l_t[keep] * tick_fp,
            "close": c_t[keep] * tick_fp,
            "volume": volume[keep].astype(np.int64),
        }
    )


def _aggregate(bars: pl.DataFrame, every_ns: int) -> pl.DataFrame:
    """Aggregate 1m bars to a coarser UTC grid (bar open time label), per instrument."""
    return (
        bars.with_columns(bucket=pl.col("ts_event") - pl.col("ts_event") % every_ns)
        .group_by("bucket", "instrument_id", maintain_order=True)
        .agg(*ohlcv_aggregations())
        .rename({"bucket": "ts_event"})
    )
