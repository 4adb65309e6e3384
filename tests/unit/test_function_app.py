"""The Azure Functions triggers, called as the Functions host would call them.

Each function comes from `function_app.app` through `.build().get_user_function()` and gets real
`azure.functions` request, Event Grid and timer objects with realistic payloads. The ports behind
them are in-memory fakes (no Azure here); the work queue is the real SQLite one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from functions import runtime
from shared.automation.handlers import Automation
from shared.automation.work_queue import WorkQueue
from shared.config import load_settings
from tests import event_fixtures
from tests.automation_fakes import FakeDeployer, InMemoryDatastore, make_automation
from tests.fakes import InMemoryDatasetStore, InMemoryModelRegistry, InMemoryRunTracker
from tests.function_index import indexed_functions

BLOB_CREATED = {
    "id": "5c2b6f4e-701e-0061-0e2b-5c6a4d06e2b1",
    "topic": "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct",
    "subject": "/blobServices/default/containers/incoming/blobs/new-clients.csv",
    "eventType": "Microsoft.Storage.BlobCreated",
    "eventTime": "2026-11-27T02:00:00Z",
    "data": {"api": "PutBlockList", "clientRequestId": "c1", "requestId": "r1", "eTag": "0x8DC1A2B3C4D5E6F",
             "contentType": "text/csv", "contentLength": 1024, "blobType": "BlockBlob",
             "url": "https://acct.blob.core.windows.net/incoming/new-clients.csv", "sequencer": "00000000000000000000000000005E3A"},
    "dataVersion": "", "metadataVersion": "1",
}


@pytest.fixture
def auto(tmp_path: Path) -> Automation:
    automation = make_automation(settings=load_settings(home=tmp_path), datasets=InMemoryDatasetStore(),
                                 registry=InMemoryModelRegistry(), tracker=InMemoryRunTracker(), datastore=InMemoryDatastore(),
                                 deployer=FakeDeployer(), queue=WorkQueue(tmp_path / "queue.db"))
    runtime.use(automation)
    return automation


FUNCTIONS = indexed_functions()  # the host indexes once


def _function(name: str) -> Any:
    assert name in FUNCTIONS, f"function {name} is not registered"
    return FUNCTIONS[name].get_user_function()


def _http(method: str, route: str, body: Any = None) -> func.HttpRequest:
    raw = json.dumps(body).encode() if body is not None else b""
    return func.HttpRequest(method=method, url=f"http://localhost:7071/api/{route}", body=raw,
                            headers={"Content-Type": "application/json"})


def _event(payload: dict[str, Any]) -> func.EventGridEvent:
    return func.EventGridEvent(id=payload["id"], data=payload["data"], topic=payload["topic"], subject=payload.get("subject"),
                               event_type=payload["eventType"], event_time=None, data_version=payload["dataVersion"])


def test_every_trigger_is_registered_with_function_auth_on_http() -> None:
    names = set(FUNCTIONS)
    assert {"retrain", "redeploy", "rollback", "status", "run", "events", "on_data_arrived", "on_run_completed",
            "daily_retrain", "process_work"} <= names
    bindings = json.dumps([fn.get_bindings_dict() for fn in FUNCTIONS.values()], default=str)
    assert '"authLevel": "FUNCTION"' in bindings and "%RETRAIN_SCHEDULE%" in bindings


def test_retrain_answers_like_a_published_pipeline_and_queues_once(auto: Automation) -> None:
    first = _function("retrain")(_http("POST", "retrain", {"ExperimentName": "bankmarketing"}))
    second = _function("retrain")(_http("POST", "retrain"))
    assert first.status_code == 202
    assert json.loads(first.get_body())["Id"] == json.loads(second.get_body())["Id"]
    assert auto.queue.counts() == {"queued": 1}


def test_a_bad_body_is_a_4xx_with_a_message(auto: Automation) -> None:
    req = func.HttpRequest(method="POST", url="http://localhost/api/redeploy", body=b"{not json")
    response = _function("redeploy")(req)
    assert response.status_code == 422
    assert "not valid JSON" in json.loads(response.get_body())["error"]
    response = _function("redeploy")(_http("POST", "redeploy", {"model_version": "latest"}))
    assert response.status_code == 422


def test_status_reports_queue_and_schedule(auto: Automation) -> None:
    _function("retrain")(_http("POST", "retrain"))
    body = json.loads(_function("status")(_http("GET", "status")).get_body())
    assert body["champion"] is None and body["schedule"] == "0 0 2 * * *"
    assert body["queue"] == {"queued": 1} and body["recent_jobs"][0]["kind"] == "RequestTraining"


def test_the_webhook_answers_the_validation_handshake(auto: Automation) -> None:
    handshake = [{"id": "v1", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "subject": "",
                  "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", "validationUrl": "https://x"}}]
    response = _function("events")(_http("POST", "events", handshake))
    assert json.loads(response.get_body()) == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    options = func.HttpRequest(method="OPTIONS", url="http://localhost/api/events", body=b"",
                               headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
    assert _function("events")(options).headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"


def test_the_webhook_takes_cloudevents_batches(auto: Automation) -> None:
    cloud = {"specversion": "1.0", "id": "ce-1", "type": BLOB_CREATED["eventType"], "source": BLOB_CREATED["topic"],
             "subject": BLOB_CREATED["subject"], "data": BLOB_CREATED["data"]}
    body = json.loads(_function("events")(_http("POST", "events", [cloud, cloud])).get_body())
    assert body == {"accepted": ["ce-1"], "ignored": ["ce-1"]}


def test_blob_created_queues_one_arrival_even_when_delivered_twice(auto: Automation) -> None:
    _function("on_data_arrived")(_event(BLOB_CREATED))
    _function("on_data_arrived")(_event(BLOB_CREATED | {"id": "another-id-same-write"}))
    jobs = auto.queue.recent(5)
    assert [j.kind for j in jobs] == ["DataArrived"]
    assert jobs[0].payload["blob"] == "incoming/new-clients.csv" and jobs[0].payload["etag"] == "0x8DC1A2B3C4D5E6F"


def test_blob_events_outside_incoming_or_unfinished_writes_are_ignored(auto: Automation) -> None:
    other = BLOB_CREATED | {"subject": "/blobServices/default/containers/processed/blobs/x.csv"}
    partial = BLOB_CREATED | {"id": "p", "data": BLOB_CREATED["data"] | {"api": "PutBlock"}}
    _function("on_data_arrived")(_event(other))
    _function("on_data_arrived")(_event(partial))
    assert auto.queue.counts() == {}


def test_only_the_completion_of_a_bankops_pipeline_run_is_queued(auto: Automation) -> None:
    """The documented RunCompleted payloads: an AutoML child, a pipeline's AutoML step, a step run, another
    pipeline: all acknowledged and ignored; the pipeline run bankops tagged is queued, once."""
    for name in ("run_completed_automl_child", "run_completed_automl_step", "run_completed_step_run",
                 "run_completed_pipeline_run_other", "run_completed_pipeline_run", "run_completed_pipeline_run"):
        [event] = event_fixtures.load(f"{name}.eventgrid")
        _function("on_run_completed")(_event(event))
    jobs = auto.queue.recent(5)
    assert [(j.kind, j.payload["run_id"], j.payload["dataset"]) for j in jobs] == [
        ("RunCompleted", "bankops-job-1", "bankmarketing:2")]


def test_a_failed_bankops_pipeline_run_is_queued_as_a_failed_retrain(auto: Automation) -> None:
    """RunStatusChanged reaches the same function (decision: subscription bankops-run-failed)."""
    for name in ("run_status_changed_automl_child_failed", "run_status_changed_pipeline_failed"):
        [event] = event_fixtures.load(f"{name}.eventgrid")
        _function("on_run_completed")(_event(event))
    jobs = auto.queue.recent(5)
    assert [(j.kind, j.payload["run_id"], j.payload["status"]) for j in jobs] == [("RunFailed", "bankops-job-1", "failed")]


def test_a_blob_created_without_subject_is_named_by_its_url(auto: Automation) -> None:
    [event] = event_fixtures.load("blob_created_no_subject.eventgrid")
    _function("on_data_arrived")(_event(event))
    jobs = auto.queue.recent(5)
    assert [(j.kind, j.payload["blob"], j.payload["etag"]) for j in jobs] == [("DataArrived", "incoming/x.csv", "0x8D4BCC2E4835CD0")]


def test_the_daily_timer_requests_training_also_when_past_due(auto: Automation) -> None:
    _function("daily_retrain")(TimerRequest(past_due=True))
    _function("daily_retrain")(TimerRequest(past_due=False))
    jobs = auto.queue.recent(5)
    assert len(jobs) == 1 and jobs[0].payload["reason"] == "timer (past due)"
