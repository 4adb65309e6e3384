"""Trainer that runs the training pipeline in this process (FLAML, MLflow on SQLite).

The pipeline (FLAML and the model libraries) is imported at the first run, not when the trainer is
built: every local command builds the automation's ports, few of them train.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.ports import DatasetStore, ModelRegistry, RunTracker, TrainingRequest, TrainingSubmission

if TYPE_CHECKING:
    from shared.training.pipeline import TrainingPipeline, TrainingProgress


class LocalTrainer:
    def __init__(self, *, datasets: DatasetStore, registry: ModelRegistry, tracker: RunTracker,
                 progress: TrainingProgress | None = None) -> None:
        self.datasets, self.registry, self.tracker, self.progress = datasets, registry, tracker, progress
        self._pipeline: TrainingPipeline | None = None

    @property
    def pipeline(self) -> TrainingPipeline:
        if self._pipeline is None:
            from shared.training.pipeline import TrainingPipeline

            self._pipeline = TrainingPipeline(datasets=self.datasets, registry=self.registry, tracker=self.tracker,
                                              progress=self.progress)
        return self._pipeline

    def train(self, request: TrainingRequest) -> TrainingSubmission:
        outcome = self.pipeline.run(request)
        return TrainingSubmission(
            run_id=outcome.run_id, dataset=request.dataset.ref, model_version=outcome.model_version.version,
            details={"AUC_weighted": outcome.metrics["AUC_weighted"], "trials": outcome.trials, "ensemble": outcome.ensemble},
        )
