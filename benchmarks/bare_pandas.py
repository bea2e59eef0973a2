"""A bare pandas computation of session bars and the main per-session features from the real
ohlcv-1h batch: the yardstick for "how much does the pipeline add" (bench_full_graph --bare).

No Dagster, no warehouse, no audit, no ledger: databento's own ``DBNStore.to_df`` decode, then
vectorised pandas. Per (trade date, root):

* session bars: trade date = America/Chicago wall clock + 7 h (Saturday/Sunday -> Monday); on a roll
  day only the bars of the contract that printed the session's last bar; open/high/low/close/volume,
  bar count;
* market features: session VWAP (typical price), realized vol of the 1h log returns in the session,
  rv20 (20-session std of daily log returns, annualised), its 252-session percentile;
* pivots from the previous session (P, R1, S1, R2, S2) and the distance of the close to P.

The golden-zone zig-zag, policy features and the matrix/training tables are not computed here (the
pipeline's number includes them): the ratio is therefore conservative for the pipeline.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd


def _trade_dates(ts_utc: pd.Series) -> pd.Series:
    local = ts_utc.dt.tz_convert("America/Chicago").dt.tz_localize(None) + pd.Timedelta(hours=7)
    day = local.dt.normalize()
    wd = day.dt.weekday
    return day + pd.to_timedelta(np.where(wd == 5, 2, np.where(wd == 6, 1, 0)), unit="D")


def load_bars(batch: Path, start: dt.date, end: dt.date, roots: list[str]) -> pd.DataFrame:
    import databento as db

    wanted = {f"{r}.v.0": r for r in roots}
    frames = []
    for f in sorted(batch.rglob("*.ohlcv-1h.dbn.zst")):
        df = db.DBNStore.from_file(f).to_df(map_symbols=True).reset_index()
        df = df[df["symbol"].isin(wanted.keys())]
        frames.append(df[["ts_event", "instrument_id", "symbol", "open", "high", "low", "close", "volume"]])
    bars = pd.concat(frames, ignore_index=True)
    bars["root"] = bars["symbol"].map(wanted)
    bars["trade_date"] = _trade_dates(bars["ts_event"])
    lo, hi = pd.Timestamp(start) - pd.Timedelta(days=400), pd.Timestamp(end)  # lookback for rv20/percentile
    return bars[(bars["trade_date"] >= lo) & (bars["trade_date"] <= hi)].sort_values(["root", "ts_event"])


def session_bars(bars: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    last_inst = bars.groupby(["root", "trade_date"])["instrument_id"].transform("last")
    kept = bars[bars["instrument_id"] == last_inst].copy()
    g = kept.groupby(["root", "trade_date"], sort=True)
    sessions = g.agg(open=("open", "first"), high=("high", "max"), low=("low", "min"), close=("close", "last"),
                     volume=("volume", "sum"), bar_count=("close", "size")).reset_index()
    return sessions, kept


def market_features(sessions: pd.DataFrame, kept: pd.DataFrame) -> pd.DataFrame:
    kept = kept.assign(typical=(kept["high"] + kept["low"] + kept["close"]) / 3)
    kept["pv"] = kept["typical"] * kept["volume"]
    kept["lr"] = np.log(kept["close"]).groupby([kept["root"], kept["trade_date"]]).diff()
    g = kept.groupby(["root", "trade_date"], sort=True)
    intraday = g.agg(pv=("pv", "sum"), vol=("volume", "sum"), rv=("lr", "std"), n=("lr", "count")).reset_index()
    intraday["vwap"] = intraday["pv"] / intraday["vol"].where(intraday["vol"] > 0)
    intraday["realized_vol_1h"] = intraday["rv"] * np.sqrt(intraday["n"].clip(lower=1))
    out = sessions.merge(intraday[["root", "trade_date", "vwap", "realized_vol_1h"]], on=["root", "trade_date"])
    out["ret"] = np.log(out["close"]).groupby(out["root"]).diff()
    out["rv20"] = out.groupby("root")["ret"].transform(lambda s: s.rolling(20, min_periods=10).std() * np.sqrt(252))
    out["vol_percentile"] = out.groupby("root")["rv20"].transform(lambda s: s.rolling(252, min_periods=20).rank(pct=True))
    return out


def pivots(sessions: pd.DataFrame) -> pd.DataFrame:
    prev = sessions.groupby("root")[["high", "low", "close"]].shift(1)
    p = (prev["high"] + prev["low"] + prev["close"]) / 3
    out = sessions[["root", "trade_date", "close"]].copy()
    out["pivot"], out["r1"], out["s1"] = p, 2 * p - prev["low"], 2 * p - prev["high"]
    out["r2"], out["s2"] = p + (prev["high"] - prev["low"]), p - (prev["high"] - prev["low"])
    out["dist_pivot"] = (out["close"] - p) / p
    return out


def compute_all(batch: Path, start: dt.date, end: dt.date, roots: list[str]) -> dict:
    """Everything above for [start, end] x roots; returns row counts (the frames are dropped)."""
    bars = load_bars(batch, start, end, roots)
    sessions, kept = session_bars(bars)
    feats = market_features(sessions, kept)
    piv = pivots(sessions)
    in_range = (sessions["trade_date"] >= pd.Timestamp(start)) & (sessions["trade_date"] <= pd.Timestamp(end))
    return {"bars": int(len(bars)), "sessions": int(in_range.sum()), "feature_rows": int(len(feats) + len(piv))}
