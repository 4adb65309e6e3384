"""Dataset versions on the local disk: content-addressed files plus a SQLite catalog.

A version is written in full (data, holdout) before its catalog row commits, so a crash leaves
at most an unreferenced file, never a half-registered version.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from shared.atomic_files import write_atomically
from shared.errors import NotFound
from shared.ports import DatasetVersion
from shared.sqlite_tx import immediate_transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dataset_versions (
    name TEXT NOT NULL, version INTEGER NOT NULL, content_hash TEXT NOT NULL, rows INTEGER NOT NULL,
    positive_share REAL NOT NULL, created_at TEXT NOT NULL, uri TEXT NOT NULL, source TEXT NOT NULL,
    PRIMARY KEY (name, version), UNIQUE (name, content_hash)
)"""


class LocalDatasetStore:
    """DatasetStore on `datastore/datasets/<name>/<hash>.csv` and `catalog.db`."""

    def __init__(self, root: Path, catalog: Path) -> None:
        self.root = root
        self.catalog = catalog
        catalog.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.catalog, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    @staticmethod
    def _version(row: sqlite3.Row) -> DatasetVersion:
        return DatasetVersion(**dict(row))

    def find(self, name: str, content_hash: str) -> DatasetVersion | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM dataset_versions WHERE name=? AND content_hash=?", (name, content_hash)).fetchone()
        return self._version(row) if row else None

    def add(self, name: str, content: bytes, *, content_hash: str, rows: int, positive_share: float,
            holdout: np.ndarray, source: str) -> DatasetVersion:
        data_path = self.root / name / f"{content_hash}.csv"
        write_atomically(data_path, content)
        write_atomically(data_path.with_suffix(".holdout.json"), json.dumps([int(i) for i in holdout]).encode())
        with immediate_transaction(self.catalog) as db:
            existing = db.execute("SELECT * FROM dataset_versions WHERE name=? AND content_hash=?", (name, content_hash)).fetchone()
            if existing:  # the same content was added concurrently: that version stands
                return self._version(existing)
            version = db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM dataset_versions WHERE name=?", (name,)).fetchone()[0]
            created = datetime.now(UTC).isoformat(timespec="seconds")
            db.execute(
                "INSERT INTO dataset_versions VALUES (?,?,?,?,?,?,?,?)",
                (name, version, content_hash, rows, positive_share, created, data_path.as_uri(), source),
            )
        return DatasetVersion(name, version, content_hash, rows, positive_share, created, data_path.as_uri(), source)

    def get(self, name: str, version: int | None = None) -> DatasetVersion:
        with self._connect() as db:
            if version is None:
                row = db.execute("SELECT * FROM dataset_versions WHERE name=? ORDER BY version DESC LIMIT 1", (name,)).fetchone()
            else:
                row = db.execute("SELECT * FROM dataset_versions WHERE name=? AND version=?", (name, version)).fetchone()
        if row is None:
            which = f"version {version} of dataset {name!r}" if version else f"dataset {name!r}"
            raise NotFound(f"{which} is not registered; see `bankops data list`, or register a file with `bankops data register PATH`")
        return self._version(row)

    def list(self, name: str | None = None) -> list[DatasetVersion]:
        with self._connect() as db:
            if name is None:
                rows = db.execute("SELECT * FROM dataset_versions ORDER BY name, version").fetchall()
            else:
                rows = db.execute("SELECT * FROM dataset_versions WHERE name=? ORDER BY version", (name,)).fetchall()
        return [self._version(r) for r in rows]

    def _path(self, dataset: DatasetVersion) -> Path:
        return self.root / dataset.name / f"{dataset.content_hash}.csv"

    def read(self, dataset: DatasetVersion) -> bytes:
        return self._path(dataset).read_bytes()

    def holdout(self, dataset: DatasetVersion) -> np.ndarray:
        return np.asarray(json.loads(self._path(dataset).with_suffix(".holdout.json").read_text()), dtype=np.int64)
