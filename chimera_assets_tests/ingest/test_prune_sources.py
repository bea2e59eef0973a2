"""``chimera prune`` looks for sources where the loads found them: after ``chimera run --landing-dir X``,
a prune without ``--landing-dir`` finds X's files present and deletes nothing; once a file of X is
deleted, its partitions (and only those) are listed."""

from __future__ import annotations

from datetime import date

from chimera_assets.cli import main
from chimera_assets.demo_data import write_demo_files


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
