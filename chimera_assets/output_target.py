"""Where a command may write a file the user named (``chimera export --out``): the rule, in one place.

Pure (no Dagster). Writers stage the bytes in a temporary file beside the target and rename it into
place, which REPLACES whatever the name pointed at: run as root, ``--out /dev/full`` turned the device
node into a CSV file, a FIFO became a regular file and a symlink was replaced by a file. So:

* ``-`` means standard output.
* A path that exists must be a regular file (it is replaced, and the command says so). A character or
  block device, a FIFO, a socket or a directory is refused, naming the path and what it is.
* A symbolic link is written THROUGH: the file it points to is replaced, the link stays. The link must
  resolve to a regular file, or to a new name in an existing directory; a dangling link into a missing
  directory, or a link to a device/FIFO/directory, is refused like the thing itself.
* The directory that receives the file must exist and be writable.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path


class OutputTargetError(ValueError):
    """The output path cannot be written by the rule above; the message names it."""


@dataclass(frozen=True)
class OutputTarget:
    """``path``: the regular file to (re)place (the link's target for a symlink); ``stdout``: write to
    standard output; ``replaces``: an existing file will be replaced; ``via_link``: the link named."""

    path: Path | None
    stdout: bool = False
    replaces: bool = False
    via_link: Path | None = None

    def describe(self) -> str:
        if self.stdout:
            return "standard output"
        what = f"{self.path}" + (f" (through the link {self.via_link})" if self.via_link else "")
        return f"replacing the existing file {what}" if self.replaces else f"new file {what}"


def _kind(mode: int) -> str | None:
    """What a non-regular file is, or None for a regular file."""
    for test, name in ((stat.S_ISDIR, "an existing directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def check_output_target(out: str | os.PathLike, option: str = "--out") -> OutputTarget:
    """The target ``out`` names under the rule of this module, or OutputTargetError naming it."""
    if str(out) == "-":
        return OutputTarget(None, stdout=True)
    named = Path(out).expanduser()
    via_link = None
    path = named
    if named.is_symlink():
        via_link = named
        path = Path(os.path.realpath(named))
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputTargetError(f"{option} {named}: cannot be inspected ({exc.strerror or exc})") from None
    if st is not None:
        kind = _kind(st.st_mode)
        if kind is not None:
            through = f" (the link points to {path})" if via_link else ""
            raise OutputTargetError(f"{option} {named} is {kind}{through}; give the path of a regular file, or - "
                                    "for standard output")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputTargetError(f"{option} {named}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputTargetError(f"{option} {named}: the directory {parent} is not writable")
    return OutputTarget(path, replaces=st is not None, via_link=via_link)
