"""Per-root training tables (SPEC 6.7): the matrix flattened, plus roll-adjusted forward targets, roll
flags, split, per-horizon purge flags and the sample weight. Pure polars, no Dagster.

Roll adjustment (SPEC 6.7 as changed on 2026-12-08): ``close[t+h]/close[t] - 1`` on the raw series mixes
two contracts when the front month changes inside (t, t+h]. At each instrument switch (session s trades
another contract than s-1) a pair of prices of the old and the new contract taken at the switch
(``switch_prices``) gives the gap; the earlier close is moved onto the later contract before the return
is taken, as a back-adjusted continuous series does:

- ``ratio`` (default): target = close[t+h] / (close[t] * prod r_s) - 1, r_s = new_price / old_price of
  each switch s in (t, t+h] (Lean's ``BackwardsRatio``; the anchor does not matter for a ratio);
- ``difference``: target = close[t+h] / (close[t] + sum d_s) - 1, d_s = new_price - old_price
  (Lean's ``BackwardsPanamaCanal``, anchored at t+h: the window's own contract);
- ``none``: the raw value.

``target_<h>_raw`` always keeps the raw value. An adjusted target is NULL where a switch in its window has
no usable price pair (or an unknown instrument), so a contract gap never enters a target silently.
See docs/matrix.md section 3.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from chimera_assets.features.matrix import (
    _KEY,
    MATRIX_STRUCTS,
    _require,
    _require_unique,
    _to_utc,
    split_expr,
)
from chimera_assets.schemas import DAILY_ML_MATRIX, TARGET_HORIZONS, flat_field_name, training_table
from chimera_assets.settings import ROLL_ADJUSTMENTS

__all__ = ["ADJUSTMENTS", "build_training_table", "session_switch_prices", "switch_prices_from_bars", "switches_of"]

ADJUSTMENTS = ROLL_ADJUSTMENTS  # ratio (default), difference, none: CHIMERA_ROLL_ADJUSTMENT
# The columns of a switch-price frame: one row per session whose instrument differs from the previous one.
SWITCH_COLUMNS = {"data_date": pl.Date, "old_price": pl.Float64, "new_price": pl.Float64, "price_source": pl.Utf8}


def _flatten(matrix: pl.DataFrame) -> pl.DataFrame:
    """Matrix STRUCTs -> one column per member, named ``flat_field_name(struct, member)``."""
    _require(matrix, "matrix", DAILY_ML_MATRIX.column_names)
    for s in MATRIX_STRUCTS:
        dtype = matrix.schema[s.name]
        have = {f.name for f in dtype.fields} if isinstance(dtype, pl.Struct) else set()
        missing = [f.name for f in s.fields if f.name not in have]
        if missing:
            raise ValueError(f"matrix column {s.name} lacks STRUCT fields {missing}")
    return matrix.select(
        "symbol",
        "data_date",
        "timestamp",
        *[
            pl.col(s.name).struct.field(f.name).cast(f.polars_dtype()).alias(flat_field_name(s.name, f.name))
            for s in MATRIX_STRUCTS
            for f in s.fields
        ],
        "ingestion_ts",
    )


def _attach_instrument(flat: pl.DataFrame, session_bars: pl.DataFrame, root: str) -> pl.DataFrame:
    """``flat`` (one root, sorted by data_date) plus ``_inst`` = session_bars.instrument_id of the same
    (trade_date, symbol). Every matrix session must have a session bar (the matrix is built from them)."""
    _require(session_bars, "session_bars", ["trade_date", "symbol", "instrument_id"])
    inst = session_bars.select(
        pl.col("trade_date").cast(pl.Date).alias("data_date"),
        pl.col("symbol").cast(pl.Utf8),
        pl.col("instrument_id").cast(pl.Int64).alias("_inst"),
    ).filter(pl.col("symbol") == root)
    _require_unique(inst, "session_bars", _KEY)
    missing = flat.join(inst, on=_KEY, how="anti")
    if missing.height:
        raise ValueError(
            f"session_bars lacks {missing.height} {root} sessions of the matrix, "
            f"e.g. {missing.get_column('data_date').head(5).to_list()}"
        )
    return flat.join(inst, on=_KEY, how="left", maintain_order="left")


def session_switch_prices(flat: pl.DataFrame, change: pl.Expr) -> pl.DataFrame:
    """The fallback price pair at each switch, from the sessions alone: old = close of session s-1 (the
    old contract's last price), new = open of session s (the new contract's first price: session bars
    keep only the bars of the contract that traded the session's last bar). The two prices are not
    simultaneous: the pair spans the break between the sessions, so the adjustment also removes that
    overnight move from the window (zero on average; ``switch_prices_from_bars`` narrows it)."""
    return flat.select(
        "data_date",
        pl.col("close").shift(1).alias("old_price"),
        pl.col("open").alias("new_price"),
        pl.lit("session").alias("price_source"),
        change.alias("_change"),
    ).filter(pl.col("_change").fill_null(False)).drop("_change")


def switches_of(matrix: pl.DataFrame, session_bars: pl.DataFrame, root: str) -> pl.DataFrame:
    """``root``'s instrument switches over its matrix sessions: ``data_date`` (session s), ``prev_date``
    (session s-1), ``old_inst``, ``new_inst``; a switch is s trading another instrument than s-1 (both
    known), as ``build_training_table`` counts them."""
    root = root.upper()
    days = matrix.filter(pl.col("symbol") == root).select(pl.col("data_date").cast(pl.Date)).unique()
    inst = session_bars.filter(pl.col("symbol") == root).select(
        pl.col("trade_date").cast(pl.Date).alias("data_date"), pl.col("instrument_id").cast(pl.Int64).alias("new_inst"))
    s = days.join(inst, on="data_date", how="left").sort("data_date").with_columns(
        pl.col("data_date").shift(1).alias("prev_date"), pl.col("new_inst").shift(1).alias("old_inst"))
    return s.filter(pl.col("old_inst") != pl.col("new_inst")).select("data_date", "prev_date", "old_inst", "new_inst")


def switch_prices_from_bars(switches: pl.DataFrame, bars: pl.DataFrame, source: str) -> pl.DataFrame:
    """Price pairs at the switches from raw intraday bars of both contracts (``OHLCV_1H``/``1M`` rows of
    the root, trade dates s-1 and s of each switch), one row per switch the bars can price.

    ``switches``: ``data_date`` (session s), ``prev_date`` (session s-1), ``old_inst``, ``new_inst``.
    Preferred: the last bar time at which both contracts have a bar (same-time closes, e.g. a parent
    ``.FUT`` series). Else, as a ``.v.0`` series gives them: ``new_price`` = open of the new contract's
    first bar of session s, ``old_price`` = close of the old contract's last bar before it (trade date
    s-1 or s); for ES/MES/CL the ``.v.0`` switch at 00:00 UTC lies inside session s, so these are
    adjacent hours. Spread bars and non-positive prices are ignored."""
    need = ["ts_event", "trade_date", "instrument_id", "open", "close"]
    _require(bars, f"{source} bars", need)
    b = bars.filter(~pl.col("is_spread").fill_null(False) if "is_spread" in bars.columns else pl.lit(True))
    b = b.select(pl.col(need[0]), pl.col("trade_date").cast(pl.Date), pl.col("instrument_id").cast(pl.Int64),
                 pl.col("open").cast(pl.Float64), pl.col("close").cast(pl.Float64))
    b = b.filter((pl.col("open") > 0) & (pl.col("close") > 0))
    sw = switches.select("data_date", "prev_date", "old_inst", "new_inst")
    new = (sw.join(b, left_on=["new_inst", "data_date"], right_on=["instrument_id", "trade_date"])
           .sort("ts_event").group_by("data_date").agg(pl.col("ts_event").first().alias("_first_new"),
                                                       pl.col("open").first().alias("new_open")))
    old = sw.join(b, left_on="old_inst", right_on="instrument_id").filter(
        pl.col("trade_date").is_between(pl.col("prev_date"), pl.col("data_date")))
    adjacent = (old.join(new, on="data_date").filter(pl.col("ts_event") < pl.col("_first_new"))
                .sort("ts_event").group_by("data_date")
                .agg(pl.col("close").last().alias("old_price"), pl.col("new_open").first().alias("new_price")))
    new_bars = sw.join(b, left_on="new_inst", right_on="instrument_id").filter(
        pl.col("trade_date").is_between(pl.col("prev_date"), pl.col("data_date")))
    same = (old.join(new_bars.select("data_date", "ts_event", pl.col("close").alias("_nc")), on=["data_date", "ts_event"])
            .sort("ts_event").group_by("data_date")
            .agg(pl.col("close").last().alias("old_price"), pl.col("_nc").last().alias("new_price")))
    out = pl.concat([same.with_columns(pl.lit(f"{source} same-time").alias("price_source")),
                     adjacent.join(same, on="data_date", how="anti")
                     .with_columns(pl.lit(f"{source} adjacent").alias("price_source"))], how="diagonal")
    return out.select([pl.col(c).cast(t) for c, t in SWITCH_COLUMNS.items()])


def _switch_log_ratio(adjustment: str) -> pl.Expr:
    """Per session: the gap of a switch at that session (log ratio or difference), 0 without a switch,
    NULL for a switch (or unknown instrument) without a usable price pair."""
    old, new = pl.col("old_price"), pl.col("new_price")
    ok = old.is_not_null() & new.is_not_null() & (old > 0) & (new > 0)
    gap = (new / old).log() if adjustment == "ratio" else new - old
    return (pl.when(pl.col("_change").is_null()).then(None)
            .when(~pl.col("_change")).then(0.0)
            .when(ok).then(gap).otherwise(None))


def build_training_table(
    matrix: pl.DataFrame,
    root: str,
    session_bars: pl.DataFrame | None = None,
    ingestion_ts: datetime | None = None,
    switch_prices: pl.DataFrame | None = None,
    adjustment: str = "ratio",
) -> pl.DataFrame:
    """``training.<root>_training_daily`` (SPEC 6.7): exactly ``training_table(root)``'s columns.

    Rows: the matrix rows whose symbol is ``root`` (upper-cased), sorted by data_date, each STRUCT member
    its own column. The matrix must hold the root's whole history: the "sessions" the targets count are
    these rows, so a missing session shifts every target across it.

    For h in TARGET_HORIZONS (1d=1, 1w=5, 1m=21, 3m=63, 6m=126, 12m=252 sessions), simple returns
    (fractions): ``target_<h>_raw`` = close[t+h]/close[t] - 1; ``target_<h>`` = the same on the
    roll-adjusted close (``adjustment``: ratio, difference or none; module docstring). Both NULL where
    session t+h does not exist, a close is NULL or close[t] <= 0; the adjusted one also where a switch in
    (t, t+h] has no price pair or an instrument in it is unknown (``adjustment="none"``: equal to raw).

    Switches: session s trades another instrument than s-1, from ``session_bars.instrument_id`` when
    given, else the matrix's ``pivot_roll_flag``. Their prices: ``switch_prices`` (``SWITCH_COLUMNS``,
    from ``switch_prices_from_bars``) where it has the switch, else ``session_switch_prices``.

    ``target_crosses_roll_<h>``: some switch in (t, t+h]; NULL where the target is NULL, or where no
    switch is known in the window but some instrument is unknown. ``split``: train (< 2023-01-01), val
    (2023), test (>= 2024-01-01). ``purged_<h>``: the target is non-NULL and session t+h lies in another
    split than t (never NULL); ``purged`` = any. ``training_weight`` = regime weight (Int64).
    ``ingestion_ts`` is the matrix's unless given (time-zone aware). Raises ``ValueError`` on duplicate
    dates, inconsistent inputs or an unknown ``adjustment``.
    """
    if adjustment not in ADJUSTMENTS:
        raise ValueError(f"unknown roll adjustment {adjustment!r}; one of {list(ADJUSTMENTS)}")
    spec = training_table(root)
    root = root.upper()
    flat = _flatten(matrix.filter(pl.col("symbol") == root)).sort("data_date")
    _require_unique(flat, f"matrix ({root})", _KEY)

    # The frame holds one root sorted by data_date, so plain shifts stay inside the root's sessions.
    if session_bars is not None:
        flat = _attach_instrument(flat, session_bars, root)
        change = pl.col("_inst") != pl.col("_inst").shift(1)
    else:
        # Same definition, computed upstream from the session bars (previous session, other instrument).
        change = pl.col("pivot_roll_flag")
    # Session 0's flag never falls in any window (windows start after t >= 0); keep it out of the gaps.
    flat = flat.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(False).otherwise(change).alias("_change"))
    prices = session_switch_prices(flat, pl.col("_change"))
    if switch_prices is not None:
        given = switch_prices.select([pl.col(c).cast(t) for c, t in SWITCH_COLUMNS.items()])
        _require_unique(given, "switch_prices", ["data_date"])
        prices = pl.concat([given, prices.join(given, on="data_date", how="anti")])
    flat = flat.join(prices, on="data_date", how="left", maintain_order="left")
    gap = _switch_log_ratio(adjustment)
    # Running sums: a window (t, t+h] holds cum[t+h] - cum[t] switches / unknowns / gap.
    flat = flat.with_columns(
        pl.col("_change").fill_null(False).cast(pl.Int64).cum_sum().alias("_chg"),
        pl.col("_change").is_null().cast(pl.Int64).cum_sum().alias("_unk"),
        gap.is_null().cast(pl.Int64).cum_sum().alias("_bad"),
        gap.fill_null(0.0).cum_sum().alias("_gap"),
    )

    close = pl.col("close")
    base_ok = close.is_not_null() & (close > 0)
    split = split_expr(pl.col("data_date"))
    cols: dict[str, list[pl.Expr]] = {"raw": [], "adj": [], "cross": [], "purge": []}
    for name, h in TARGET_HORIZONS:
        def window(c: str, h: int = h) -> pl.Expr:
            return pl.col(c).shift(-h) - pl.col(c)

        raw = pl.when(base_ok).then(close.shift(-h) / close - 1.0).otherwise(None)
        if adjustment == "ratio":  # close[t] * prod r = close[t] * exp(sum log r)
            adj = close.shift(-h) / (close * window("_gap").exp()) - 1.0
        elif adjustment == "difference":
            base = close + window("_gap")
            adj = pl.when(base > 0).then(close.shift(-h) / base - 1.0).otherwise(None)
        else:
            adj = raw
        # "none" is the raw value as such; an adjusted one is NULL over an unpriced switch.
        unpriced = (window("_bad") > 0) if adjustment != "none" else pl.lit(False)
        target = pl.when(raw.is_null() | unpriced).then(None).otherwise(adj)
        cols["raw"].append(raw.alias(f"target_{name}_raw"))
        cols["adj"].append(target.alias(f"target_{name}"))
        cols["cross"].append(
            pl.when(raw.is_null()).then(None).when(window("_chg") > 0).then(True)
            .when(window("_unk") > 0).then(None).otherwise(False).alias(f"target_crosses_roll_{name}")
        )
        # The window (t, t+h] crosses a boundary iff session t+h is in another split than t (splits are
        # contiguous date ranges, so no window can leave a split and come back).
        purge = raw.is_not_null() & (split_expr(pl.col("data_date").shift(-h)) != split)
        cols["purge"].append(purge.fill_null(False).alias(f"purged_{name}"))

    out = flat.with_columns(*cols["adj"], *cols["raw"], *cols["cross"], split.alias("split"), *cols["purge"])
    out = out.with_columns(
        pl.any_horizontal([f"purged_{name}" for name, _ in TARGET_HORIZONS]).alias("purged"),
        pl.col("regime_weight").alias("training_weight"),
    )
    if ingestion_ts is not None:
        stamp = _to_utc(ingestion_ts, "ingestion_ts")
        out = out.with_columns(pl.lit(stamp, dtype=pl.Datetime("us", "UTC")).alias("ingestion_ts"))
    return out.select([pl.col(c).cast(t) for c, t in spec.polars_schema().items()])
