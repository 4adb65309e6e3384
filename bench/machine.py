"""What the benchmarks share about the machine: the bench lock and the peers' own virtual environments."""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def machine_lock(path: Path | None, log: Callable[[str], None] = lambda _line: None) -> Iterator[None]:
    """Hold an exclusive flock(2) on `path` (as flock(1) takes it; None: no lock), so two benches on a shared
    machine never overlap."""
    if path is None:
        yield
        return
    with open(path, "a") as fh:
        log(f"waiting for the lock {path}")
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def peer_venv(venv: Path, install: list[str], stamp_text: str, log: Callable[[str], None]) -> Path:
    """A virtual environment of its own for a peer, with `pip install *install`; made again when `stamp_text`
    (what it was made from) differs from the stamp kept in it."""
    stamp = venv / ".installed"
    if stamp.exists() and stamp.read_text(encoding="utf-8") == stamp_text:
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    log(f"creating {venv} ({' '.join(install)}; a few minutes, once)")
    python = shutil.which("python3.11") or sys.executable
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *install], check=True)
    stamp.write_text(stamp_text, encoding="utf-8")
    return venv
