"""Documented BlobCreated and run events through the webhook, the real work queue and worker, on Azurite.

The blob is really written to the storage emulator; the event is Microsoft's documented sample
naming it (its eTag in quotes as the sample has it, or bare; by subject, or only by URL). A file that
arrives is registered, not ignored as "changed since this event". A failed pipeline run is a failed
retrain in /api/status.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from shared.automation import control
from shared.automation.handlers import Automation
from shared.automation.work_queue import WorkQueue
from shared.automation.worker import Worker
from shared.config import load_settings
from tests import event_fixtures, samples
from tests.automation_fakes import FakeDeployer, make_automation
from tests.fakes import InMemoryDatasetStore, InMemoryModelRegistry, InMemoryRunTracker


@pytest.fixture
def auto(blob_service: Any, tmp_path: Path) -> Automation:
    from shared.adapters.azure.datastore import BlobDatastore

    return make_automation(settings=load_settings(home=tmp_path / "home"), datasets=InMemoryDatasetStore(),
                           registry=InMemoryModelRegistry(), tracker=InMemoryRunTracker(), datastore=BlobDatastore(blob_service),
                           deployer=FakeDeployer(), queue=WorkQueue(tmp_path / "queue.db", retry_delay_s=0))


def _upload(auto: Automation, name: str = "x.csv") -> tuple[str, str]:
    """Write a valid file to incoming/ on Azurite; (its eTag as the blob service reports it, its URL)."""
    from shared.adapters.azure.datastore import BlobDatastore

    assert isinstance(auto.datastore, BlobDatastore)
    client = auto.datastore.service.get_blob_client("incoming", name)
    client.upload_blob(samples.csv_bytes(samples.stratified_sample(300, seed=4)), overwrite=True)
    return str(client.get_blob_properties().etag), str(client.url)


def _documented(fixture: str, *, etag: str, url: str | None = None) -> dict[str, Any]:
    [event] = event_fixtures.load(fixture)
    quoted = event["data"]["eTag"].startswith('"')
    event["data"]["eTag"] = f'"{etag.strip(chr(34))}"' if quoted else etag.strip('"')
    if url is not None:
        event["data"]["url"] = url
    return event


@pytest.mark.parametrize("fixture", ["blob_created.eventgrid", "blob_created.cloudevents", "blob_created_unquoted_etag.eventgrid",
                                     "blob_created_no_subject.eventgrid"])
def test_a_documented_blob_created_registers_the_file(auto: Automation, fixture: str) -> None:
    etag, _ = _upload(auto)
    event = _documented(fixture, etag=etag)
    assert control.events(auto, [event]) == {"accepted": [event["id"]], "ignored": []}
    done = Worker(auto).run_once("control")
    assert done is not None and done.status == "done" and done.result["outcome"] == "registered", done
    assert auto.datastore.info("incoming", "x.csv") is None and auto.datastore.info("processed", "x.csv") is not None


def test_an_emulator_url_without_subject_registers_the_file(auto: Automation) -> None:
    etag, url = _upload(auto)
    assert url.startswith("http://127.0.0.1:") and "/devstoreaccount1/incoming/x.csv" in url
    event = _documented("blob_created_emulator_url_no_subject.eventgrid", etag=etag, url=url)
    control.events(auto, [event])
    done = Worker(auto).run_once("control")
    assert done is not None and done.result["outcome"] == "registered", done


def test_an_event_for_an_older_write_is_still_ignored(auto: Automation) -> None:
    etag, _ = _upload(auto)
    _upload(auto)  # written again: a new eTag, whose own event handles it
    control.events(auto, [_documented("blob_created.eventgrid", etag=etag)])
    done = Worker(auto).run_once("control")
    assert done is not None and done.result["outcome"] == "ignored" and "changed since" in done.result["reason"]


def test_a_failed_pipeline_run_is_a_failed_retrain_in_the_status(auto: Automation, tmp_path: Path) -> None:
    """The pipeline bankops submitted fails on Azure ML; its RunStatusChanged is a failed retrain with the reason."""
    from shared.adapters.azure.batch import staged_code
    from shared.adapters.azure.run_lookup import AzureRunLookup
    from shared.adapters.azure.trainer import training_pipeline
    from tests.azure_fakes import FakeMLClient
    from tests.azure_run_fakes import StrictClient, StrictRuns

    fake = FakeMLClient(store=tmp_path / "ws")
    with staged_code() as code:  # the evaluate step's code folder, as AzureTrainer stages it for a submit
        submitted = fake.jobs.create_or_update(training_pipeline(auto.settings, "azureml:bankmarketing:2",
                                                                 dataset_ref="bankmarketing:2", code=code))
    fake.jobs.jobs[submitted.name].status = "Failed"
    auto = dataclasses.replace(auto, run_lookup=AzureRunLookup(StrictClient(fake), StrictRuns(fake.runs)))
    [event] = event_fixtures.load("run_status_changed_pipeline_failed.eventgrid")
    event["data"] |= {"runId": submitted.name, "runTags": submitted.tags}  # what Azure ML puts in runTags: the job's tags
    assert control.events(auto, [event, event]) == {"accepted": [event["id"]], "ignored": [event["id"]]}
    done = Worker(auto).run_once("control")
    assert done is not None and done.status == "done", done
    assert done.result["outcome"] == "failed" and done.result["run_id"] == submitted.name
    assert done.result["error"] == f"Azure ML pipeline run {submitted.name} ended Failed; its logs: {submitted.studio_url}"
    [recent] = [j for j in control.status(auto)["recent_jobs"] if j["kind"] == "RunFailed"]
    assert recent["outcome"] == "failed" and submitted.name in recent["reason"]
