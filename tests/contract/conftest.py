"""Fixtures that give each contract test the local adapter and the Azure one, in turn.

Datastore: local folders vs Azure Blob Storage on Azurite (installed and started by the session).
DatasetStore, ModelRegistry, Deployer, Trainer: local vs the azure adapter on the fakes of the
Azure ML `MLClient` operations in tests/azure_fakes.py (Azure ML cannot be reached from a test).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shared import schema
from shared.adapters.local.tracking import MlflowTracker
from shared.features import FeatureEncoder
from shared.model import BankMarketingModel, Member
from tests import samples
from tests.azure_fakes import FakeMLClient

BACKENDS = ["local", "azure"]


@pytest.fixture(autouse=True)
def _no_real_azure(monkeypatch: pytest.MonkeyPatch) -> None:
    """No workspace or storage setting of the developer's shell reaches a contract test."""
    for key in list(os.environ):
        if key.upper().startswith(("AZURE_", "AZUREML_")) or key == "MLFLOW_TRACKING_TOKEN":
            monkeypatch.delenv(key)


@pytest.fixture
def fake_ml() -> FakeMLClient:
    return FakeMLClient()


@pytest.fixture(scope="session")
def contract_frame() -> pd.DataFrame:
    return samples.stratified_sample(400, seed=5)


def tiny_model(frame: pd.DataFrame, c: float = 1.0) -> BankMarketingModel:
    """A real blend of one logistic regression on the real featurization (fast to fit)."""
    y = (frame[schema.TARGET] == schema.POSITIVE).to_numpy(dtype=int)
    features = frame.drop(columns=[schema.TARGET])
    encoder = FeatureEncoder.fit(features, y)
    estimator = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(C=c, max_iter=500))
    return BankMarketingModel(encoder=encoder, members=[Member("lrl2", 1.0, estimator.fit(encoder.transform(features), y))])


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One local MLflow store per session (creating one costs seconds); tests use their own model names."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def tracker(mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory) -> MlflowTracker:
    """The local registry registers inside a run of this tracker; the azure one ignores it."""
    return MlflowTracker(mlflow_uri, "contract", tmp_path_factory.getbasetemp() / "artifacts")


@pytest.fixture
def model_name(request: pytest.FixtureRequest) -> str:
    return "m-" + "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[-40:]


Register = Callable[..., Any]
