"""The structured request log: one JSON object a line, rotating under `$BANKOPS_HOME/logs`.

Each scoring worker process writes its own file (`requests-<pid>.jsonl`, rotated at 10 MB, 5
kept) so rotations never race between processes; readers merge every file by timestamp. An entry
says which key was used (`primary`, `secondary`, `none` or `invalid`), never the key itself.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

PATTERN = "requests-*.jsonl*"
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5


class RequestLog:
    """Appends entries to this process's request log file: one buffered write and flush each, rotated
    by size kept in memory (no `logging` machinery and no stat per request on the hot path)."""

    def __init__(self, folder: Path, *, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"requests-{os.getpid()}.jsonl"
        self.max_bytes, self.backups = max_bytes, backups
        self._lock = threading.Lock()
        self._fh: BinaryIO | None = None
        self._size = 0

    def write(self, entry: dict[str, Any]) -> None:
        line = orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE)
        with self._lock:
            if self._fh is None:
                self._fh = open(self.path, "ab")  # noqa: SIM115 - kept open for the worker's lifetime
                self._size = self._fh.tell()
            elif self._size + len(line) > self.max_bytes:
                self._rotate()
            assert self._fh is not None
            self._fh.write(line)
            self._fh.flush()
            self._size += len(line)

    def _rotate(self) -> None:
        assert self._fh is not None
        self._fh.close()
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.backups:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._fh = open(self.path, "ab")  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def log_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(PATTERN)) if folder.is_dir() else []


def read_entries(folder: Path, since: datetime | None = None) -> list[dict[str, Any]]:
    """Every entry of every worker's file (rotated ones too), oldest first; `since` filters by time."""
    entries: list[dict[str, Any]] = []
    cutoff = since.isoformat(timespec="milliseconds") if since else None
    for path in log_files(folder):
        for entry in _lines(path):
            if cutoff is None or str(entry.get("timestamp", "")) >= cutoff:
                entries.append(entry)
    entries.sort(key=lambda e: str(e.get("timestamp", "")))
    return entries


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with open(path, "rb") as fh:
            for line in fh:
                try:
                    entry = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue  # a line cut by a crash mid-write
                if isinstance(entry, dict):
                    yield entry
    except FileNotFoundError:
        return
