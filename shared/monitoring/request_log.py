"""The structured request log: one JSON object a line, rotating under `$BANKOPS_HOME/logs`.

Each scoring worker process writes its own file (`requests-<pid>.jsonl`, rotated at 10 MB, 5
kept) so rotations never race between processes; readers merge every file by timestamp. An entry
says which key was used (`primary`, `secondary`, `none` or `invalid`), never the key itself.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

import orjson

PATTERN = "requests-*.jsonl*"
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5


class _Raw(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return str(record.msg)


class RequestLog:
    """Appends entries to this process's request log file (one buffered write and flush each)."""

    def __init__(self, folder: Path, *, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"requests-{os.getpid()}.jsonl"
        self._handler = RotatingFileHandler(self.path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True)
        self._handler.setFormatter(_Raw())
        self._logger = logging.getLogger(f"bankops.requestlog.{os.getpid()}.{id(self)}")
        self._logger.propagate = False  # the request log is its own sink, not a line of the service log
        self._logger.setLevel(logging.INFO)
        self._logger.addHandler(self._handler)

    def write(self, entry: dict[str, Any]) -> None:
        self._logger.info(orjson.dumps(entry).decode())

    def close(self) -> None:
        self._handler.close()


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
