"""Issue 29 item 6 (and the config half of 11): configuration errors are bounded and name the file.

A YAML alias bomb inside a valid key (``series: [ZL.v.0, *h]``) used to take ~1 GB and print a 226 MB
message (the validator echoed the expanded value); one level deeper exhausted memory."""

from __future__ import annotations

import tracemalloc

from chimera_assets import cli
from chimera_assets.config_yaml import MAX_EXCERPT, excerpt


def _bomb(levels: int) -> str:
    lines = ['    series: [ZL.v.0, &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f'      , &a{i} [' + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines.append(f"      , *a{levels - 1}]")
    return "dataset: GLBX.MDP3\nroots:\n  ZL:\n" + "\n".join(lines) + "\n    schemas: [ohlcv-1h]\n"


def test_an_alias_bomb_in_a_valid_key_is_refused_with_bounded_memory_and_message(tmp_path, monkeypatch, capsys):
    for levels in (9, 10):  # 9 used to cost ~1 GB; 10 exhausted memory
        path = tmp_path / f"universe-bomb-{levels}.yaml"
        path.write_text(_bomb(levels), encoding="utf-8")
        monkeypatch.setenv("CHIMERA_UNIVERSE", str(path))
        tracemalloc.start()
        code = cli.main(["run", "--start", "2024-03-04", "--end", "2024-03-08", "--roots", "ZL", "--demo"])
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        err = capsys.readouterr().err
        print(f"alias bomb of {levels} levels: peak traced memory {peak / 1e6:.1f} MB, message {len(err)} chars")
        assert code == 2, err[:2000]
        assert str(path) in err and "aliases expand" in err, err[:2000]
        assert len(err) < 2000 and "Traceback" not in err
        assert peak < 100e6, f"{peak / 1e6:.0f} MB"


def test_a_large_value_in_a_validation_error_is_echoed_as_a_short_excerpt(tmp_path, monkeypatch, capsys):
    path = tmp_path / "universe-long.yaml"
    long_series = "X" * 50_000 + ";"  # not a series symbol
    path.write_text(f"dataset: GLBX.MDP3\nroots:\n  ZL:\n    series: [\"{long_series}\"]\n", encoding="utf-8")
    monkeypatch.setenv("CHIMERA_UNIVERSE", str(path))
    code = cli.main(["run", "--start", "2024-03-04", "--end", "2024-03-08", "--roots", "ZL", "--demo"])
    err = capsys.readouterr().err
    assert code == 2 and str(path) in err and len(err) < 3 * MAX_EXCERPT + len(str(path)) + 400, (len(err), err[:500])
    assert len(excerpt(list(range(10**6)))) <= MAX_EXCERPT
