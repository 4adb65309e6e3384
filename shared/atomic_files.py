"""Write a file so that readers see the old content or the new one, never a part of it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _prefix(path: Path) -> str:
    return f".{path.name}."


def remove_leftovers(path: Path) -> int:
    """Delete the temporary files of `path` that a writer killed mid-write left behind; call it where no
    other writer of `path` runs at the same time (under the writers' lock, or at start-up)."""
    removed = 0
    for leftover in path.parent.glob(_prefix(path) + "*") if path.parent.is_dir() else []:
        leftover.unlink(missing_ok=True)
        removed += 1
    return removed


def write_atomically(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`.

    A process killed (SIGKILL) between the two leaves the temporary file: `remove_leftovers` clears it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_prefix(path))
    try:
        with os.fdopen(fd, "wb") as fh:
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
