"""Trainer that runs the training pipeline in this process (FLAML, MLflow on SQLite)."""

from __future__ import annotations

from shared.ports import DatasetStore, ModelRegistry, RunTracker, TrainingRequest, TrainingSubmission
from shared.training.pipeline import TrainingPipeline, TrainingProgress


class LocalTrainer:
    def __init__(self, *, datasets: DatasetStore, registry: ModelRegistry, tracker: RunTracker,
                 progress: TrainingProgress | None = None) -> None:
        self.pipeline = TrainingPipeline(datasets=datasets, registry=registry, tracker=tracker, progress=progress)

    def train(self, request: TrainingRequest) -> TrainingSubmission:
        outcome = self.pipeline.run(request)
        return TrainingSubmission(
            run_id=outcome.run_id, dataset=request.dataset.ref, model_version=outcome.model_version.version,
            details={"AUC_weighted": outcome.metrics["AUC_weighted"], "trials": outcome.trials, "ensemble": outcome.ensemble},
        )
