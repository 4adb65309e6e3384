"""Trainer contract: the in-process pipeline and an Azure ML AutoML pipeline job (fake MLClient) end in the same place.

A local run returns with its model registered; an Azure ML run is only submitted, and its model
is registered from the run when RunCompleted arrives. `finish` plays that part: for Azure it
replays the job's end (the AutoML step, its best child's MLflow model) and registers from the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from shared import schema
from shared.adapters.azure.registry import AzureModelRegistry
from shared.adapters.azure.trainer import AzureTrainer
from shared.adapters.local.datasets import LocalDatasetStore
from shared.adapters.local.registry import MlflowModelRegistry
from shared.adapters.local.trainer import LocalTrainer
from shared.config import load_settings
from shared.dataset_registration import load_frame, register_dataset
from shared.ports import DatasetVersion, ModelRegistry, ModelVersion, Trainer, TrainingSubmission
from shared.training.pipeline import TrainingRequest
from tests import samples
from tests.contract.conftest import BACKENDS


@dataclass
class Rig:
    trainer: Trainer
    registry: ModelRegistry
    dataset: DatasetVersion
    finish: Callable[[TrainingSubmission], ModelVersion]


def automl_output(frame: pd.DataFrame, folder: Path) -> Path:
    """An MLflow sklearn model as AutoML's best child leaves it in outputs/mlflow-model/ (raw columns in, yes/no out)."""
    categorical = [c for c in schema.FEATURES if c not in schema.INTEGER_FEATURES + schema.FLOAT_FEATURES]
    model = make_pipeline(make_column_transformer((OneHotEncoder(handle_unknown="ignore"), categorical), remainder=StandardScaler()),
                          LogisticRegression(max_iter=300))
    features = frame[list(schema.FEATURES)].astype({c: "float64" for c in schema.INTEGER_FEATURES + schema.FLOAT_FEATURES})
    model.fit(features, frame[schema.TARGET])
    mlflow.sklearn.save_model(model, str(folder))
    return folder


@pytest.fixture(params=BACKENDS)
def rig(request: pytest.FixtureRequest, tmp_path: Path, mlflow_uri: str, model_name: str, tracker: Any) -> Rig:
    datasets = LocalDatasetStore(tmp_path / "datasets", tmp_path / "catalog.db")
    dataset = register_dataset(datasets, samples.csv_bytes(samples.stratified_sample(600, seed=2)), name="bank").dataset
    if request.param == "local":
        registry = MlflowModelRegistry(mlflow_uri, model_name, compile_at_registration=False)
        trainer = LocalTrainer(datasets=datasets, registry=registry, tracker=tracker)
        return Rig(trainer, registry, dataset, lambda s: registry.get(s.model_version))
    fake = request.getfixturevalue("fake_ml")
    azure_registry = AzureModelRegistry(fake, model_name, runs=fake.runs, cache_dir=tmp_path / "cache")
    output = automl_output(load_frame(datasets, dataset), tmp_path / "best-child" / "mlflow-model")

    def finish(submission: TrainingSubmission) -> ModelVersion:
        assert submission.model_version is None  # still running on Azure ML
        automl_run = fake.complete_automl(submission.run_id, output, {"AUC_weighted": 0.93, "accuracy": 0.9})
        return azure_registry.register_from_run(automl_run)

    trainer = AzureTrainer(fake, load_settings(home=tmp_path / "home", experiment_name="contract"))
    return Rig(trainer, azure_registry, dataset, finish)


def test_a_run_ends_with_a_registered_model_of_its_dataset(rig: Rig) -> None:
    request = TrainingRequest(dataset=rig.dataset, budget_s=2, folds=3, learners=("lrl1",), reason="contract")
    submission = rig.trainer.train(request)
    assert submission.run_id and submission.dataset == rig.dataset.ref
    model = rig.finish(submission)
    assert model.tags["dataset"] == rig.dataset.ref
    assert 0.5 < model.metrics["AUC_weighted"] <= 1.0
    assert rig.registry.get(model.version) == model
    frame = samples.stratified_sample(50, seed=9)
    p = rig.registry.load(model.version).predict_proba(frame.drop(columns=[schema.TARGET]))
    assert p.shape == (50,) and np.all((p >= 0) & (p <= 1))
