"""Code versions of the feature families and the training tables (Dagster ``code_version``).

Bump a family's version when its computation changes (not for refactors that keep every value): the
assets downstream of it then show as stale in the UI until rematerialized. The keys are the families'
asset names in ``defs/features/assets.py``; ``TRAINING_CODE_VERSION`` is the training tables'.
"""

from __future__ import annotations

FAMILY_CODE_VERSIONS: dict[str, str] = {
    "session_bars": "2",  # 2: completeness from the scheduled close, partial sessions (SPEC 6.3, 2026-12-08)
    "market_features": "1",
    "pivots": "2",  # 2: roll-safe weekly pivot (SPEC 6.4, 2026-12-03)
    "golden_zone": "1",
    "policy_features": "2",  # 2: rows per (trade_date, cutoff), each root cut at its own close (SPEC 6.4, 2026-12-08)
    "consolidated_features": "2",  # 2: timestamp = the root's own scheduled close (SPEC 6.5, 2026-12-08)
    "daily_ml_matrix": "1",
}

# 2: roll-adjusted targets with target_<h>_raw (SPEC 6.7, 2026-12-08); 1: per-horizon purge.
TRAINING_CODE_VERSION = "2"


def family_code_version(name: str) -> str | None:
    """The code version of the family asset ``name`` (its table name), None for an unversioned asset."""
    return FAMILY_CODE_VERSIONS.get(name)
