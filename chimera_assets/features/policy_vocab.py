"""Constants of the policy features (POLICY_FEATURES.md): the cut-off and window lengths, the event and
feature schemas, the keyword vocabularies (verbatim) and the regex helpers that match them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import time, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from chimera_assets.schemas import POLICY_EVENTS, POLICY_FEATURES

CHICAGO = ZoneInfo("America/Chicago")
# The cut-off of plain-date callers (16:00 CT, the equity-index close); the asset cuts each row at a
# root's own session close instead (policy_cutoffs.py).
CUTOFF_LOCAL_TIME = time(16, 0)
# Window lengths are exact durations on the UTC axis (a DST switch does not stretch them).
W1_LENGTH = timedelta(hours=24)
W7_LENGTH = timedelta(days=7)
MA_CALENDAR_DAYS = 30
DECAY_HOURS = 24.0
FREQ_WINDOW = timedelta(hours=3)
FREQ_MIN_EVENTS = 3
FREQ_PENALTY = 0.8

# Both schemas are derived from the warehouse declarations in schemas.py (declared once there).
EVENT_SCHEMA: dict[str, pl.DataType] = POLICY_EVENTS.polars_schema()
# The 16 policy features (POLICY_FEATURES.md), in order: every column of the table after its key
# (trade_date, cutoff).
POLICY_FEATURE_COLUMNS: list[tuple[str, pl.DataType]] = [
    (c.name, c.polars_dtype()) for c in POLICY_FEATURES.columns if c.name not in POLICY_FEATURES.key
]
POLICY_FEATURE_NAMES: list[str] = [name for name, _ in POLICY_FEATURE_COLUMNS]

# --- keyword vocabularies (POLICY_FEATURES.md, verbatim) ---------------------------------------------
BULLISH_WORDS: tuple[str, ...] = (
    "biofuel", "ethanol", "biodiesel", "renewable", "mandate", "rfs", "china purchase", "purchase", "buy",
    "deal", "agreement", "trade deal", "export", "demand", "strong", "growth",
)  # fmt: skip
BEARISH_WORDS: tuple[str, ...] = (
    "tariff", "tax", "ban", "restriction", "sanction", "war", "conflict", "weak", "decline", "drop", "fall",
    "recession", "crisis",
)  # fmt: skip
# threat = sum(weight * #word) over W7 direct texts
THREAT_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("tariff", 3), ("tax", 2), ("china", 2), ("unfair", 1), ("retaliate", 3),
)  # fmt: skip
ACTION_PHRASES: tuple[str, ...] = ("will be", "going to", "announcing", "very soon", "big news", "stay tuned")
TARIFF_AMPLIFIERS: tuple[tuple[str, float], ...] = (
    ("disaster", 2.0), ("failing", 2.0), ("rigged", 1.8), ("huge", 1.5), ("tremendous", 1.5),
    ("winning", 1.5), ("crooked", 1.4), ("fake", 1.3), ("beautiful", 1.2),
)  # fmt: skip
# Ordered: the first group that matches wins (on category first, then on text).
TOPIC_MULTIPLIERS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("executive order", "policy"), 1.00),
    (("trade", "tariff"), 0.95),
    (("soybean", "soy oil"), 0.90),
    (("biofuel", "energy"), 0.85),
    (("supply", "harvest", "weather"), 0.80),
    (("logistics",), 0.70),
    (("macro",), 0.60),
)
TOPIC_DEFAULT = 0.75
# Credibility tiers, tested on "source url" as tokens separated by anything but [a-z0-9]
# (so "DTN_Policy" and "www.ft.com" match but "microsoft" does not). apnews/dtnpf are the outlets' domains.
CREDIBILITY_TIERS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("reuters", "bloomberg", "wsj", "ft"), 0.95),
    (("cnbc", "ap", "apnews"), 0.90),
    (("agweb", "dtn", "dtnpf", "agriculture.com"), 0.80),
)
CREDIBILITY_OFFICIAL = 1.0
CREDIBILITY_DEFAULT = 0.5
SOY_WORDS: tuple[str, ...] = ("soy", "soybean", "soy oil", "soybean oil", "zl", "biofuel")
ACTION_IMPACT: dict[str, float] = {"tariff": -0.025, "storm": -0.008, "deal": 0.015}


# ======================================================================================================
# regex helpers
# ======================================================================================================
def word_regex(*phrases: str) -> str:
    """Case-insensitive regex matching any of ``phrases`` as whole words.

    Word boundaries are regex ``\\b`` (so ``xi`` does not match ``taxi`` and ``tariff`` does not match
    ``tariffs``); the words of a multiword phrase may be separated by any run of whitespace.
    """
    alts = "|".join(r"\s+".join(re.escape(w) for w in p.split()) for p in phrases)
    return rf"(?i)\b(?:{alts})\b"


def _token_regex(tokens: Iterable[str]) -> str:
    # Boundaries are consuming here (presence test only), so '_' counts as a separator, unlike \b.
    alts = "|".join(re.escape(t) for t in tokens)
    return rf"(?:^|[^a-z0-9])(?:{alts})(?:[^a-z0-9]|$)"


def _count(col: str, *phrases: str) -> pl.Expr:
    """Total hits of each phrase counted separately (overlaps count for every phrase), as Int64."""
    return pl.sum_horizontal([pl.col(col).str.count_matches(word_regex(p)).cast(pl.Int64) for p in phrases])


def _has(col: str, *phrases: str) -> pl.Expr:
    return pl.col(col).str.contains(word_regex(*phrases))
