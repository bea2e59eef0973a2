"""ISSUE 25 acceptance, through the consolidated frame and the matrix: a policy event crafted at 14:00 CT
appears in MES's row of that day and in ZL's row of the next session only.

Real 1h bars of ZL and MES (../shared/data/databento-batch, June 2025) and a crafted policy events
directory; the pure builders, as the assets chain them: policy features per (trade_date, cutoff) from
``policy_cutoffs``, joined by ``build_consolidated`` to each root's row on (data_date, timestamp = the
root's session close, given as ``closes`` from ``session_schedule`` like the asset's ``schedule_for``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from chimera_assets_tests.real_frames import real_feature_frames

ROOTS = ["ZL", "MES"]
START, END = date(2025, 6, 2), date(2025, 6, 20)
D, NEXT = date(2025, 6, 11), date(2025, 6, 12)  # Wed, Thu (CDT: 14:00 CT = 19:00 UTC)
POST = datetime(2025, 6, 11, 19, tzinfo=UTC)


def _crafted_policy_dir(tmp_path: Path) -> Path:
    # One quiet item before the first date opens coverage (so rows without the post read 0, not NULL);
    # the post at 14:00 CT on D mentions Trump (the counted feature is #9 trump_mentions, W1 = 24 h).
    d = tmp_path / "policy-events"
    d.mkdir()
    (d / "events.csv").write_text(
        "ts,source,category,text\n"
        "2025-05-28T15:00:00Z,reuters,macro,quiet markets\n"
        "2025-06-11T14:00:00-05:00,truth_social_api,trade,Trump: big soybean deal with China\n"
    )
    return d


@pytest.fixture(scope="module")
def policy(tmp_path_factory) -> pl.DataFrame:
    """The policy table of the run's dates, as the asset builds it: every date x the universe's closes."""
    from chimera_assets.features.policy import compute_policy_features, load_policy_events
    from chimera_assets.features.policy_cutoffs import policy_cutoffs
    from chimera_assets.features.policy_sources import policy_files
    from chimera_assets.lib.partitions import weekday_dates
    from chimera_assets.schemas import POLICY_FEATURES

    events = load_policy_events(policy_files(_crafted_policy_dir(tmp_path_factory.mktemp("policy"))))
    cuts = policy_cutoffs(weekday_dates(START, END))
    return compute_policy_features(events, cuts).select(POLICY_FEATURES.column_names)


@pytest.fixture(scope="module")
def frames(policy: pl.DataFrame) -> dict[str, pl.DataFrame]:
    # The consolidated timestamp: each root's scheduled close, as the asset computes it (schedule_for).
    return real_feature_frames(START, END, ROOTS, policy=policy, own_closes=True)


def _mentions(frames: dict[str, pl.DataFrame]) -> dict[tuple[str, date], int | None]:
    m = frames["matrix"].select("symbol", "data_date", pl.col("policy").struct.field("trump_mentions"))
    return {(s, d): n for s, d, n in m.rows()}


def test_post_at_14_ct_is_in_mes_row_of_the_day_and_zl_row_of_the_next_session_only(frames):
    got = _mentions(frames)
    assert got[("MES", D)] == 1  # MES closes 16:00 CT: after the post
    assert got[("ZL", D)] == 0  # ZL closed at 13:20 CT, before it: never ZL's row of D
    assert got[("ZL", NEXT)] == 1  # ZL's next session's W1 (D 13:20, D+1 13:20] holds it
    assert got[("MES", NEXT)] == 0  # MES's next W1 (D 16:00, D+1 16:00] no longer does
    # ... and no other row of either root (every other date's W1 misses 14:00 CT on D).
    others = {k: v for k, v in got.items() if k not in {("MES", D), ("ZL", NEXT)}}
    assert others and set(others.values()) == {0}
    # The consolidated timestamp is the root's own close, the policy row's cut-off.
    cons = frames["consolidated"]
    ts = dict(cons.filter(pl.col("data_date") == D).select("symbol", "timestamp").rows())
    assert ts == {
        "ZL": datetime(2025, 6, 11, 18, 20, tzinfo=UTC),
        "MES": datetime(2025, 6, 11, 21, tzinfo=UTC),
    }


def test_the_policy_frame_holds_both_cutoffs_of_each_date(policy: pl.DataFrame):
    # Independent of the join: the policy table itself already carries the two rows per date.
    day = policy.filter(pl.col("trade_date") == D).sort("cutoff")
    assert day["cutoff"].to_list() == [
        datetime(2025, 6, 11, 18, 20, tzinfo=UTC),
        datetime(2025, 6, 11, 21, tzinfo=UTC),
    ]
    assert day["trump_mentions"].to_list() == [0, 1]
