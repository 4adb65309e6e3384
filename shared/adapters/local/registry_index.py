"""The local model registry read straight from MLflow's SQLite store, without importing MLflow.

Importing MLflow costs seconds of a short command's start-up (about 3 s on 2 idle cores), and
batch scoring only needs a version's number and its pickled model. MLflow keeps both in plain
tables (`model_versions`, `registered_model_aliases`) and the model as a file under the home's
artifact folder. This reads them read-only and answers None whenever anything is not as expected
(another schema, a version not READY, a location outside the home), so callers fall back on the
MLflow registry (`MlflowModelRegistry`), which stays the one writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:
    from shared.model import BankMarketingModel
    from shared.ports import ModelRegistry

ARTIFACT = "bank_marketing_model.joblib"  # = shared.mlflow_model.ARTIFACT (that module imports MLflow)


class LocalRegistryIndex:
    """Versions of one registered model in the SQLite store at `db`, artifacts under `artifacts`."""

    def __init__(self, db: Path, artifacts: Path, model_name: str) -> None:
        self.db, self.artifacts, self.name = db, artifacts.resolve(), model_name

    def _rows(self, sql: str, *args: object) -> list[tuple[object, ...]] | None:
        if not self.db.is_file():
            return None
        try:
            with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5) as db:
                return db.execute(sql, args).fetchall()
        except sqlite3.Error:  # locked for long, or not the schema this expects
            return None

    def version(self, requested: str | None) -> str | None:
        """The requested version if registered, else the champion, else the newest (None: ask MLflow)."""
        if requested is not None:
            rows = self._rows("SELECT version FROM model_versions WHERE name = ? AND version = ? AND current_stage != "
                              "'Deleted_Internal'", self.name, int(requested) if requested.isdigit() else -1)
        else:
            rows = self._rows("SELECT version FROM registered_model_aliases WHERE name = ? AND alias = 'champion' "
                              "AND workspace = 'default'", self.name)
            if rows == []:
                rows = self._rows("SELECT MAX(version) FROM model_versions WHERE name = ? AND current_stage != "
                                  "'Deleted_Internal'", self.name)
        if not rows or rows[0][0] is None:
            return None
        return str(rows[0][0])

    def model_file(self, version: str) -> Path | None:
        """The pickled model of a READY version, if it is a file under this home's artifacts."""
        rows = self._rows("SELECT storage_location, status FROM model_versions WHERE name = ? AND version = ?",
                          self.name, int(version) if version.isdigit() else -1)
        if not rows or rows[0][1] != "READY" or not isinstance(rows[0][0], str):
            return None
        location = urlparse(rows[0][0])
        if location.scheme != "file":
            return None
        path = (Path(unquote(location.path)) / "artifacts" / ARTIFACT).resolve()
        return path if path.is_relative_to(self.artifacts) and path.is_file() else None


class ServingReads:
    """What the scoring service reads of the registry: the version to serve and its model. On the local
    backend from the index (`index`), so a worker starts without importing MLflow (seconds of its start-up,
    and of the first prediction after `bankops up`); anything the index cannot answer, and every read on
    another backend (`index` None), goes to the registry `full()` builds (a new one each time: a registry
    caches what it loads, and a worker keeps only what it serves)."""

    def __init__(self, index: LocalRegistryIndex | None, full: Callable[[], ModelRegistry]) -> None:
        self.index, self.full = index, full

    def chosen_version(self, requested: str | None = None) -> str:
        """The requested version (checked), else the champion, else the newest."""
        from shared.ports import chosen_version

        found = self.index.version(requested) if self.index is not None else None
        return found if found is not None else chosen_version(self.full(), requested)

    def load(self, version: str) -> BankMarketingModel:
        file = self.index.model_file(version) if self.index is not None else None
        if file is None:
            return self.full().load(version)
        import joblib

        model: BankMarketingModel = joblib.load(file)
        return model
