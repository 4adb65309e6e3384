"""AutoML search with FLAML: cross-validated trials over the learners, within a time budget.

Each finished trial is read back from FLAML's own log while the search runs, so the caller can
show progress and record every trial, without patching FLAML.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shared.errors import InvalidInput
from shared.training.learners import SEARCHED

# Our (Azure ML) metric names -> FLAML's, and whether greater is better.
METRICS: dict[str, tuple[str, bool]] = {
    "AUC_weighted": ("roc_auc", True),
    "accuracy": ("accuracy", True),
    "average_precision_score_weighted": ("ap", True),
    "f1_score_weighted": ("f1", True),
    "log_loss": ("log_loss", False),
}


def flaml_metric(metric: str) -> tuple[str, bool]:
    if metric not in METRICS:
        raise InvalidInput(f"unknown primary metric {metric!r}; choose one of: {', '.join(METRICS)}")
    return METRICS[metric]


def plain(value: Any) -> Any:
    """numpy scalars to Python ones, so configs go to JSON and MLflow unchanged."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class Trial:
    """One configuration tried by the search, scored by cross-validation."""

    number: int
    learner: str
    config: dict[str, Any]
    cv_score: float
    train_time_s: float
    wall_clock_s: float


@dataclass(frozen=True)
class SearchResult:
    trials: list[Trial]
    best_config: dict[str, dict[str, Any]]  # per learner
    best_score: dict[str, float]  # per learner, CV, in the metric's own scale
    greater_is_better: bool

    def ranked_learners(self) -> list[str]:
        return sorted(self.best_score, key=self.best_score.__getitem__, reverse=self.greater_is_better)

    def top_trials(self, per_learner: int) -> list[Trial]:
        """The `per_learner` best distinct configs of each learner, best first overall."""
        ordered = sorted(self.trials, key=lambda t: t.cv_score, reverse=self.greater_is_better)
        kept: list[Trial] = []
        for trial in ordered:
            same = [t for t in kept if t.learner == trial.learner]
            if len(same) < per_learner and all(t.config != trial.config for t in same):
                kept.append(trial)
        return kept


def _trial_from_log(line: str, greater_is_better: bool) -> Trial | None:
    record = json.loads(line)
    if "learner" not in record:
        return None
    loss = float(record["validation_loss"])
    return Trial(
        number=int(record["record_id"]) + 1,
        learner=record["learner"],
        config={k: plain(v) for k, v in record["config"].items()},
        cv_score=1.0 - loss if greater_is_better else loss,
        train_time_s=float(record["trial_time"]),
        wall_clock_s=float(record["wall_clock_time"]),
    )


class _LogTail(threading.Thread):
    """Follows FLAML's JSON-lines log and reports each new trial."""

    def __init__(self, path: Path, greater: bool, on_trial: Callable[[Trial], None]) -> None:
        super().__init__(daemon=True)
        self.path, self.greater, self.on_trial = path, greater, on_trial
        self.trials: list[Trial] = []
        self._done = threading.Event()
        self._offset = 0

    def poll(self) -> None:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as fh:
            fh.seek(self._offset)
            while (line := fh.readline()).endswith("\n"):
                self._offset = fh.tell()
                trial = _trial_from_log(line, self.greater)
                if trial is not None:
                    self.trials.append(trial)
                    self.on_trial(trial)

    def run(self) -> None:
        while not self._done.wait(0.25):
            self.poll()

    def finish(self) -> list[Trial]:
        self._done.set()
        self.join()
        self.poll()
        return self.trials


def _automl_class() -> type:
    from flaml.automl import AutoML

    class SearchOnly(AutoML):
        """FLAML's AutoML without its final refit of the best config on all rows: with
        cross-validation FLAML always refits, after the budget, a model we never use (the blend
        builds its own), which costs seconds past the search budget."""

        def _search(self) -> None:
            self._state.retrain_final = False  # type: ignore[attr-defined]  # set on the state by FLAML's fit, not declared
            super()._search()  # type: ignore[no-untyped-call]  # FLAML's private search loop has no annotations

    return SearchOnly


def run_search(
    x: pd.DataFrame,
    y: np.ndarray,
    *,
    budget_s: float,
    metric: str = "AUC_weighted",
    folds: int = 5,
    seed: int = 42,
    learners: tuple[str, ...] = SEARCHED,
    on_trial: Callable[[Trial], None] = lambda _t: None,
) -> SearchResult:
    """Search configs of `learners` for at most `budget_s` seconds, scoring each by k-fold CV."""
    name, greater = flaml_metric(metric)
    with tempfile.TemporaryDirectory(prefix="bankops-flaml-") as tmp:
        log = Path(tmp) / "trials.jsonl"
        tail = _LogTail(log, greater, on_trial)
        tail.start()
        automl = _automl_class()()
        started = time.monotonic()
        try:
            automl.fit(
                x, y, task="classification", metric=name, time_budget=budget_s,
                estimator_list=list(learners), eval_method="cv", n_splits=folds, split_type="stratified",
                log_file_name=str(log), log_type="all", seed=seed, verbose=0, mlflow_logging=False,
                retrain_full=False, early_stop=True, n_jobs=-1,
            )
        finally:
            trials = tail.finish()
        del started
    best_config = {k: {p: plain(v) for p, v in c.items()} for k, c in automl.best_config_per_estimator.items() if c}
    best_score = {
        k: (1.0 - loss if greater else loss)
        for k, loss in automl.best_loss_per_estimator.items()
        if k in best_config and np.isfinite(loss)
    }
    return SearchResult(trials=trials, best_config=best_config, best_score=best_score, greater_is_better=greater)
