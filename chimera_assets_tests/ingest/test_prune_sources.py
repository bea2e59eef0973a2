"""``chimera prune`` looks for sources where the loads found them: after ``chimera run --landing-dir X``,
a prune without ``--landing-dir`` finds X's files present and deletes nothing; once a file of X is
deleted, its partitions (and only those) are listed."""

from __future__ import annotations

from datetime import date

from chimera_assets.cli import main
from chimera_assets.demo.data import write_demo_files


def test_prune_without_landing_dir_keeps_rows_of_files_loaded_from_elsewhere(tmp_path, capsys, monkeypatch):
    elsewhere = tmp_path / "downloads"
    files = write_demo_files(elsewhere, ["ZL"], date(2024, 1, 1), date(2024, 3, 1))
    assert main(["run", "--landing-dir", str(elsewhere), "--roots", "ZL", "--start", "2024-01-02",
                 "--end", "2024-02-28", "--no-training", "--ephemeral-instance"]) == 0
    capsys.readouterr()
    # A later shell: `chimera run` set CHIMERA_LANDING_DIR in this process only.
    monkeypatch.delenv("CHIMERA_LANDING_DIR", raising=False)
    assert main(["prune"]) == 0
    out = capsys.readouterr().out
    assert "nothing to prune" in out, out
    february = [f for f in files if "202402" in f.name]
    assert february, [f.name for f in files]
    february[0].unlink()
    assert main(["prune"]) == 0
    out = capsys.readouterr().out
    assert "2024-02-" in out and "2024-01-1" not in out, out
    assert "dry run" in out


def test_the_stale_source_check_finds_files_loaded_from_elsewhere_present(tmp_path, monkeypatch):
    import dagster as dg

    from chimera_assets.definitions import build_definitions

    elsewhere = tmp_path / "downloads"
    write_demo_files(elsewhere, ["ZL"], date(2024, 1, 1), date(2024, 2, 1))
    assert main(["run", "--landing-dir", str(elsewhere), "--roots", "ZL", "--start", "2024-01-02",
                 "--end", "2024-01-30", "--no-training", "--ephemeral-instance"]) == 0
    monkeypatch.delenv("CHIMERA_LANDING_DIR", raising=False)  # the UI's code location: default landing dir
    key = dg.AssetCheckKey(dg.AssetKey(["market_data", "databento_futures_ohlcv_1h"]), "source_files_present")
    defs = build_definitions()
    job = dg.define_asset_job("stale_check", selection=dg.AssetSelection.checks(key))
    defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
    result = defs.resolve_job_def("stale_check").execute_in_process(instance=dg.DagsterInstance.ephemeral())
    (ev,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "source_files_present"]
    assert ev.passed and ev.metadata["stale_rows"].value == 0, ev.metadata
