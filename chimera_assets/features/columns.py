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


def column_doc(column) -> dict:
    """Description, unit, family, flags and the family's code version of ``column`` (a
    ``schemas.Column``). Unknown names get the column's own description and empty unit/family."""
    if "trump_score" not in _DOCS:
        _policy_docs()
    family, unit, text = _DOCS.get(column.name, ("", "", ""))
    version = TRAINING_CODE_VERSION if family == "label" else FAMILY_CODE_VERSIONS.get(family)
    return {
        "description": column.description or text,
        "unit": unit,
        "family": family,
        "lookahead": column.lookahead,
        "hindsight": column.hindsight,
        "code_version": version,
    }
