"""What each column of the matrix-derived tables means: description, unit and feature family.

Keyed by column name (the flattened name of a matrix member, ``schemas.flat_field_name``), so the same
entry serves the consolidated frame, the matrix STRUCT members and the training tables. The flags
``lookahead`` / ``hindsight`` live on the ``schemas.Column`` itself; ``column_doc`` merges both. Used by
the Dagster column schema (``lib/io_manager.column_schema``) and the export's schema file.
"""

from __future__ import annotations

from chimera_assets.features.versions import FAMILY_CODE_VERSIONS, TRAINING_CODE_VERSION

PRICE = "price units (the contract's quote)"
FRACTION = "fraction (0.01 = 1%)"
_POLICY = "policy event score (POLICY_FEATURES.md)"

# name -> (family, unit, description)
_DOCS: dict[str, tuple[str, str, str]] = {
    "symbol": ("id", "", "the root (product code), e.g. ZL"),
    "data_date": ("id", "date", "the CME trade date of the session"),
    "trade_date": ("id", "date", "the CME trade date of the session"),
    "timestamp": ("id", "UTC instant", "the session's close instant: every feature of the row is known by then"),
    "open": ("session_bars", PRICE, "first trade of the session (the session's contract)"),
    "high": ("session_bars", PRICE, "highest trade of the session"),
    "low": ("session_bars", PRICE, "lowest trade of the session"),
    "close": ("session_bars", PRICE, "last trade of the session (not roll-adjusted)"),
    "volume": ("session_bars", "contracts", "contracts traded in the session"),
    "vwap": ("market_features", PRICE, "volume-weighted typical price (H+L+C)/3 of the session's bars"),
    "realized_vol_1h": ("market_features", "annualised fraction", "sqrt(252 * sum r^2), 1h log returns of the session"),
    "vol_percentile": ("market_features", FRACTION, "share of the trailing 252 rv20 values <= today's; NULL under 100"),
    "k_vol": ("market_features", "ratio", "rv20 / median rv20 of 252 sessions, clamped to [0.5, 2]; NULL under 100"),
    "P": ("pivots", PRICE, "classic pivot (H+L+C)/3 of the previous session"),
    "R1": ("pivots", PRICE, "2P - L"), "R2": ("pivots", PRICE, "P + (H - L)"), "R3": ("pivots", PRICE, "H + 2(P - L)"),
    "S1": ("pivots", PRICE, "2P - H"), "S2": ("pivots", PRICE, "P - (H - L)"), "S3": ("pivots", PRICE, "L - 2(H - P)"),
    "distance_to_P": ("pivots", PRICE, "close - P (signed)"),
    "distance_to_nearest_pivot": ("pivots", PRICE, "min |close - level| over P, R1-R3, S1-S3"),
    "weekly_pivot_distance": ("pivots", PRICE, "|close - weekly pivot of the prior ISO week (roll-safe)|"),
    "price_above_P": ("pivots", "flag", "close > P"),
    "pivot_roll_flag": ("pivots", "flag", "the previous session traded another contract"),
    "golden_zone_state": ("golden_zone", "code", "0 outside, 1 between fib_618 and fib_50, 2 below fib_618"),
    "swing_high": ("golden_zone", PRICE, "last confirmed zig-zag swing high (1h closes)"),
    "swing_low": ("golden_zone", PRICE, "last confirmed zig-zag swing low (1h closes)"),
    "fib_50": ("golden_zone", PRICE, "50% retracement of the last leg"),
    "fib_618": ("golden_zone", PRICE, "61.8% retracement of the last leg"),
    "vol_decay_slope": ("golden_zone", "1/bar", "OLS slope of volume over 5 bars into the zone / their mean"),
    "qualified_trigger": ("golden_zone", "flag", "a qualified golden-zone trigger in the session"),
    "regime_name": ("regime", "", "calendar regime of the date (HINDSIGHT: the calendar was written later)"),
    "regime_weight": ("regime", "weight 50-1000", "weight of the calendar regime (HINDSIGHT)"),
    # The matrix STRUCTs (their members are described under their flattened names).
    "market_data": ("session_bars", "", "STRUCT: session OHLCV (session_bars) and vwap/realized_vol_1h (market)"),
    "pivots": ("pivots", "", "STRUCT: daily pivots of the previous session, distances, roll flag"),
    "policy": ("policy_features", "", "STRUCT: the 16 policy features (events before the session close)"),
    "golden_zone": ("golden_zone", "", "STRUCT: golden-zone state from 1h swings (flagged roots; NULL elsewhere)"),
    "regime": ("regime", "", "STRUCT: name, weight (HINDSIGHT: calendar written later), vol_percentile, k_vol"),
    "split": ("label", "", "train (< 2023-01-01), val (2023), test (>= 2024-01-01)"),
    "purged": ("label", "flag", "some horizon's target window crosses a split boundary"),
    "training_weight": ("label", "weight 50-1000", "sample weight = regime weight (hindsight; a weight, not a feature)"),
    "ingestion_ts": ("id", "UTC instant", "when the row was written (a load stamp; never a feature)"),
}
_RAW = "raw"
_DOCS.update({
    "ts_event": (_RAW, "UTC instant", "bar open (OHLCV) or event time (statistics), from Databento"),
    "series": (_RAW, "", "the series symbol requested from Databento (e.g. ZL.v.0)"),
    "raw_symbol": (_RAW, "", "contract code when definitions are known (e.g. ZLZ5), else NULL"),
    "instrument_id": (_RAW, "", "Databento instrument id of the contract (unique per date)"),
    "is_spread": (_RAW, "flag", "the instrument is a calendar spread"),
    "publisher_id": (_RAW, "", "Databento publisher id"),
    "load_id": (_RAW, "", "the load that wrote the row (ops.databento_load_state)"),
    "date": (_RAW, "date", "the UTC bar date Databento gives (not the CME trade date)"),
    "settle": ("session_bars", PRICE, "settlement price (statistics stat_type 3), NULL if not loaded"),
    "open_interest": ("session_bars", "contracts", "open interest (statistics stat_type 9), NULL if not loaded"),
    "stat_type": (_RAW, "code", "Databento statistic type (3 settlement, 9 open interest)"),
    "quantity": (_RAW, "contracts", "statistic quantity (open interest for stat_type 9)"),
    "stat_flags": (_RAW, "bit flags", "statistic flags (bit 0: final)"),
    "ts_recv": (_RAW, "UTC instant", "when Databento received the statistic"),
    "valid_date": (_RAW, "date", "the UTC date the definition is valid for"),
    "root": (_RAW, "", "the root of the definition's contract"),
    "instrument_class": (_RAW, "code", "Databento instrument class (F future, S spread, ...)"),
    "expiration": (_RAW, "UTC instant", "the contract's expiration"),
    "min_price_increment": (_RAW, PRICE, "tick size"),
    "bar_count": ("session_bars", "bars", "intraday bars of the session's contract"),
    "source_freq": ("session_bars", "", "frequency the session was built from (1m, 1h; 1d flagged)"),
    "roll_flag": ("session_bars", "flag", "the session trades another contract than the previous one"),
    "thin_flag": ("session_bars", "flag", "volume < 20% of the trailing 20-session median"),
    "session_complete": ("session_bars", "flag", "the root's bars reach the scheduled session close"),
    "sum_r2": ("market_features", "log-return^2", "sum of squared 1h log returns of the session"),
    "rv20": ("market_features", "annualised fraction", "sqrt(252 * mean sum_r2 of the last 20 sessions)"),
    "prev_high": ("pivots", PRICE, "previous session's high (H)"),
    "prev_low": ("pivots", PRICE, "previous session's low (L)"),
    "prev_close": ("pivots", PRICE, "previous session's close (C)"),
    "price": ("pivots", PRICE, "today's session close"),
    "weekly_pivot": ("pivots", PRICE, "pivot of the prior completed ISO week (its last contract only)"),
    "valid_from": ("regime", "date", "first date of the regime"),
    "valid_to": ("regime", "date", "last date of the regime"),
})
# Names whose meaning depends on the table: (table, column) -> entry.
_TABLE_DOCS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("databento_futures_statistics", "price"): (_RAW, PRICE, "statistic price (settlement for stat_type 3)"),
    ("regime_calendar", "date"): ("regime", "date", "calendar day"),
    ("regime_calendar", "regime"): ("regime", "", "the regime of the day (hindsight: written after the fact)"),
    ("regime_weights", "regime"): ("regime", "", "regime name"),
    ("regime_weights", "weight"): ("regime", "weight 50-1000", "the regime's training weight"),
    ("regime_weights", "description"): ("regime", "", "what the regime was"),
    ("policy_events", "event_id"): ("policy_features", "", "stable id of the event (normalised text + minute)"),
    ("policy_events", "ts"): ("policy_features", "UTC instant", "when the event was published"),
    ("policy_events", "source"): ("policy_features", "", "where the event comes from (e.g. truth_social)"),
    ("policy_events", "category"): ("policy_features", "", "category given by the source file"),
    ("policy_events", "text"): ("policy_features", "", "the event's text"),
    ("policy_events", "url"): ("policy_features", "", "link to the event, if any"),
    ("policy_events", "kind"): ("policy_features", "", "kind of text (post, executive order, ...)"),
    ("policy_events", "ingested_from"): ("policy_features", "", "the file the event was read from"),
}
for _c, _t in (("load_id", "id of the load attempt"), ("source_kind", "api or file"), ("dataset", "Databento dataset"),
               ("schema", "Databento schema (ohlcv-1h, statistics, ...)"), ("series", "requested series, comma list"),
               ("stype_in", "Databento input symbology type"), ("period_start", "first instant requested/covered"),
               ("period_end", "end of the period (exclusive)"), ("file_path", "landing file, for file loads"),
               ("content_sha256", "sha256 of the file's bytes"), ("dbn_version", "DBN version of the file"),
               ("record_count", "records decoded"), ("rows_written", "rows merged into the tables"),
               ("first_ts_event", "first record instant"), ("last_ts_event", "last record instant"),
               ("status", "loaded, failed or skipped_unchanged"), ("error", "the error of a failed load"),
               ("run_id", "the Dagster run"), ("started_at", "UTC instant the load started"),
               ("finished_at", "UTC instant the load finished")):
    _TABLE_DOCS[("databento_load_state", _c)] = ("ops", "", _t)
_HORIZON_SESSIONS = {"1d": 1, "1w": 5, "1m": 21, "3m": 63, "6m": 126, "12m": 252}
for _h, _n in _HORIZON_SESSIONS.items():
    _DOCS[f"target_{_h}"] = ("label", FRACTION, f"close[t+{_n}]/close[t] - 1 on the roll-adjusted close "
                                               "(CHIMERA_ROLL_ADJUSTMENT; LOOKAHEAD)")
    _DOCS[f"target_{_h}_raw"] = ("label", FRACTION, f"close[t+{_n}]/close[t] - 1 unadjusted (a roll's contract "
                                                   "gap included; LOOKAHEAD)")
    _DOCS[f"target_crosses_roll_{_h}"] = ("label", "flag", f"the window (t, t+{_n}] holds a contract switch (LOOKAHEAD)")
    _DOCS[f"purged_{_h}"] = ("label", "flag", f"the window (t, t+{_n}] crosses a split boundary (LOOKAHEAD)")


def _policy_docs() -> None:
    from chimera_assets.schemas import POLICY_FIELDS

    for name, typ in POLICY_FIELDS:
        unit = "count" if typ == "INT64" else "flag" if typ == "BOOL" else _POLICY
        _DOCS.setdefault(name, ("policy_features", unit, f"{name} from policy events before the session close"))


def column_doc(column, table: str | None = None) -> dict:
    """Description, unit, family, flags and the family's code version of ``column`` (a
    ``schemas.Column``) of the table named ``table`` (its name without schema; a few column names mean
    different things in different tables). Unknown names get the column's own description and empty
    unit/family."""
    if "trump_score" not in _DOCS:
        _policy_docs()
    family, unit, text = _TABLE_DOCS.get((table or "", column.name)) or _DOCS.get(column.name, ("", "", ""))
    version = TRAINING_CODE_VERSION if family == "label" else FAMILY_CODE_VERSIONS.get(family)
    return {
        "description": column.description or text,
        "unit": unit,
        "family": family,
        "lookahead": column.lookahead,
        "hindsight": column.hindsight,
        "code_version": version,
    }
