"""In-memory fakes of the ports in shared/ports.py, for tests of logic that needs no real backend.

Each fake keeps the contract of the adapter it stands in for (the same errors, ordering and
idempotency), and exposes what it recorded so a test can assert on it.
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import NotFound
from shared.model import BankMarketingModel
from shared.ports import DatasetVersion, ModelVersion, RunReport, TrialRecord


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class InMemoryDatasetStore:
    """Stands in for LocalDatasetStore (files + SQLite catalog): versions kept in dicts, keyed by content hash."""

    def __init__(self) -> None:
        self._versions: list[DatasetVersion] = []
        self._content: dict[tuple[str, int], bytes] = {}
        self._holdout: dict[tuple[str, int], np.ndarray] = {}

    def find(self, name: str, content_hash: str) -> DatasetVersion | None:
        return next((v for v in self._versions if v.name == name and v.content_hash == content_hash), None)

    def add(self, name: str, content: bytes, *, content_hash: str, rows: int, positive_share: float,
            holdout: np.ndarray, source: str) -> DatasetVersion:
        existing = self.find(name, content_hash)
        if existing is not None:
            return existing
        number = 1 + max((v.version for v in self._versions if v.name == name), default=0)
        version = DatasetVersion(name=name, version=number, content_hash=content_hash, rows=rows,
                                 positive_share=positive_share, created_at=_now(),
                                 uri=f"memory://{name}/{content_hash}.csv", source=source)
        self._content[(name, number)] = bytes(content)
        self._holdout[(name, number)] = np.array(holdout, dtype=np.int64, copy=True)
        self._versions.append(version)
        return version

    def get(self, name: str, version: int | None = None) -> DatasetVersion:
        found = [v for v in self._versions if v.name == name and (version is None or v.version == version)]
        if not found:
            raise NotFound(f"dataset {name!r} version {version} is not registered")
        return max(found, key=lambda v: v.version)

    def list(self, name: str | None = None) -> list[DatasetVersion]:
        return sorted((v for v in self._versions if name is None or v.name == name), key=lambda v: (v.name, v.version))

    def read(self, dataset: DatasetVersion) -> bytes:
        return self._content[(dataset.name, dataset.version)]

    def holdout(self, dataset: DatasetVersion) -> np.ndarray:
        return self._holdout[(dataset.name, dataset.version)].copy()


class InMemoryModelRegistry:
    """Stands in for MlflowModelRegistry: versions "1", "2", ... of one model name.

    The model is pickled on register and unpickled on load, as the real registry serializes it,
    so a model that cannot be saved fails here too.
    """

    def __init__(self, name: str = "bankmarketing-classifier") -> None:
        self.name = name
        self._versions: list[ModelVersion] = []
        self._models: dict[str, bytes] = {}
        self._aliases: dict[str, str] = {}
        self.input_examples: dict[str, Any] = {}

    def _with_aliases(self, v: ModelVersion) -> ModelVersion:
        return replace(v, aliases=tuple(sorted(a for a, target in self._aliases.items() if target == v.version)))

    def register(self, model: BankMarketingModel, *, run_id: str, metrics: Mapping[str, float],
                 tags: Mapping[str, str], input_example: Any) -> ModelVersion:
        version = str(len(self._versions) + 1)
        self._models[version] = pickle.dumps(model)
        self.input_examples[version] = input_example
        self._versions.append(ModelVersion(name=self.name, version=version, run_id=run_id, created_at=_now(),
                                           metrics={k: float(v) for k, v in metrics.items()}, tags=dict(tags)))
        return self.get(version)

    def get(self, version: str | None = None) -> ModelVersion:
        if version is None:
            if not self._versions:
                raise NotFound(f"no version of model {self.name!r} is registered yet")
            return self._with_aliases(self._versions[-1])
        for v in self._versions:
            if v.version == str(version):
                return self._with_aliases(v)
        raise NotFound(f"model {self.name!r} has no version {version}")

    def list(self) -> list[ModelVersion]:
        return [self._with_aliases(v) for v in self._versions]

    def load(self, version: str) -> BankMarketingModel:
        self.get(version)
        return pickle.loads(self._models[str(version)])

    def set_alias(self, alias: str, version: str) -> None:
        self.get(version)
        self._aliases[alias] = str(version)

    def alias(self, alias: str) -> ModelVersion | None:
        return self.get(self._aliases[alias]) if alias in self._aliases else None


@dataclass
class RecordedRun:
    """What the fake tracker keeps of one run; artifacts are copied (name -> bytes) when logged."""

    run_id: str
    name: str
    parent_id: str | None
    started_at: str
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)
    status: str = "RUNNING"


class InMemoryRunTracker:
    """Stands in for MlflowTracker: nested runs in a list; log_* calls go to the innermost open run.

    Unlike MLflow, logging with no open run raises, so a step that logs outside its run is caught.
    """

    def __init__(self) -> None:
        self.runs: list[RecordedRun] = []
        self._stack: list[RecordedRun] = []
        self._ids = itertools.count(1)

    # -- the port --
    def _new(self, name: str, tags: Mapping[str, str] | None) -> RecordedRun:
        parent = self._stack[-1].run_id if self._stack else None
        run = RecordedRun(run_id=f"run-{next(self._ids):04d}", name=name, parent_id=parent, started_at=_now(),
                          tags=dict(tags or {}))
        self.runs.append(run)
        return run

    def _active(self) -> RecordedRun:
        if not self._stack:
            raise RuntimeError("no active run: log_* must be called inside tracker.run()")
        return self._stack[-1]

    @contextmanager
    def run(self, name: str, *, tags: Mapping[str, str] | None = None) -> Iterator[str]:
        run = self._new(name, tags)
        self._stack.append(run)
        try:
            yield run.run_id
        except BaseException:
            run.status = "FAILED"
            raise
        else:
            run.status = "FINISHED"
        finally:
            self._stack.pop()

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._active().params.update({k: str(v) for k, v in params.items()})

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        self._active().metrics.update({k: float(v) for k, v in metrics.items()})

    def log_artifact(self, path: Path) -> None:
        self._active().artifacts[Path(path).name] = Path(path).read_bytes()

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._active().tags.update({k: str(v) for k, v in tags.items()})

    def log_child(self, name: str, *, params: Mapping[str, Any], metrics: Mapping[str, float],
                  tags: Mapping[str, str]) -> None:
        run = self._new(name, tags)
        run.params = {k: str(v) for k, v in params.items()}
        run.metrics = {k: float(v) for k, v in metrics.items()}
        run.status = "FINISHED"

    def report(self, run_id: str | None = None) -> RunReport:
        if run_id is None:
            pipelines = [r for r in self.runs if r.tags.get("bankops.kind") == "pipeline"]
            if not pipelines:
                raise NotFound("no training run yet")
            run = pipelines[-1]
        else:
            run = self.get(run_id)
            while run.tags.get("bankops.kind") != "pipeline" and run.parent_id:
                run = self.get(run.parent_id)
        steps = {r.name: r for r in self.children(run.run_id)}
        trials = []
        if "automl" in steps:
            for t in self.children(steps["automl"].run_id):
                if t.tags.get("bankops.kind") == "trial":
                    trials.append(TrialRecord(learner=t.params.get("learner", "?"),
                                              cv_score=t.metrics.get("cv_score", float("nan")),
                                              train_time_s=t.metrics.get("train_time_s", float("nan")),
                                              params={k: v for k, v in t.params.items() if k != "learner"}))
        holdout = dict(steps["evaluate"].metrics) if "evaluate" in steps else {}
        return RunReport(run_id=run.run_id, status=run.status, started_at=run.started_at, params=dict(run.params),
                         tags=dict(run.tags), holdout_metrics=holdout, trials=trials)

    # -- for assertions --
    def get(self, run_id: str) -> RecordedRun:
        for run in self.runs:
            if run.run_id == run_id:
                return run
        raise NotFound(f"no run with id {run_id!r}")

    def children(self, run_id: str) -> list[RecordedRun]:
        return [r for r in self.runs if r.parent_id == run_id]

    def named(self, name: str) -> RecordedRun:
        found = [r for r in self.runs if r.name == name]
        if len(found) != 1:
            raise AssertionError(f"expected one run named {name!r}, found {len(found)}")
        return found[0]
