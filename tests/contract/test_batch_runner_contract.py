"""BatchRunner contract: the local batch step and the Azure ML batch step (endpoint and pipeline job) end in the same files.

Local: the datastore's folders, scored in this process. Azure: Blob Storage on Azurite, and the
fakes of the Azure ML batch operations in tests/azure_batch_fakes.py, which stand in for the Azure
ML service: they record the entities built and run the job by calling the package's own scoring
script (init()/run(), or the pipeline step's command) on the input, then upload its outputs to the
datastore's predictions container. `finish` plays the remote part: it calls submit again while the
service prepares the deployment (InProgress), then lets the fake run the job.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shared import schema
from shared.adapters.azure.batch import AzureBatchRunner
from shared.adapters.azure.datastore import BlobDatastore
from shared.adapters.azure.registry import AzureModelRegistry
from shared.adapters.local.batch import LocalBatchRunner
from shared.adapters.local.datastore import LocalDatastore
from shared.adapters.local.registry import MlflowModelRegistry
from shared.adapters.local.tracking import MlflowTracker
from shared.config import load_settings
from shared.errors import InProgress, InvalidDataset, NotFound
from shared.mlflow_model import example_frame
from shared.ports import BatchRunner, Datastore, ModelRegistry
from tests import batch_samples
from tests.azure_batch_fakes import FakeBatchService
from tests.azure_fakes import FakeMLClient, until_settled

RUNNERS = ["local", "azure-endpoint", "azure-pipeline"]


@dataclass
class Rig:
    runner: BatchRunner
    datastore: Datastore
    registry: ModelRegistry
    finish: Callable[[str, str], str]  # (input, key) -> run id of a finished run
    service: FakeBatchService | None = None


def _register(registry: ModelRegistry, tracker: MlflowTracker) -> str:
    example = example_frame(batch_samples.clients(2).drop(columns=["client_id"]).to_dict("records"))
    with tracker.run("pipeline") as run_id:
        return registry.register(batch_samples.tiny_model(), run_id=run_id, metrics={"AUC_weighted": 0.9}, tags={},
                                 input_example=example).version


def make_rig(kind: str, request: pytest.FixtureRequest, tmp_path: Path, model_name: str) -> Rig:
    tracker = MlflowTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "contract", tmp_path / "artifacts")
    if kind == "local":
        datastore = LocalDatastore(tmp_path / "datastore")
        registry = MlflowModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", model_name, compile_at_registration=False)
        version = _register(registry, tracker)
        runner = LocalBatchRunner(datastore=datastore, tracker=tracker, registry=registry, native=True)
        return Rig(runner, datastore, registry, lambda uri, key: runner.submit(uri, version, key=key).run_id)
    blob_service = request.getfixturevalue("blob_service")
    datastore = BlobDatastore(blob_service)
    fake = FakeMLClient(store=tmp_path / "workspace")
    service = FakeBatchService(fake)
    registry = AzureModelRegistry(fake, model_name, cache_dir=tmp_path / "cache")
    version = _register(registry, tracker)
    mode = kind.removeprefix("azure-")
    settings = load_settings(home=tmp_path / "home", batch_mode=mode, experiment_name="contract")
    runner = AzureBatchRunner(fake, registry, settings, account_url=blob_service.url, datastore=datastore, retry_after_s=0)

    def read(url: str) -> bytes:
        container, name = url[len(blob_service.url.rstrip("/")) + 1:].split("/", 1)
        return datastore.read(container, name)

    def write(datastore_name: str, path: str, data: bytes) -> None:
        assert datastore_name == settings.predictions_datastore
        blob_service.get_blob_client("predictions", path).upload_blob(data, overwrite=True)

    def finish(uri: str, key: str) -> str:
        for _ in range(5):
            try:
                submission = runner.submit(uri, version, key=key)
                assert not submission.scored  # submitted: the fake service runs it below
                run_id = submission.run_id
                break
            except InProgress:
                service.settle()
        else:
            raise AssertionError("the batch deployment was never ready")
        job = service.complete(run_id, read=read, write=write)
        assert job.status == "Completed", job.error
        return run_id

    return Rig(runner, datastore, registry, finish, service)


@pytest.fixture(params=RUNNERS)
def rig(request: pytest.FixtureRequest, tmp_path: Path, model_name: str) -> Rig:
    return make_rig(request.param, request, tmp_path, model_name)


def _drop(rig: Rig, name: str, frame: pd.DataFrame) -> None:
    rig.datastore.write("batch", name, frame.to_csv(index=False).encode())


def test_a_client_list_is_scored_into_predictions_with_the_local_columns(rig: Rig) -> None:
    clients = batch_samples.clients(300, seed=4)
    _drop(rig, "clients.csv", clients)
    run_id = rig.finish("batch/clients.csv", "")
    status = rig.runner.status(run_id)
    assert (status.state, status.output, status.model_version) == ("completed", "predictions/clients.predictions.csv", "1")
    assert status.done
    scored = pd.read_csv(io.BytesIO(rig.datastore.read("predictions", "clients.predictions.csv")), dtype={"model_version": str})
    assert list(scored.columns) == [*clients.columns, "prediction", "probability_yes", "model_version"]
    assert scored["client_id"].tolist() == clients["client_id"].tolist()
    expected = rig.registry.load("1").predict_proba(clients.drop(columns=["client_id"]))
    np.testing.assert_allclose(scored["probability_yes"].to_numpy(), expected, atol=1e-6)
    assert set(scored["prediction"]) <= {schema.POSITIVE, schema.NEGATIVE} and set(scored["model_version"]) == {"1"}
    assert [b.name for b in rig.datastore.list("predictions")] == ["clients.predictions.csv"]  # summaries are hidden


def test_bad_rows_go_to_rejects_with_their_line_numbers(rig: Rig) -> None:
    clients = batch_samples.clients(20, seed=5).astype(object)
    clients.loc[3, "age"] = "old"  # file line 5 (the header is line 1)
    _drop(rig, "mixed.csv", clients)
    run_id = rig.finish("batch/mixed.csv", "")
    assert rig.runner.status(run_id).state == "completed"
    scored = pd.read_csv(io.BytesIO(rig.datastore.read("predictions", "mixed.predictions.csv")))
    rejects = pd.read_csv(io.BytesIO(rig.datastore.read("predictions", "mixed.predictions.rejects.csv")))
    assert len(scored) == 19 and rejects["line"].tolist() == [5] and "age" in rejects["reason"][0]


def test_a_file_with_the_wrong_columns_is_refused_before_anything_is_written_or_submitted(rig: Rig) -> None:
    """InvalidDataset (the handler quarantines the file): locally before the output is written, on Azure from the
    blob's first bytes, before a job is submitted."""
    _drop(rig, "wrong.csv", batch_samples.clients(20).rename(columns={"euribor3m": "euribor"}))
    with pytest.raises(InvalidDataset, match="bank marketing schema") as refused:
        rig.runner.submit("batch/wrong.csv", "1", key="batch/wrong.csv:etag1")
    assert "euribor3m" in str(refused.value)
    assert rig.datastore.list("predictions") == []
    if rig.service is not None:
        assert rig.service.batch_endpoints.invocations == [] and rig.service.batch_deployments.created == []


def test_the_local_runner_answers_scored_with_the_run_and_its_counts(tmp_path: Path, model_name: str,
                                                                     request: pytest.FixtureRequest) -> None:
    rig = make_rig("local", request, tmp_path, model_name)
    _drop(rig, "clients.csv", batch_samples.clients(30))
    submission = rig.runner.submit("batch/clients.csv", "1")
    assert submission.scored and submission.details["rows_scored"] == 30
    assert submission.details["output"] == "predictions/clients.predictions.csv"
    assert rig.runner.status(submission.run_id).state == "completed"


def test_prepare_readies_a_version_for_its_first_file(rig: Rig, request: pytest.FixtureRequest) -> None:
    """Local: the LightGBM member compiled to native code (the logistic regression has no trees);
    endpoint: the version's deployment made the default; pipeline: each job is built, nothing to do."""
    answer = until_settled(lambda: rig.runner.prepare("1"), rig.service.settle) if rig.service else rig.runner.prepare("1")
    assert answer["model_version"] == "1"
    kind = request.node.callspec.params["rig"]
    if kind == "local":
        assert answer["native_members"] == ["lgbm"]
    elif kind == "azure-endpoint":
        assert answer["deployment"] == "model-v1"
        assert rig.service is not None and rig.service.batch_endpoints.get("bankops-batch").defaults == {"deployment_name": "model-v1"}
    else:
        assert answer["mode"] == "pipeline" and rig.service is not None and rig.service.batch_deployments.created == []
    with pytest.raises(NotFound):
        rig.runner.prepare("9")


def test_an_unknown_run_is_not_found(rig: Rig) -> None:
    with pytest.raises(NotFound):
        rig.runner.status("no-such-run")


# --- what only the Azure side builds ----------------------------------------------------------------
@pytest.fixture
def azure_rig(request: pytest.FixtureRequest, tmp_path: Path, model_name: str) -> Rig:
    return make_rig("azure-endpoint", request, tmp_path, model_name)


def test_the_endpoint_deployment_is_built_for_the_registered_version(azure_rig: Rig) -> None:
    from azure.ai.ml.constants import BatchDeploymentOutputAction

    _drop(azure_rig, "clients.csv", batch_samples.clients(10))
    run_id = azure_rig.finish("batch/clients.csv", "")
    service = azure_rig.service
    assert service is not None
    (endpoint,) = service.batch_endpoints.created
    (deployment,) = service.batch_deployments.created
    assert endpoint.name == "bankops-batch" and deployment.endpoint_name == "bankops-batch"
    assert deployment.name == "model-v1" and deployment.model == f"azureml:{azure_rig.registry.get('1').name}:1"
    assert deployment.compute == "cpu-cluster" and deployment.resources.instance_count == 1
    assert deployment.code_configuration.scoring_script == "shared/batch/azureml_score.py"
    settings = deployment.settings
    assert settings.mini_batch_size == 1 and settings.output_action == BatchDeploymentOutputAction.SUMMARY_ONLY
    assert settings.output_file_name is None and settings.error_threshold == 0  # the SDK refuses a file name with summary_only
    assert (settings.retry_settings.max_retries, settings.retry_settings.timeout) == (2, 3600)
    assert settings.environment_variables == {"BANKOPS_MODEL_VERSION": "1"}
    (call,) = service.batch_endpoints.invocations
    assert call["deployment"] == "model-v1" and call["inputs"]["clients"].type == "uri_file"
    assert call["inputs"]["clients"].path.endswith("/batch/clients.csv")
    assert call["outputs"]["score"].path == "azureml://datastores/bankops_predictions/paths/"
    assert azure_rig.runner.status(run_id).details["status"] == "Completed"


def test_a_repeated_submit_with_the_same_key_is_the_same_job(azure_rig: Rig) -> None:
    _drop(azure_rig, "clients.csv", batch_samples.clients(10))
    first = azure_rig.finish("batch/clients.csv", "batch/clients.csv:etag1")
    assert azure_rig.runner.submit("batch/clients.csv", "1", key="batch/clients.csv:etag1").run_id == first
    assert azure_rig.runner.submit("batch/clients.csv", "1", key="batch/clients.csv:etag2").run_id != first
    assert azure_rig.service is not None and len(azure_rig.service.batch_endpoints.invocations) == 2


def test_the_fake_refuses_a_deployment_the_sdk_refuses(azure_rig: Rig, tmp_path: Path) -> None:
    """Defect 1: summary_only with an output_file_name fails in the SDK's `_to_rest_object`, before any request."""
    from azure.ai.ml.exceptions import ValidationException

    from shared.adapters.azure.batch import model_deployment, staged_code

    assert azure_rig.service is not None
    until_settled(lambda: azure_rig.runner.prepare("1"), azure_rig.service.settle)
    settings = load_settings(home=tmp_path / "home")
    with staged_code() as code:
        deployment = model_deployment(settings, azure_rig.registry.get("1").name, "1", code, endpoint_name="bankops-batch")
        deployment.name = "model-v1b"
        deployment.settings.output_file_name = ".summary.csv"  # what this adapter built before
        with pytest.raises(ValidationException, match="output_file_name need not to be specified"):
            azure_rig.service.batch_deployments.begin_create_or_update(deployment)


def test_deploy_prepares_the_version_and_makes_it_the_default(azure_rig: Rig) -> None:
    runner: Any = azure_rig.runner
    assert azure_rig.service is not None
    answer = until_settled(lambda: runner.deploy("1"), azure_rig.service.settle)
    assert answer["deployment"] == "model-v1"
    assert azure_rig.service.batch_endpoints.get("bankops-batch").defaults == {"deployment_name": "model-v1"}
