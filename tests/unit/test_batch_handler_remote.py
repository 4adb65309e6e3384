"""With a remote batch runner (the azure backend), a file in batch/ is submitted as an Azure ML batch job, not scored here.

The runner is an in-memory fake of the BatchRunner port that first answers InProgress (Azure ML
preparing the champion's deployment), as the Azure adapter does; the queue, ledger and local
datastore are the real ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.adapters.azure.batch import AzureBatchRunner
from shared.automation import control, eventgrid
from shared.automation.handlers import Automation
from shared.automation.worker import Worker
from shared.bootstrap import AzureBackend
from shared.config import load_settings
from shared.errors import InProgress
from shared.ports import CHAMPION, BatchRunStatus, BatchSubmission
from tests import samples
from tests.azure_fakes import FakeMLClient
from tests.batch_samples import clients
from tests.fakes import InMemoryModelRegistry
from tests.unit.test_batch_handler import _automation


class FakeBatchRunner:
    """BatchRunner stand-in: records submissions; the first answers InProgress, like a deployment being created."""

    def __init__(self) -> None:
        self.submitted: list[tuple[str, str, str]] = []
        self.preparing = True

    def submit(self, input_uri: str, model_version: str, output_name: str | None = None, *, key: str = "") -> BatchSubmission:
        if self.preparing:
            self.preparing = False
            raise InProgress("creating batch deployment model-v1", retry_after_s=0)
        self.submitted.append((input_uri, model_version, key))
        return BatchSubmission(run_id=f"batchjob-{len(self.submitted)}", scored=False)

    def status(self, run_id: str) -> BatchRunStatus:
        return BatchRunStatus(run_id, "running", "", "", "")


def _event(name: str, etag: str) -> dict[str, object]:
    return {"id": f"ev-{etag}", "eventType": eventgrid.BLOB_CREATED, "subject": f"/blobServices/default/containers/batch/blobs/{name}",
            "data": {"api": "PutBlob", "eTag": etag, "url": f"https://acct.blob.core.windows.net/batch/{name}"}}


def test_a_batch_blob_is_submitted_to_the_remote_runner_once(tmp_path: Path) -> None:
    from shared.adapters.local.datastore import LocalDatastore

    runner = FakeBatchRunner()
    auto = _automation(tmp_path, LocalDatastore(tmp_path / "datastore"), batch_runner=runner)
    info = auto.datastore.write("batch", "clients.csv", samples.csv_bytes(clients(50)))
    control.events(auto, [_event("clients.csv", info.etag)])
    control.events(auto, [_event("clients.csv", info.etag)])  # Event Grid delivers at least once
    worker = Worker(auto)
    first = worker.run_once("batch")
    assert first is not None and first.status == "queued"  # deferred while Azure ML prepares the deployment
    done = worker.run_once("batch")
    assert done is not None and done.status == "done", done
    assert done.result == {"outcome": "submitted", "run_id": "batchjob-1", "input": "batch/clients.csv", "model_version": "1",
                           "output": "predictions/clients.predictions.csv"}
    assert runner.submitted == [("batch/clients.csv", "1", f"batch/clients.csv:{info.etag}")]
    assert worker.run_once("batch") is None
    assert auto.datastore.list("predictions") == []  # nothing scored in this process


def test_a_batch_blob_with_the_wrong_columns_is_quarantined_not_submitted(tmp_path: Path) -> None:
    """The Azure runner checks the header from the blob's first bytes before anything goes to Azure ML, so a
    wrong file is quarantined with its reason, as on the local backend, instead of failing a job."""
    from shared.adapters.local.datastore import LocalDatastore
    from tests.azure_batch_fakes import FakeBatchService

    datastore = LocalDatastore(tmp_path / "datastore")
    fake = FakeMLClient(store=tmp_path / "ws")
    service = FakeBatchService(fake)
    settings = load_settings(home=tmp_path / "home")
    registry = InMemoryModelRegistry()
    runner = AzureBatchRunner(fake, registry, settings, account_url="http://127.0.0.1:10000/devstoreaccount1",
                              datastore=datastore, retry_after_s=0)
    auto = _automation(tmp_path, datastore, batch_runner=runner, registry=registry)
    wrong = samples.csv_bytes(clients(20)).replace(b"euribor3m", b"euribor", 1)
    info = auto.datastore.write("batch", "wrong.csv", wrong)
    control.events(auto, [_event("wrong.csv", info.etag)])
    done = Worker(auto).run_once("batch")
    assert done is not None and done.status == "done" and done.result["outcome"] == "quarantined", done
    assert service.batch_endpoints.created == [] and service.batch_endpoints.invocations == []  # nothing went to Azure ML
    assert auto.datastore.read("quarantine", "wrong.csv") == wrong
    reason = auto.datastore.read("quarantine", "wrong.csv.reason.txt").decode()
    assert "euribor3m" in reason and "drop it into batch/ again" in reason


def test_the_azure_backend_builds_an_azure_batch_runner_on_the_data_account(tmp_path: Path, azurite_port: int) -> None:
    """On the data account: its blob URLs name the files, its containers hold the headers the runner checks."""
    from shared.adapters.azure.datastore import BlobDatastore, azurite_connection_string

    settings = load_settings(home=tmp_path / "home", backend="azure", datastore="azurite", batch_endpoint_name="campaigns",
                             storage_connection_string=azurite_connection_string(azurite_port))
    backend = AzureBackend(settings, ml_client=FakeMLClient(store=tmp_path / "ws"), credential=object())
    runner = backend.batch_runner
    assert isinstance(runner, AzureBatchRunner) and runner.endpoint_name == "campaigns"
    assert isinstance(runner.datastore, BlobDatastore) and runner.datastore is backend.datastore
    assert runner.input_url("batch/clients.csv") == f"http://127.0.0.1:{azurite_port}/devstoreaccount1/batch/clients.csv"
    assert runner.input_url("https://x.blob.core.windows.net/batch/a.csv") == "https://x.blob.core.windows.net/batch/a.csv"


def test_the_local_backend_scores_in_process(tmp_path: Path) -> None:
    from shared.adapters.local.batch import LocalBatchRunner
    from shared.bootstrap import build_automation

    auto: Automation = build_automation(load_settings(home=tmp_path / "home"))
    assert isinstance(auto.batch_runner, LocalBatchRunner) and auto.registry.alias(CHAMPION) is None


def test_the_azure_batch_commands_deploy_then_submit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`bankops azure batch-deploy` answers "in progress" until Azure ML (the fake service) has the deployment, then batch-score submits."""
    import json

    from typer.testing import CliRunner

    from shared.adapters.azure.registry import AzureModelRegistry
    from shared.cli import azure_commands
    from shared.cli.main import app
    from shared.mlflow_model import example_frame
    from tests.azure_batch_fakes import FakeBatchService
    from tests.batch_samples import tiny_model

    fake = FakeMLClient(store=tmp_path / "ws")
    service = FakeBatchService(fake)
    settings = load_settings(home=tmp_path / "home", backend="azure", datastore="azurite")
    backend = AzureBackend(settings, ml_client=fake, credential=object())
    backend.registry = AzureModelRegistry(fake, settings.model_name, cache_dir=tmp_path / "cache")  # no workspace MLflow here
    from shared.adapters.local.datastore import LocalDatastore

    backend.datastore = LocalDatastore(tmp_path / "datastore")  # no Blob Storage here: batch-score checks the file's header in it
    backend.datastore.write("batch", "clients.csv", samples.csv_bytes(clients(5)))
    example = example_frame(clients(2).drop(columns=["client_id"]).to_dict("records"))
    backend.registry.register(tiny_model(), run_id="r1", metrics={}, tags={}, input_example=example)
    monkeypatch.setattr(azure_commands, "_azure", lambda home: backend)

    first = CliRunner().invoke(app, ["azure", "batch-deploy"])
    assert first.exit_code == 2 and "creating batch endpoint" in first.output
    service.settle()
    second = CliRunner().invoke(app, ["azure", "batch-deploy"])
    assert second.exit_code == 2 and "creating batch deployment model-v1" in second.output
    service.settle()
    ready = CliRunner().invoke(app, ["azure", "batch-deploy"])
    assert ready.exit_code == 0, ready.output
    assert json.loads(ready.output)["deployment"] == "model-v1"
    scored = CliRunner().invoke(app, ["azure", "batch-score", "batch/clients.csv"])
    assert scored.exit_code == 0, scored.output
    answer = json.loads(scored.output)
    assert answer["state"] == "running" and answer["output"] == "predictions/clients.predictions.csv"
    status = CliRunner().invoke(app, ["azure", "batch-status", answer["run_id"]])
    assert json.loads(status.output)["model_version"] == "1"
