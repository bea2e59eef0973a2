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

Layout: :mod:`chimera_assets.demo.market` generates the synthetic market (root profiles, the
quarterly contract schedule, 1m bars and their 1h/1d aggregation); this module turns it into DBN
records, encodes DBN streams and writes the files. The public names of both stay importable here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import zstandard

from chimera_assets.demo.market import (
    _DAY_NS,
    _NS,
    PRICE_TWIN,
    PROFILES,
    RootProfile,
    _aggregate,
    _minute_bars,
    contract_schedule,
    demo_contracts,
    instrument_id_for,
    profile,
)

DATASET = "GLBX.MDP3"
PUBLISHER_ID = 1  # GLBX.MDP3 on Globex
SYNTHETIC_LABEL = "SYNTHETIC demo data (chimera_assets.demo.data), not market data"
SUPPORTED_DEMO_SCHEMAS = ("ohlcv-1m", "ohlcv-1h", "ohlcv-1d")
_RTYPE = {"ohlcv-1m": 33, "ohlcv-1h": 34, "ohlcv-1d": 35}

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
class _Mapping:
    """Duck-typed ``SymbolMapping`` for ``databento_dbn.Metadata`` (it expects attributes)."""

    raw_symbol: str
    intervals: list


@dataclass(frozen=True)
class _Interval:
    start_date: dt.date
    end_date: dt.date
    symbol: str


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
    "PRICE_TWIN",
    "PROFILES",
    "SYNTHETIC_LABEL",
    "RootProfile",
    "contract_schedule",
    "demo_contracts",
    "demo_dbn_bytes",
    "demo_records",
    "instrument_id_for",
    "profile",
    "write_demo_files",
]
