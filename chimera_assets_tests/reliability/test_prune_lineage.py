"""Issue 29 item 2: ``chimera prune --apply`` leaves no row derived from the raw rows it removed.

The whole graph (raw -> session bars -> features -> matrix -> training) is built by ``chimera run``
from daily landing files; the files of four days are deleted; prune's preview lists the derived
partitions, ``--apply`` removes them with the raw rows, and ``chimera export`` ships none of those dates.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from chimera_assets import cli
from chimera_assets.demo.data import write_demo_files
from chimera_assets.ingest.prune_lineage import derived_tables
from chimera_assets.schemas import OHLCV_1H, SESSION_BARS
from chimera_assets.universe import get_universe
from chimera_assets.warehouse import get_warehouse

PRUNED = [date(2024, 3, d) for d in (12, 13, 14, 15)]


def _dates(wh, spec) -> set[date]:
    return set(wh.read(spec, columns=[spec.date_column])[spec.date_column].to_list()) if wh.table_exists(spec) else set()


def _export(tmp_path, name: str, capsys) -> pl.DataFrame:
    out = tmp_path / name
    assert cli.main(["export", "--root", "ZL", "--horizon", "1d", "--format", "csv", "--out", str(out),
                     "--keep-purged"]) == 0, capsys.readouterr().err
    return pl.read_csv(out, try_parse_dates=True)


def test_prune_removes_the_derived_rows_of_the_pruned_dates_and_export_ships_none(tmp_path, monkeypatch, capsys):
    landing = tmp_path / "landing"
    monkeypatch.setenv("CHIMERA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(landing))
    monkeypatch.delenv("CHIMERA_POLICY_DIR", raising=False)
    write_demo_files(landing, ["ZL"], date(2024, 2, 1), date(2024, 3, 23), files="daily")
    assert cli.main(["run", "--start", "2024-03-04", "--end", "2024-03-22", "--roots", "ZL", "--landing-dir",
                     str(landing), "--ephemeral-instance"]) in (0, 1)
    assert "result: SUCCESS" in capsys.readouterr().out
    wh = get_warehouse()
    tables = derived_tables(get_universe())
    zl_training = next(t for t in tables if t.fqn == "training.zl_training_daily")
    for spec in (SESSION_BARS, zl_training):
        assert set(PRUNED) <= _dates(wh, spec), spec.fqn  # the test would fail without the prune below
    before = _export(tmp_path, "before.csv", capsys)
    assert set(PRUNED) & set(before["data_date"].to_list())

    for d in PRUNED:  # the files whose records make the four trade dates (a trade date starts the evening before)
        for p in landing.glob(f"*-{d:%Y%m%d}-*.dbn.zst"):
            p.unlink()
    capsys.readouterr()
    assert cli.main(["prune"]) == 0
    preview = capsys.readouterr().out
    assert "would delete" in preview and "derived rows" in preview
    for name in ("features.session_bars", "features.daily_ml_matrix", "training.zl_training_daily"):
        assert name in preview, preview
    assert "2024-03-12|ZL" in preview, preview
    assert set(PRUNED) <= _dates(wh, SESSION_BARS), "the dry run changed a table"

    assert cli.main(["prune", "--apply"]) == 0
    applied = capsys.readouterr().out
    assert "deleted" in applied and "chimera run --start" in applied, applied
    raw_left = _dates(wh, OHLCV_1H)
    for spec in tables:
        left = _dates(wh, spec)
        gone = {d for d in PRUNED if d not in raw_left}
        assert not (gone & left), f"{spec.fqn} still holds {sorted(gone & left)} after prune --apply"
    after = _export(tmp_path, "after.csv", capsys)
    assert not set(PRUNED) & set(after["data_date"].to_list())
    assert after.height < before.height and after.height > 0
