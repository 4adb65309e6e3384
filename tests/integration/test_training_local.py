"""The training pipeline on the real local backend: files + SQLite catalog, MLflow tracking and registry in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from shared.bootstrap import Backend
from shared.config import Settings
from shared.dataset_registration import register_dataset
from shared.errors import NotFound
from shared.mlflow_model import ARTIFACT
from shared.training.evaluate import PREDICTED_YES_KEYS
from shared.training.learners import LEARNERS
from shared.training.pipeline import HEADLINE, TrainingOutcome, TrainingPipeline, TrainingRequest
from tests import samples
from tests.local_home import local_home

pytestmark = pytest.mark.integration

MODEL = "bankmarketing-classifier"
PLOTS = {"roc_curve.png", "precision_recall_curve.png", "confusion_matrix.png", "calibration_curve.png", "feature_importance.png"}


@dataclass
class Trained:
    settings: Settings
    backend: Backend
    outcome: TrainingOutcome


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    tmp = tmp_path_factory.mktemp("integration")
    with local_home(tmp) as (settings, backend):
        csv = tmp / "sample.csv"
        csv.write_bytes(samples.csv_bytes(samples.stratified_sample(2000, seed=11)))
        dataset = register_dataset(backend.datasets, csv, name=settings.dataset_name).dataset
        pipeline = TrainingPipeline(datasets=backend.datasets, registry=backend.registry, tracker=backend.tracker)
        outcome = pipeline.run(TrainingRequest(dataset=dataset, budget_s=5, seed=settings.seed))
        yield Trained(settings, backend, outcome)


def test_a_model_version_is_registered(trained: Trained) -> None:
    versions = trained.backend.registry.list()
    assert [v.version for v in versions] == ["1"]
    v = versions[0]
    assert v.version == trained.outcome.model_version.version
    assert v.tags["dataset"] == "bankmarketing:1"
    assert set(v.metrics) == {*HEADLINE, "cv_score", *PREDICTED_YES_KEYS}
    assert v.metrics["AUC_weighted"] == pytest.approx(trained.outcome.metrics["AUC_weighted"], rel=1e-5)
    assert v.metrics["AUC_weighted"] > 0.75
    assert trained.backend.registry.get() == v
    with pytest.raises(NotFound):
        trained.backend.registry.get("99")


def test_the_registered_model_scores_the_endpoint_records(trained: Trained, endpoint_records: list[dict]) -> None:
    v = trained.outcome.model_version.version
    pyfunc = mlflow.pyfunc.load_model(f"models:/{MODEL}/{v}")
    out = pyfunc.predict(pd.DataFrame(endpoint_records))
    assert list(out.columns) == ["prediction", "probability_yes"]
    assert len(out) == 2
    labels, p = out["prediction"].tolist(), out["probability_yes"].to_numpy()
    assert all(isinstance(label, str) for label in labels)
    assert set(labels) <= {"yes", "no"}
    assert ((p >= 0) & (p <= 1)).all()
    assert labels == ["yes" if q >= 0.5 else "no" for q in p]
    assert p[0] > p[1], "the client who said yes scores higher than the one who said no"
    assert labels[1] == "no"

    model = trained.backend.registry.load(v)
    np.testing.assert_allclose(model.predict_proba_records(endpoint_records), p, rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.predict_proba(pd.DataFrame(endpoint_records)), p, rtol=0, atol=1e-9)


def test_the_mlflow_model_carries_featurization_and_signature(trained: Trained) -> None:
    v = trained.outcome.model_version.version
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL}/{v}", tracking_uri=trained.settings.paths.tracking_uri))
    assert (local / "artifacts" / ARTIFACT).is_file()
    info = mlflow.models.get_model_info(f"models:/{MODEL}/{v}")
    inputs = [c["name"] for c in info.signature.inputs.to_dict()]
    assert "age" in inputs and "nr.employed" in inputs and "y" not in inputs
    assert len(inputs) == 20
    requirements = (local / "requirements.txt").read_text()
    assert "scikit-learn==" in requirements and "flaml" not in requirements.lower()


def test_report_returns_trials_and_holdout_metrics(trained: Trained) -> None:
    report = trained.backend.tracker.report()
    assert report.run_id == trained.outcome.run_id
    assert report.status == "FINISHED"
    assert report.params["dataset"] == "bankmarketing:1"
    assert report.tags["bankops.model_version"] == trained.outcome.model_version.version
    assert len(report.trials) == trained.outcome.trials >= 1
    assert all(t.learner in LEARNERS and 0 < t.cv_score <= 1 for t in report.trials)
    assert max(t.cv_score for t in report.trials) == pytest.approx(trained.outcome.cv_score)
    for key in HEADLINE:
        assert report.holdout_metrics[key] == pytest.approx(trained.outcome.metrics[key]), key
    assert trained.backend.tracker.report(report.run_id).run_id == report.run_id
    with pytest.raises(NotFound):
        trained.backend.tracker.report("no-such-run")


def test_steps_and_plots_are_in_the_tracking_store(trained: Trained) -> None:
    client = MlflowClient(trained.settings.paths.tracking_uri)
    experiment = client.get_experiment_by_name("bankmarketing")
    steps = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{trained.outcome.run_id}'")
    by_name = {r.info.run_name: r for r in steps}
    assert set(by_name) == {"validate-data", "split", "automl", "evaluate", "register"}
    assert all(r.info.status == "FINISHED" for r in steps)
    artifacts = {a.path for a in client.list_artifacts(by_name["evaluate"].info.run_id)}
    assert artifacts >= PLOTS
    assert trained.backend.registry.get("1").run_id == by_name["register"].info.run_id
    # artifacts live under $BANKOPS_HOME, not in the working directory
    assert list(trained.settings.paths.artifacts.rglob("roc_curve.png"))
