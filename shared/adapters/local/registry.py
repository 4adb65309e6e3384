"""ModelRegistry on the MLflow model registry in the SQLite store under $BANKOPS_HOME."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import joblib
import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from shared.errors import NotFound
from shared.mlflow_model import ARTIFACT, log_pyfunc
from shared.model import BankMarketingModel
from shared.ports import ModelVersion

METRIC_TAG = "metric."
log = logging.getLogger("bankops.registry")


def _compile_for_batch(model: BankMarketingModel, wait_s: float) -> None:
    """Start compiling the new version's trees to native code in the background (seconds of CPU, at low
    priority, in a detached child), so its first large batch and its serving workers do not wait for them
    nor run on the libraries; wait up to `wait_s` for it (the child goes on past that). A failure here costs
    that speed only, never the registration."""
    from shared.serving.predictor import start_native_compilation

    try:
        start_native_compilation(model, wait_s)
    except Exception:
        log.warning("could not start compiling the new version's trees for batch scoring", exc_info=True)


T = TypeVar("T")


class UnchangedReads:
    """Registry reads kept while the SQLite store is unchanged, so a status page does not pay MLflow's queries again.

    `PRAGMA data_version` on a read-only connection of its own changes whenever any other connection commits
    to the file: every MLflow write, from this process or another (`bankops train` beside a running host), so a
    kept answer is never older than the store. Any other store URI: nothing is kept.
    """

    def __init__(self, tracking_uri: str) -> None:
        self.path = tracking_uri.removeprefix("sqlite:///") if tracking_uri.startswith("sqlite:///") else None
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._data_version: int | None = None
        self._kept: dict[tuple[str, ...], Any] = {}

    def _current(self) -> int | None:
        """The store's data version now; None when it cannot be read (no file yet)."""
        try:
            if self._connection is None:
                self._connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            row = self._connection.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            self._connection = None
            return None
        return int(row[0])

    def read(self, key: tuple[str, ...], fetch: Callable[[], T]) -> T:
        if self.path is None:
            return fetch()
        with self._lock:
            version = self._current()
            if version != self._data_version:
                self._kept.clear()
                self._data_version = version
            if version is not None and key in self._kept:
                found: T = self._kept[key]
                return found
        value = fetch()  # read after the version: a commit in between only makes the kept answer newer than its version
        with self._lock:
            if version is not None and version == self._data_version:
                self._kept[key] = value
        return value


class MlflowModelRegistry:
    """Versions of one registered model; metrics are kept as `metric.*` tags on each version."""

    def __init__(self, tracking_uri: str, model_name: str, *, compile_at_registration: bool,
                 native_wait_s: float = 0.0) -> None:
        """`compile_at_registration`: start compiling each new version's trees (Settings.native_trees and
        native_at_registration, passed by the composition root); `native_wait_s`: how long register() waits
        for that machine code (Settings.native_registration_wait_s)."""
        self.tracking_uri = tracking_uri
        self.compile_at_registration = compile_at_registration
        self.name = model_name
        self.native_wait_s = native_wait_s
        self.client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
        self._cache: dict[str, BankMarketingModel] = {}
        self._reads = UnchangedReads(tracking_uri)

    def _version(self, mv: Any) -> ModelVersion:
        tags = dict(mv.tags or {})
        metrics = {k[len(METRIC_TAG):]: float(v) for k, v in tags.items() if k.startswith(METRIC_TAG)}
        created = datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(timespec="seconds")
        return ModelVersion(
            name=self.name, version=str(mv.version), run_id=mv.run_id or "", created_at=created, metrics=metrics,
            tags={k: v for k, v in tags.items() if not k.startswith(METRIC_TAG)}, aliases=tuple(mv.aliases or ()),
        )

    def register(self, model: BankMarketingModel, *, run_id: str, metrics: Mapping[str, float],
                 tags: Mapping[str, str], input_example: Any) -> ModelVersion:
        active = mlflow.active_run()
        if active is None or active.info.run_id != run_id:
            raise RuntimeError("register() must be called inside the run that trained the model")
        info = log_pyfunc(model, input_example, self.name)
        version = str(info.registered_model_version)
        for key, value in metrics.items():
            self.client.set_model_version_tag(self.name, version, f"{METRIC_TAG}{key}", f"{value:.6g}")
        for tag, text in tags.items():
            self.client.set_model_version_tag(self.name, version, tag, text)
        if self.compile_at_registration:
            _compile_for_batch(model, self.native_wait_s)
        return self.get(version)

    def get(self, version: str | None = None) -> ModelVersion:
        if version is None:
            versions = self.list()
            if not versions:
                raise NotFound(f"no version of model {self.name!r} is registered yet; run `bankops train` first")
            return versions[-1]
        try:
            return self._version(self.client.get_model_version(self.name, str(version)))
        except MlflowException as exc:
            raise NotFound(f"model {self.name!r} has no version {version}; see `bankops models`") from exc

    def _list(self) -> list[ModelVersion]:
        try:
            found = self.client.search_model_versions(f"name='{self.name}'")
        except MlflowException:
            return []
        return sorted((self._version(mv) for mv in found), key=lambda v: int(v.version))

    def list(self) -> list[ModelVersion]:
        return list(self._reads.read(("list",), self._list))

    def load(self, version: str) -> BankMarketingModel:
        if version not in self._cache:
            self.get(version)
            local = mlflow.artifacts.download_artifacts(f"models:/{self.name}/{version}", tracking_uri=self.tracking_uri)
            self._cache[version] = joblib.load(Path(local) / "artifacts" / ARTIFACT)
        return self._cache[version]

    def model_uri(self, version: str) -> str:
        return f"models:/{self.name}/{version}"

    def set_alias(self, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(self.name, alias, str(version))

    def alias(self, alias: str) -> ModelVersion | None:
        return self._reads.read(("alias", alias), lambda: self._alias(alias))

    def _alias(self, alias: str) -> ModelVersion | None:
        try:
            return self._version(self.client.get_model_version_by_alias(self.name, alias))
        except MlflowException:
            return None
