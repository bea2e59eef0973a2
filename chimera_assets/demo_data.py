"""SYNTHETIC Databento-style DBN data for demos, tests, benchmarks and the fake gateway.

EVERYTHING THIS MODULE WRITES IS SYNTHETIC: seeded random walks, not market data. Files are named
``demo-glbx-<schema>-<YYYYMMDD first day>-<YYYYMMDD last day>.dbn.zst`` so they cannot be mistaken
for Databento downloads (``glbx-mdp3-...``), although the DBN metadata says dataset ``GLBX.MDP3``
(so the real decoder and loaders accept them unchanged).

What is modelled (all vectorised with numpy; loops run over days/roots/contracts, never records):

* Session: CME Globex Sunday 17:00 CT to Friday 16:00 CT with the daily 16:00-17:00 CT break, laid
  on the UTC minute grid, so bar times in UTC shift by one hour with US daylight saving (like the
  real batch). No exchange holidays are modelled.
* Prices: one log-price random walk per root, anchored on a daily grid from 2000-01-03 so the same
  seed gives the same prices for any request window (monthly files, a fake-gateway range, a
  benchmark: they all agree). Intraday paths are Brownian bridges between the daily anchors.
  The front contract trades at a carry premium that decays to expiry, so each roll shows a small
  price jump, like a non-adjusted ``.v.0`` series. Prices are rounded to the root's tick.
* Bars: ``open`` is the previous minute's close, high >= max(open, close), low <= min(open, close).
  1h/1d bars aggregate the 1m bars (first open, max high, min low, last close, summed volume), so the
  three schemas agree with each other.
* Volume: Poisson with a root-specific rate and an intraday profile (busy 08:30-15:15 CT, thin
  overnight); a minute with zero volume has no bar (CME bars exist only when something traded),
  and a few thin overnight hours are removed entirely (gaps).
* Rolls: quarterly contracts (H, M, U, Z) rolled eight days before the contract month's third
  Friday, at 00:00 UTC like Databento's ``.v.0``; each contract has a stable instrument id (crc32
  of root+code), and the metadata ``mappings`` map ``ROOT.v.0`` over UTC-date intervals (end
  exclusive) to the instrument id as a string. stype_in ``continuous``, stype_out ``instrument_id``.

Units: prices in the root's native quote unit (ZL cents/lb, ZS/ZC cents/bu, ZM USD/short ton, CL
USD/bbl, ES/MES index points) encoded as int64 x 1e-9; timestamps ns since epoch, UTC; volume in
contracts.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import zstandard

DATASET = "GLBX.MDP3"
PUBLISHER_ID = 1  # GLBX.MDP3 on Globex
SYNTHETIC_LABEL = "SYNTHETIC demo data (chimera_assets.demo_data), not market data"
SUPPORTED_DEMO_SCHEMAS = ("ohlcv-1m", "ohlcv-1h", "ohlcv-1d")
_RTYPE = {"ohlcv-1m": 33, "ohlcv-1h": 34, "ohlcv-1d": 35}
_NS = 1_000_000_000
_MIN_NS = 60 * _NS
_DAY_NS = 86_400 * _NS
_ANCHOR_EPOCH = dt.date(2000, 1, 3)
_CT = "America/Chicago"

# DBN OHLCV record layout (identical in DBN v1, v2, v3): 56 bytes, length field in 32-bit words.
OHLCV_DTYPE = np.dtype(
    [
        ("length", "u1"),
        ("rtype", "u1"),
        ("publisher_id", "<u2"),
        ("instrument_id", "<u4"),
        ("ts_event", "<u8"),
        ("open", "<i8"),
        ("high", "<i8"),
        ("low", "<i8"),
        ("close", "<i8"),
        ("volume", "<u8"),
    ]
)


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


@dataclass(frozen=True)
class _Mapping:
    """Duck-typed ``SymbolMapping`` for ``databento_dbn.Metadata`` (it expects attributes)."""

    raw_symbol: str
    intervals: list


@dataclass(frozen=True)
class _Interval:
    start_date: dt.date
    end_date: dt.date
    symbol: str


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
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
        )
        .rename({"bucket": "ts_event"})
    )


_BARE_ROOT = re.compile(r"^[A-Z0-9]{1,6}$")
_CONTRACT = re.compile(r"^[A-Z0-9]{1,6}?[FGHJKMNQUVXZ]\d{1,2}$")


def _normalise_symbols(symbols: Iterable[str]) -> list[tuple[str, str]]:
    """Requested symbols -> [(series, root)]: a bare root 'ZL' means 'ZL.v.0'; only continuous."""
    out = []
    for s in symbols:
        s = s.strip()
        parts = s.split(".")
        if len(parts) == 3 and parts[1] in ("v", "c", "n") and parts[2] == "0" and _BARE_ROOT.match(parts[0]):
            out.append((s, parts[0]))
        elif len(parts) == 1 and _BARE_ROOT.match(s) and not _CONTRACT.match(s):
            out.append((f"{s}.v.0", s))
        else:
            raise ValueError(
                f"synthetic demo data supports continuous front symbols (ROOT.v.0) or bare roots only, got {s!r}"
            )
    return out


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _to_ns(x: dt.date | dt.datetime) -> int:
    """A date (00:00 UTC) or datetime (naive = UTC) as integer ns since the epoch (exact)."""
    if not isinstance(x, dt.datetime):
        x = dt.datetime(x.year, x.month, x.day, tzinfo=dt.UTC)
    elif x.tzinfo is None:
        x = x.replace(tzinfo=dt.UTC)
    return (x - _EPOCH) // dt.timedelta(microseconds=1) * 1000


def demo_records(
    symbols: Sequence[str],
    start: dt.date | dt.datetime,
    end: dt.date | dt.datetime,
    schema: str = "ohlcv-1h",
    seed: int = 7,
) -> tuple[np.ndarray, dict[str, pl.DataFrame]]:
    """SYNTHETIC OHLCV records for [start, end) (UTC; dates mean 00:00 UTC; end exclusive).

    Returns (records with dtype ``OHLCV_DTYPE`` sorted by ts_event then instrument_id,
    {series: mapping frame with columns start_date, end_date (exclusive), instrument_id}).
    Bars are kept when their open time lies in [start, end).
    """
    if schema not in SUPPORTED_DEMO_SCHEMAS:
        raise ValueError(f"unsupported demo schema {schema!r}; use one of {SUPPORTED_DEMO_SCHEMAS}")
    start_ns, end_ns = _to_ns(start), _to_ns(end)
    if end_ns <= start_ns:
        raise ValueError(f"empty window: start {start} >= end {end}")
    d0 = dt.datetime.fromtimestamp(start_ns // _NS, tz=dt.UTC).date()
    d1 = dt.datetime.fromtimestamp((end_ns - 1) // _NS, tz=dt.UTC).date() + dt.timedelta(days=1)
    frames, mappings = [], {}
    for series, root in _normalise_symbols(symbols):
        bars = _minute_bars(root, d0, d1, seed)
        if schema == "ohlcv-1h":
            bars = _aggregate(bars, 3600 * _NS)
        elif schema == "ohlcv-1d":
            bars = _aggregate(bars, _DAY_NS)
        frames.append(bars.filter((pl.col("ts_event") >= start_ns) & (pl.col("ts_event") < end_ns)))
        sched = contract_schedule(root, d0, d1)
        mappings[series] = (
            sched.with_columns(
                run=(pl.col("instrument_id") != pl.col("instrument_id").shift()).fill_null(True).cum_sum()
            )
            .group_by("run", maintain_order=True)
            .agg(
                pl.col("date").min().alias("start_date"),
                (pl.col("date").max() + pl.duration(days=1)).alias("end_date"),
                pl.col("instrument_id").first(),
            )
            .drop("run")
        )
    allbars = pl.concat(frames).sort("ts_event", "instrument_id") if frames else None
    recs = np.zeros(0 if allbars is None else allbars.height, dtype=OHLCV_DTYPE)
    if allbars is not None and allbars.height:
        recs["length"] = OHLCV_DTYPE.itemsize // 4
        recs["rtype"] = _RTYPE[schema]
        recs["publisher_id"] = PUBLISHER_ID
        for name in ("instrument_id", "ts_event", "open", "high", "low", "close", "volume"):
            recs[name] = allbars.get_column(name).to_numpy()
    return recs, mappings


def _encode(
    recs: np.ndarray,
    mappings: dict[str, pl.DataFrame],
    schema: str,
    start_ns: int,
    end_ns: int,
    version: int,
    compress: bool,
) -> bytes:
    import databento_dbn as dbn

    meta = dbn.Metadata(
        dataset=DATASET,
        start=start_ns,
        end=end_ns,
        stype_in=dbn.SType.CONTINUOUS,
        stype_out=dbn.SType.INSTRUMENT_ID,
        schema=dbn.Schema.from_str(schema),
        symbols=list(mappings),
        mappings=[
            _Mapping(
                series,
                [
                    _Interval(r["start_date"], r["end_date"], str(r["instrument_id"]))
                    for r in frame.iter_rows(named=True)  # one row per roll interval, not per record
                ],
            )
            for series, frame in mappings.items()
        ],
        version=version,
    )
    raw = meta.encode() + recs.tobytes()
    if not compress:
        return raw
    return zstandard.ZstdCompressor(level=3, threads=-1).compress(raw)


def demo_dbn_bytes(
    symbols: Sequence[str],
    start: dt.date | dt.datetime,
    end: dt.date | dt.datetime,
    schema: str = "ohlcv-1h",
    seed: int = 7,
    *,
    version: int = 3,
    compress: bool = True,
) -> bytes:
    """One SYNTHETIC DBN stream (zstd-compressed by default) as the Historical API would serve it.

    ``symbols``: ``ROOT.v.0`` series (or bare roots, meaning ``ROOT.v.0``); [start, end) in UTC,
    end exclusive; ``version``: DBN version 1, 2 or 3 (the OHLCV record layout is the same).
    """
    recs, mappings = demo_records(symbols, start, end, schema, seed)
    return _encode(recs, mappings, schema, _to_ns(start), _to_ns(end), version, compress)


def _month_windows(start: dt.date, end: dt.date, files: str) -> list[tuple[dt.date, dt.date]]:
    if files == "daily":
        return [
            (start + dt.timedelta(days=i), start + dt.timedelta(days=i + 1))
            for i in range((end - start).days)
        ]
    if files != "monthly":
        raise ValueError(f"files must be 'monthly' or 'daily', got {files!r}")
    out, cur = [], start
    while cur < end:
        nxt = dt.date(cur.year + (cur.month == 12), cur.month % 12 + 1, 1)
        out.append((cur, min(nxt, end)))
        cur = nxt
    return out


def write_demo_files(
    out_dir: str | Path,
    roots: Sequence[str],
    start: dt.date,
    end: dt.date,
    schema: str = "ohlcv-1h",
    seed: int = 7,
    files: str = "monthly",
    *,
    version: int = 3,
) -> list[Path]:
    """Write SYNTHETIC GLBX.MDP3 DBN files (zstd) for ``roots`` over UTC dates [start, end).

    ``end`` is exclusive (as Databento's request end). One file per calendar month (``files=
    "monthly"``, like a portal batch) or per UTC day (``"daily"``), named
    ``demo-glbx-<schema>-<first day YYYYMMDD>-<last day YYYYMMDD>.dbn.zst``; each holds all roots
    as ``ROOT.v.0`` series with their own mappings. Existing files are overwritten. Returns the paths
    in date order. Prices are identical whichever way the range is cut (see module docstring).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if end <= start:
        raise ValueError(f"empty window: start {start} >= end {end}")
    paths = []
    for w0, w1 in _month_windows(start, end, files):
        last = w1 - dt.timedelta(days=1)
        path = out / f"demo-glbx-{schema}-{w0:%Y%m%d}-{last:%Y%m%d}.dbn.zst"
        data = demo_dbn_bytes(list(roots), w0, w1, schema, seed, version=version)
        tmp = path.parent / f".{path.name}.partial"
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: a watcher never sees a half-written file
        paths.append(path)
    return paths


__all__ = [
    "OHLCV_DTYPE",
    "PROFILES",
    "SYNTHETIC_LABEL",
    "contract_schedule",
    "demo_contracts",
    "demo_dbn_bytes",
    "demo_records",
    "instrument_id_for",
    "write_demo_files",
]
