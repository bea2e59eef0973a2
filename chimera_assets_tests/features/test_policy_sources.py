"""Issue 14 case 1 (a run without policy files never deletes the stored events) and the policy listing
of case 8 (hidden and lock files are not sources), on the real exports in ../shared/data/policy-events."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import polars as pl

from chimera_assets.definitions import build_definitions
from chimera_assets.features.policy_sources import combine_policy_events, policy_files
from chimera_assets.schemas import POLICY_EVENTS, POLICY_FEATURES
from chimera_assets.settings import get_settings
from chimera_assets.warehouse import get_warehouse
from chimera_assets_tests.conftest import shared_data
from chimera_assets_tests.dagster_helpers import QUIET
from chimera_assets_tests.frames import frame_hash

INTEL = "trump_policy_intelligence_2025.parquet"
SOCIAL = "social_posts_2008-2025.parquet"
EVENTS_KEY = dg.AssetKey(["reference", "policy_events"])
FEATURES_KEY = dg.AssetKey(["features", "policy_features"])


def _run_policy(start: str = "2025-06-02", end: str = "2025-06-13") -> dg.ExecuteInProcessResult:
    """reference/policy_events, then features/policy_features over [start, end] (as ``chimera run`` does)."""
    job = build_definitions().resolve_implicit_global_asset_job_def()
    inst = dg.DagsterInstance.ephemeral()
    res = job.get_subset(asset_selection={EVENTS_KEY}).execute_in_process(instance=inst, run_config=QUIET)
    job.get_subset(asset_selection={FEATURES_KEY}).execute_in_process(
        instance=inst, run_config=QUIET,
        tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end},
    )
    return res


def _events_metadata(res: dg.ExecuteInProcessResult) -> dict:
    mat = [m for m in res.get_asset_materialization_events() if m.asset_key == EVENTS_KEY]
    return {k: v.value for k, v in mat[0].materialization.metadata.items()}


def test_a_run_without_policy_files_keeps_the_stored_events_and_features(monkeypatch):
    real = shared_data("policy-events")
    monkeypatch.setenv("CHIMERA_POLICY_DIR", str(real))
    _run_policy()
    wh = get_warehouse(get_settings())
    events, feats = wh.read(POLICY_EVENTS), wh.read(POLICY_FEATURES)
    assert events.height > 900  # 936 distinct events in the two real files
    # 10 trade dates x 2 cut-offs (13:20 CT grains, 16:00 CT equity index / crude of the default universe)
    assert feats["trump_mentions"].null_count() == 0 and feats.height == 20
    assert feats.group_by("trade_date").len()["len"].to_list() == [2] * 10

    for unset in ("unset", "empty"):
        if unset == "unset":
            monkeypatch.delenv("CHIMERA_POLICY_DIR")
        else:
            empty = Path(get_settings().home) / "empty_policy_dir"
            empty.mkdir()
            monkeypatch.setenv("CHIMERA_POLICY_DIR", str(empty))
        res = _run_policy()
        md = _events_metadata(res)
        assert md["policy_source"] == "none: stored events kept" and md["events_kept"] == events.height
        assert frame_hash(wh.read(POLICY_EVENTS)) == frame_hash(events), unset
        assert frame_hash(wh.read(POLICY_FEATURES)) == frame_hash(feats), unset


def test_a_removed_file_keeps_its_events_and_a_present_file_replaces_its_own(monkeypatch, tmp_path):
    real = shared_data("policy-events")
    d = tmp_path / "policy"
    d.mkdir()
    shutil.copy(real / INTEL, d / INTEL)
    shutil.copy(real / SOCIAL, d / SOCIAL)
    monkeypatch.setenv("CHIMERA_POLICY_DIR", str(d))
    _run_policy()
    wh = get_warehouse(get_settings())
    both = wh.read(POLICY_EVENTS)
    # The social export is moved away and the intelligence file is cut to its first 100 rows.
    (d / SOCIAL).unlink()
    pl.read_parquet(real / INTEL).head(100).write_parquet(d / INTEL)
    md = _events_metadata(_run_policy())
    after = wh.read(POLICY_EVENTS)
    social_before = both.filter(pl.col("ingested_from") == SOCIAL)
    assert frame_hash(after.filter(pl.col("ingested_from") == SOCIAL)) == frame_hash(social_before)
    assert md["absent_files_kept"] == [SOCIAL] and md["events_kept_from_absent_files"] == social_before.height
    intel_after = after.filter(pl.col("ingested_from") == INTEL)
    assert 0 < intel_after.height <= 100 < both.filter(pl.col("ingested_from") == INTEL).height


def test_hidden_and_lock_files_are_not_policy_sources(tmp_path):
    real = shared_data("policy-events")
    shutil.copy(real / INTEL, tmp_path / INTEL)
    (tmp_path / "~$events.csv").write_bytes(b"\x00\x01 lock")  # Office lock file of an open spreadsheet
    (tmp_path / ".~lock.events.csv#").write_text("user,host")  # LibreOffice lock
    (tmp_path / ".hidden.csv").write_text("ts,source,text\nnot,a,date\n")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "old.parquet").write_bytes(b"junk")
    (tmp_path / "events.csv~").write_text("backup")
    assert policy_files(tmp_path) == [tmp_path / INTEL]


def test_combine_keeps_events_of_files_not_loaded():
    cols = POLICY_EVENTS.polars_schema()
    stored = pl.DataFrame(
        {"event_id": ["a", "b", "c"], "ts": [None, None, None], "source": ["s"] * 3, "category": [None] * 3,
         "text": ["x", "y", "z"], "url": [None] * 3, "kind": [None] * 3, "ingested_from": ["f1", "f2", "f1"], "ingested_at": [None] * 3},
        schema=cols,
    )
    loaded = stored.filter(pl.col("event_id") == "a").with_columns(pl.lit("x2").alias("text"))
    out = combine_policy_events(stored, loaded, ["f1"])
    assert sorted(out["event_id"].to_list()) == ["a", "b"]  # c (f1, no longer in f1) gone; b (f2 absent) kept
    assert out.filter(pl.col("event_id") == "a")["text"].item() == "x2"
    assert combine_policy_events(stored, loaded.clear(), []).height == 3
