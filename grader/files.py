"""Folders to write into, made and tried before anything is written; and small files written atomically: the new
bytes go to a temporary file beside the old one, which they replace in one rename, so a crash, a full disk or Ctrl-C
leaves the old file or the new one, never half of one, and no temporary file behind."""

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import KitError
from .i18n import say


def write_atomically(path: Path, data: bytes) -> None:
    """path holds data, or (on any error, which is raised) what it held before."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def make_folder(folder: Path, cache: bool = False) -> Path:
    """folder, made with its parents and tried with a file; a KitError that says what to do where that fails (a
    read-only disk, a path below a file). cache: the folder is the kit's cache, not an --out."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        key = "files.cache_unwritable" if cache else "files.out_unwritable"
        raise KitError(say(key, folder=folder, why=e.strerror or type(e).__name__)) from None
    return folder
