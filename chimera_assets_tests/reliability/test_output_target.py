"""Issue 29 item 7: ``chimera export --out`` writes only to a regular file (or ``-``), never replaces a
device, a FIFO or a directory, writes THROUGH a symlink, and says when it replaces a file. Every special
file is made in the test's sandbox directory."""

from __future__ import annotations

import os
import stat

import pytest

from chimera_assets import cli
from chimera_assets.output_target import OutputTargetError, check_output_target


def _export(out, capsys) -> tuple[int, str]:
    code = cli.main(["export", "--root", "ZL", "--horizon", "1d", "--format", "csv", "--out", str(out)])
    return code, capsys.readouterr().err


def _specials(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    folder = tmp_path / "folder"
    folder.mkdir()
    out = {"fifo": fifo, "directory": folder}
    if os.geteuid() == 0:  # a character device like /dev/null, in the sandbox (mknod needs root)
        dev = tmp_path / "null-like"
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        out["character device"] = dev
    link = tmp_path / "link-to-pipe"
    link.symlink_to(fifo)
    out["link to a fifo"] = link
    return out


def test_export_refuses_devices_fifos_directories_and_links_to_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CHIMERA_HOME", str(tmp_path / "home"))
    for what, path in _specials(tmp_path).items():
        before = os.lstat(path)
        code, err = _export(path, capsys)
        assert code == 2, (what, err)
        assert str(path) in err and ("FIFO" in err or "device" in err or "directory" in err), (what, err)
        after = os.lstat(path)
        assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino), f"{what} was replaced"


def test_a_symlink_is_written_through_and_a_replaced_file_is_announced(tmp_path):
    real = tmp_path / "data" / "set.csv"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "latest.csv"
    link.symlink_to(real)
    target = check_output_target(link)
    assert target.path == real.resolve() and target.via_link == link and target.replaces
    assert "replacing the existing file" in target.describe() and str(link) in target.describe()
    new = check_output_target(tmp_path / "new.csv")
    assert not new.replaces and new.path == tmp_path / "new.csv"
    assert check_output_target("-").stdout
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "missing-dir" / "x.csv")
    with pytest.raises(OutputTargetError, match="does not exist"):
        check_output_target(dangling)
