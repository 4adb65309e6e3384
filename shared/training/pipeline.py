"""The training pipeline: validate data -> split -> AutoML -> evaluate -> register.

Each step is a nested run under one pipeline run, so a user sees in MLflow what happened, how
long it took and what it produced. The holdout is the one kept with the dataset version, so
every model of a version is judged on the same rows.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from shared import schema
from shared.dataset_registration import load_frame
from shared.features import FeatureEncoder, check_exclusions
from shared.model import BankMarketingModel
from shared.ports import DatasetStore, DatasetVersion, ModelRegistry, ModelVersion, RunTracker, TrainingRequest
from shared.training.automl import run_automl
from shared.training.evaluate import PREDICTED_YES_KEYS, holdout_metrics, predicted_yes_range
from shared.training.learners import LEARNER_NAMES
from shared.training.search import SearchResult, Trial, flaml_metric

SEARCH_SHARE = 0.3  # of the budget; the rest goes to out-of-fold blending, then refitting the picked members
# Kept back from the AutoML step for evaluate and register (about 3-5 s after a 60 s budget), so
# --budget bounds the whole run rather than the AutoML step alone.
FINISH_SHARE = 0.08
HEADLINE = ("AUC_weighted", "accuracy", "recall_yes", "precision_yes", "f1_score_weighted", "log_loss")


@dataclass(frozen=True)
class TrainingOutcome:
    run_id: str
    dataset: DatasetVersion
    model_version: ModelVersion
    metrics: dict[str, float]
    cv_score: float
    trials: int
    ensemble: str
    duration_s: float
    warnings: list[str] = field(default_factory=list)
    features_dropped: list[str] = field(default_factory=list)  # left out by the AutoML as noise


class TrainingProgress(Protocol):
    """What a long training run reports while it works."""

    def step(self, name: str) -> None: ...

    def search_started(self, budget_s: float) -> None: ...

    def trial(self, trial: Trial, best: Trial) -> None: ...


class SilentProgress:
    def step(self, name: str) -> None: ...

    def search_started(self, budget_s: float) -> None: ...

    def trial(self, trial: Trial, best: Trial) -> None: ...


def _target(frame: pd.DataFrame) -> np.ndarray:
    target: np.ndarray = (frame[schema.TARGET] == schema.POSITIVE).to_numpy(dtype=np.int64)
    return target


class TrainingPipeline:
    """Runs one training request against the ports."""

    def __init__(self, *, datasets: DatasetStore, registry: ModelRegistry, tracker: RunTracker,
                 progress: TrainingProgress | None = None) -> None:
        self.datasets, self.registry, self.tracker = datasets, registry, tracker
        self.progress = progress or SilentProgress()

    def run(self, request: TrainingRequest) -> TrainingOutcome:
        flaml_metric(request.metric)  # fail before any work on an unknown metric or column
        check_exclusions(request.exclude_columns)
        started = time.monotonic()
        dataset = request.dataset
        with self.tracker.run("training-pipeline", tags={"bankops.kind": "pipeline", "bankops.dataset": dataset.ref,
                                                          "bankops.reason": request.reason,
                                                          **({"bankops.provisional": "true"} if request.provisional else {})}) as run_id:
            self.tracker.log_params({"dataset": dataset.ref, "dataset_hash": dataset.content_hash,
                                     "budget_s": request.budget_s, "primary_metric": request.metric,
                                     "exclude_columns": ",".join(request.exclude_columns) or "-", "cv_folds": request.folds,
                                     "seed": request.seed})
            frame, warnings = self._validate(dataset, request)
            train, holdout = self._split(frame, dataset)
            model, cv_score, n_trials, dropped = self._automl(train, request, started)
            metrics = self._evaluate(model, holdout, request.seed, pictures=not request.provisional)
            version = self._register(model, holdout, metrics, run_id, dataset, request, cv_score)
            self.tracker.log_metrics({f"holdout_{k}": metrics[k] for k in HEADLINE} | {"cv_score": cv_score})
            self.tracker.set_tags({"bankops.model_version": version.version, "bankops.ensemble": model.describe()})
        return TrainingOutcome(run_id=run_id, dataset=dataset, model_version=version, metrics=metrics, cv_score=cv_score,
                               trials=n_trials, ensemble=model.describe(), duration_s=time.monotonic() - started,
                               warnings=warnings, features_dropped=dropped)

    def _validate(self, dataset: DatasetVersion, request: TrainingRequest) -> tuple[pd.DataFrame, list[str]]:
        self.progress.step("validate data")
        with self.tracker.run("validate-data"):
            frame = load_frame(self.datasets, dataset)
            warnings = [
                f"'{c}' is only known after the call ends; train with --pre-call (--exclude-columns {c}) for a pre-call model"
                for c in schema.LEAKY_FEATURES if c not in request.exclude_columns
            ]
            self.tracker.log_metrics({"rows": len(frame), "positive_share": float(_target(frame).mean())})
            self.tracker.set_tags({"warnings": " | ".join(warnings) or "none"})
        return frame, warnings

    def _split(self, frame: pd.DataFrame, dataset: DatasetVersion) -> tuple[pd.DataFrame, pd.DataFrame]:
        self.progress.step("split")
        with self.tracker.run("split"):
            held = self.datasets.holdout(dataset)
            mask = np.zeros(len(frame), dtype=bool)
            mask[held] = True
            train, holdout = frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)
            self.tracker.log_metrics({"train_rows": len(train), "holdout_rows": len(holdout)})
        return train, holdout

    def _automl(self, train: pd.DataFrame, request: TrainingRequest,
                started: float) -> tuple[BankMarketingModel, float, int, list[str]]:
        self.progress.step("automl")
        y = _target(train)
        encoder = FeatureEncoder.fit(train, y, exclude=request.exclude_columns)
        x = encoder.transform(train)
        best: list[Trial] = []
        greater = flaml_metric(request.metric)[1]

        def on_trial(trial: Trial) -> None:
            if not best or ((trial.cv_score > best[0].cv_score) == greater and trial.cv_score != best[0].cv_score):
                best[:] = [trial]
            self.progress.trial(trial, best[0])

        def on_search_done(result: SearchResult) -> None:
            for t in result.trials:
                self.tracker.log_child(f"trial-{t.number:03d}-{t.learner}", params={"learner": t.learner, **t.config},
                                       metrics={"cv_score": t.cv_score, "train_time_s": t.train_time_s,
                                                "wall_clock_s": t.wall_clock_s},
                                       tags={"bankops.kind": "trial", "learner": t.learner})
            self.progress.step("ensemble")

        with self.tracker.run("automl", tags={"bankops.kind": "automl"}):
            result = run_automl(x, y, list(encoder.columns), budget_s=request.budget_s * (1 - FINISH_SHARE), started=started,
                                metric=request.metric,
                                folds=request.folds, seed=request.seed, learners=request.learners, search_share=SEARCH_SHARE,
                                on_search_started=self.progress.search_started, on_trial=on_trial,
                                on_search_done=on_search_done)
            dropped = result.features.dropped
            model = result.model(encoder)
            ranked = result.search.ranked_learners()  # empty when no search trial finished in a tiny budget
            best_learner = LEARNER_NAMES[ranked[0]] if ranked else "none (portfolio blend only)"
            cv_score = result.cv_score
            self.tracker.log_params({"best_learner": best_learner, "ensemble": model.describe(),
                                     "trials": len(result.trials), "features": ",".join(model.encoder.columns),
                                     # columns whose shuffling did not lower the probe's out-of-fold score
                                     "features_dropped": ",".join(dropped) or "none",
                                     "feature_selection": result.features.skipped or f"{result.features.seconds:.1f}s",
                                     # members served by one fold model (4/5 of the rows): no time left to refit them
                                     "members_not_refit": ",".join(result.blend.unrefit) or "none"})
            blend_score = {"oof_score_blend": result.blend.oof_score} if np.isfinite(result.blend.oof_score) else {}
            self.tracker.log_metrics({"best_cv_score": cv_score, "trials": len(result.trials)} | blend_score
                                     | {f"oof_score_{k}": v for k, v in result.blend.candidate_scores.items()}
                                     | {f"probe_importance_{k}": v for k, v in result.features.importance.items()})
        self.tracker.set_tags({"bankops.features_dropped": ",".join(dropped)})
        return model, cv_score, len(result.trials), dropped

    def _evaluate(self, model: BankMarketingModel, holdout: pd.DataFrame, seed: int, pictures: bool = True) -> dict[str, float]:
        """Holdout metrics; with `pictures`, the curves and the permutation importance too (a quick provisional
        model skips them: they cost about as long as its search, and the full model that replaces it has them)."""
        self.progress.step("evaluate")
        y = _target(holdout)
        with self.tracker.run("evaluate"), tempfile.TemporaryDirectory() as tmp:
            p = model.predict_proba(holdout)
            metrics = holdout_metrics(y, p) | predicted_yes_range(p, model.threshold, seed=seed)  # the drift alert's baseline
            self.tracker.log_metrics(metrics)
            if not pictures:
                return metrics
            from shared.training import plots  # matplotlib: a local training run's dependency, not the function app's

            out = Path(tmp)
            importance = plots.permutation_importance(holdout, y, model.predict_proba, list(model.encoder.columns), seed=seed)
            for path in (
                plots.roc_curve(y, p, out / "roc_curve.png"),
                plots.precision_recall_curve(y, p, out / "precision_recall_curve.png"),
                plots.confusion_matrix(y, p, out / "confusion_matrix.png"),
                plots.calibration(y, p, out / "calibration_curve.png"),
                plots.feature_importance(importance, out / "feature_importance.png"),
            ):
                self.tracker.log_artifact(path)
            importance.to_frame("auc_drop").to_csv(out / "feature_importance.csv")
            self.tracker.log_artifact(out / "feature_importance.csv")
        return metrics

    def _register(self, model: BankMarketingModel, holdout: pd.DataFrame, metrics: dict[str, float], pipeline_run: str,
                  dataset: DatasetVersion, request: TrainingRequest, cv_score: float) -> ModelVersion:
        self.progress.step("register")
        example = holdout[list(schema.FEATURES)].head(2).reset_index(drop=True)
        with self.tracker.run("register") as run_id:
            version = self.registry.register(
                model, run_id=run_id, metrics={k: metrics[k] for k in HEADLINE} | {"cv_score": cv_score}
                | {k: metrics[k] for k in PREDICTED_YES_KEYS if k in metrics},
                tags={"dataset": dataset.ref, "dataset_hash": dataset.content_hash, "pipeline_run": pipeline_run,
                      "ensemble": model.describe(), "primary_metric": request.metric,
                      "exclude_columns": ",".join(request.exclude_columns), "budget_s": f"{request.budget_s:g}",
                      **({"provisional": "true"} if request.provisional else {})},
                input_example=example,
            )
            self.tracker.set_tags({"bankops.model_version": version.version})
        return version


def describe_config(config: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in config.items())
