"""The control plane takes what it is sent whole or not at all, within limits, and keeps answering.

Issue 15, items 8-12: a batch with one bad event queues nothing; the ledger entry and its job are
one transaction; bodies have a size and a depth limit (413/422, never 500); queue writes run off the
event loop; /api/status counts every dead letter. The queue is the real SQLite one, the HTTP server a
real uvicorn on loopback where the event loop matters; the other ports are in-memory fakes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from shared.automation import control
from shared.automation.control_app import create_control_app
from shared.automation.handlers import Automation, accept_event
from shared.automation.messages import DataArrived, Deploy
from shared.errors import PayloadTooLarge
from tests.automation_fakes import in_memory_automation
from tests.azurite import free_port

KEY = "test-function-key"


def blob_created(event_id: str, name: str, etag: str = "0x8DC1A2B3C4D5E6F") -> dict[str, Any]:
    """Microsoft.Storage.BlobCreated, Event Grid schema, as documented in
    learn.microsoft.com/azure/event-grid/event-schema-blob-storage (the example payload, our names)."""
    return {"id": event_id, "topic": "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct",
            "subject": f"/blobServices/default/containers/incoming/blobs/{name}", "eventType": "Microsoft.Storage.BlobCreated",
            "eventTime": "2026-11-27T02:00:00Z", "dataVersion": "", "metadataVersion": "1",
            "data": {"api": "PutBlockList", "clientRequestId": "c1", "requestId": "r1", "eTag": etag,
                     "contentType": "text/csv", "contentLength": 1024, "blobType": "BlockBlob",
                     "url": f"https://acct.blob.core.windows.net/incoming/{name}",
                     "sequencer": "00000000000000000000000000005E3A"}}


@pytest.fixture
def auto(tmp_path: Path) -> Automation:
    return in_memory_automation(tmp_path)


@pytest.fixture
def client(auto: Automation) -> TestClient:
    return TestClient(create_control_app(auto, key_ok=lambda key: key == KEY), headers={"x-functions-key": KEY})


class TestBatchWholeOrNothing:
    def test_a_batch_with_one_bad_event_queues_nothing_and_the_fixed_batch_is_taken_whole(self, auto: Automation,
                                                                                           client: TestClient) -> None:
        bad = blob_created("bad", "x.csv") | {"subject": "no container here", "data": {"api": "PutBlob", "eTag": "1"}}
        answer = client.post("/api/events", json=[blob_created("g1", "a.csv"), bad, blob_created("g2", "b.csv")])
        assert answer.status_code == 422
        assert "event 1" in answer.json()["error"] and "nothing in this batch was queued" in answer.json()["error"]
        assert auto.queue.counts() == {}
        redelivered = client.post("/api/events", json=[blob_created("g1", "a.csv"), blob_created("g2", "b.csv")])
        assert redelivered.json() == {"accepted": ["g1", "g2"], "ignored": []}
        assert sorted(j.payload["blob"] for j in auto.queue.recent(10)) == ["incoming/a.csv", "incoming/b.csv"]

    def test_a_batch_of_2000_events_is_queued_whole(self, auto: Automation, client: TestClient) -> None:
        batch = [blob_created(f"e{i}", f"f{i}.csv") for i in range(2000)]
        answer = client.post("/api/events", json=batch)
        assert answer.status_code == 200 and len(answer.json()["accepted"]) == 2000
        assert auto.queue.counts() == {"queued": 2000}

    def test_more_events_than_event_grid_ever_batches_is_a_413(self, auto: Automation) -> None:
        with pytest.raises(PayloadTooLarge):
            control.events(auto, [blob_created(f"e{i}", "a.csv") for i in range(control.MAX_EVENTS + 1)])
        assert auto.queue.counts() == {}


def test_a_ledger_entry_never_outlives_a_job_that_could_not_be_queued(auto: Automation) -> None:
    """The job insert fails (its id is taken) after the key was recorded: the key must go with it."""
    taken = auto.queue.put(Deploy(model_version="1"))[0]
    clash = DataArrived(blob="incoming/a.csv", etag="1", message_id=taken.job_id)
    with pytest.raises(sqlite3.IntegrityError):
        accept_event(auto, clash, "blob:incoming/a.csv:1")
    assert accept_event(auto, DataArrived(blob="incoming/a.csv", etag="1"), "blob:incoming/a.csv:1")  # redelivery taken
    assert [j.kind for j in auto.queue.recent(5)] == ["DataArrived", "Deploy"]


def test_status_lists_every_dead_letter_however_old_with_a_count(auto: Automation) -> None:
    for i in range(9):
        job, _ = auto.queue.put(Deploy(model_version=str(i)))
        auto.queue.claim("control")
        auto.queue.fail(job.job_id, f"broken {i} " + "x" * 5000, retry=False)
    for i in range(60):  # newer, healthy work pushes the dead ones out of any "recent" window
        auto.queue.put(Deploy(model_version=str(i)))
    answer = control.status(auto)
    assert answer["dead_letters_total"] == 9
    assert sorted(d["error"].split()[1] for d in answer["dead_letters"]) == [str(i) for i in range(9)]
    assert all(len(d["error"]) <= 500 for d in answer["dead_letters"])  # bounded, never the whole reason


class TestBodyLimits:
    @pytest.mark.parametrize("route", ["events", "retrain", "redeploy"])
    def test_deep_nesting_is_a_422_not_a_500(self, client: TestClient, route: str) -> None:
        for depth in (control.MAX_DEPTH + 1, 100_000):
            answer = client.post(f"/api/{route}", content=b"[" * depth + b"]" * depth)
            assert answer.status_code == 422, (depth, answer.text[:200])
            assert "deeper than" in answer.json()["error"]

    def test_a_body_over_the_limit_is_a_413_declared_or_streamed(self, auto: Automation, client: TestClient) -> None:
        big = b"[" + b" " * (control.MAX_BODY_BYTES + 10) + b"]"
        declared = client.post("/api/events", content=big)
        assert declared.status_code == 413 and "limit" in declared.json()["error"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: refused once the count goes over
            for _ in range(4 * control.MAX_BODY_BYTES // 65536):
                yield b" " * 65536

        streamed = client.post("/api/retrain", content=chunks())
        assert streamed.status_code == 413
        assert auto.queue.counts() == {}

    def test_a_body_under_the_limit_still_works(self, client: TestClient) -> None:
        assert client.post("/api/retrain", json={"ExperimentName": "bankmarketing"}).status_code == 202


def test_a_queue_write_that_waits_does_not_hold_other_requests(auto: Automation, tmp_path: Path) -> None:
    """While SQLite's write lock is held elsewhere, a retrain waits for it; /metrics must answer meanwhile."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_control_app(auto, key_ok=lambda key: key == KEY), host="127.0.0.1",
                                           port=port, log_level="warning"))
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            if server.started:
                break
            threading.Event().wait(0.05)
        assert server.started
        lock = sqlite3.connect(tmp_path / "queue.db", isolation_level=None)  # the fixture's queue file
        lock.execute("BEGIN IMMEDIATE")  # another writer holds the queue
        answers: list[httpx.Response] = []
        waiting = threading.Thread(target=lambda: answers.append(
            httpx.post(f"{base}/api/retrain", headers={"x-functions-key": KEY}, timeout=20)))
        waiting.start()
        try:
            threading.Event().wait(0.5)  # the retrain is now waiting for the lock
            assert not answers
            assert httpx.get(f"{base}/metrics", timeout=5).status_code == 200
        finally:
            lock.execute("COMMIT")
            lock.close()
        waiting.join(20)
        assert answers and answers[0].status_code == 202 and json.loads(answers[0].text)["status"] == "queued"
    finally:
        server.should_exit = True
        serving.join(10)
