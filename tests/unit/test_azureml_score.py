"""The Azure ML batch entry script on real CSV files: init()/run() as the batch driver calls them, and the pipeline command.

Its output must be byte for byte what `bankops batch-score` writes with the same model, whether
the registered model is a bankops blend or an AutoML sklearn pipeline (scored through FrameModel).
"""

from __future__ import annotations

from pathlib import Path

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from shared import schema
from shared.adapters.azure.registry import AutoMLClassifier, save_pyfunc
from shared.batch import azureml_score
from shared.batch.job import score_file
from shared.batch.scorer import BatchModel
from shared.errors import InvalidDataset
from shared.mlflow_model import example_frame
from tests import batch_samples, samples


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registered version as Azure ML mounts it: AZUREML_MODEL_DIR holds the model's folder."""
    root = tmp_path_factory.mktemp("azureml-model") / "bankmarketing-classifier" / "3"
    root.mkdir(parents=True)
    example = example_frame(batch_samples.clients(2).drop(columns=["client_id"]).to_dict("records"))
    save_pyfunc(batch_samples.tiny_model(), example, root / "mlflow-model")
    return root


@pytest.fixture
def clients_csv(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "clients.csv"
    path.parent.mkdir()
    batch_samples.clients(500, seed=8).to_csv(path, index=False)
    return path


def test_init_and_run_write_what_bankops_batch_score_writes(model_dir: Path, clients_csv: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("AZUREML_BI_OUTPUT_PATH", str(out))
    monkeypatch.delenv(azureml_score.MODEL_VERSION_ENV, raising=False)
    azureml_score.init()
    summary = azureml_score.run([str(clients_csv)])
    assert isinstance(summary, pd.DataFrame)
    assert summary.loc[0, "file"] == "clients.csv" and summary.loc[0, "rows_scored"] == 500
    assert summary.loc[0, "model_version"] == "3"  # from the model folder's path when the deployment sets no version
    local = tmp_path / "local.csv"
    score_file(BatchModel.build(batch_samples.tiny_model(), "3"), clients_csv, local)
    assert (out / "clients.predictions.csv").read_bytes() == local.read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["clients.predictions.csv"]  # no rejects, no partial files


def test_rejects_are_written_beside_and_the_version_comes_from_the_deployment(model_dir: Path, tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    frame = batch_samples.clients(10).astype(object)
    frame.loc[2, "campaign"] = "1.5"
    source = tmp_path / "mixed.csv"
    frame.to_csv(source, index=False)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("AZUREML_BI_OUTPUT_PATH", str(tmp_path / "out"))
    monkeypatch.setenv(azureml_score.MODEL_VERSION_ENV, "7")
    azureml_score.init()
    summary = azureml_score.run([str(source)])
    assert (summary.loc[0, "rows_scored"], summary.loc[0, "rows_rejected"]) == (9, 1)
    rejects = pd.read_csv(tmp_path / "out" / "mixed.predictions.rejects.csv")
    assert rejects["line"].tolist() == [4] and "whole number" in rejects["reason"][0]
    scored = pd.read_csv(tmp_path / "out" / "mixed.predictions.csv", dtype={"model_version": str})
    assert set(scored["model_version"]) == {"7"}


def test_a_file_with_the_wrong_columns_fails_and_writes_nothing(model_dir: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "wrong.csv"
    batch_samples.clients(5).drop(columns=["age"]).to_csv(source, index=False)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("AZUREML_BI_OUTPUT_PATH", str(tmp_path / "out"))
    azureml_score.init()
    with pytest.raises(InvalidDataset, match="age"):
        azureml_score.run([str(source)])
    assert not list((tmp_path / "out").glob("*"))


def test_the_pipeline_command_names_its_output(model_dir: Path, clients_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "predictions"
    assert azureml_score.main(["--model", str(model_dir), "--input", str(clients_csv), "--output", str(out),
                               "--output-name", "ranked.csv", "--model-version", "3"]) == 0
    scored = pd.read_csv(out / "ranked.csv")
    assert len(scored) == 500 and list(scored.columns)[-3:] == ["prediction", "probability_yes", "model_version"]


def test_an_automl_model_is_scored_through_its_own_predict_proba(tmp_path: Path, clients_csv: Path) -> None:
    """Azure AutoML registers sklearn pipelines that take the raw fields; FrameModel feeds them the checked rows."""
    frame = samples.stratified_sample(600, seed=2)
    categorical = [c for c in schema.FEATURES if c not in schema.NUMERIC_FEATURES]
    pipeline = make_pipeline(make_column_transformer((OneHotEncoder(handle_unknown="ignore"), categorical), remainder=StandardScaler()),
                             LogisticRegression(max_iter=300))
    pipeline.fit(frame[list(schema.FEATURES)], frame[schema.TARGET])
    folder = tmp_path / "automl" / "2"
    mlflow.sklearn.save_model(pipeline, str(folder / "mlflow-model"))
    model = azureml_score.load_model(folder, "2")
    assert isinstance(model, azureml_score.FrameModel)
    summary = azureml_score.score_into(model, clients_csv, tmp_path / "out")
    scored = pd.read_csv(tmp_path / "out" / "clients.predictions.csv")
    expected = AutoMLClassifier(pipeline).predict_proba(pd.read_csv(clients_csv))
    assert summary.rows_scored == 500
    np.testing.assert_allclose(scored["probability_yes"].to_numpy(), expected, atol=1e-9)
    assert scored["prediction"].tolist() == list(np.where(expected >= 0.5, "yes", "no"))
