"""`process_work`, the queue trigger, delivered real messages from Azurite's queue as the Functions host does.

The host's part is played by `deliver`: receive a message (its visibility timeout is the lease), build
the `azure.functions.QueueMessage` the worker gets (body decoded from base64, dequeue count), call the
function, delete the message when it returns. What it cannot check: the host's own retry/poison policy
after an exception (host.json), which the job record's attempt count makes us independent of.
The work queue is the Azure adapter on Azurite; the other ports are in-memory fakes.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage  # the concrete message the Python worker builds

from functions import runtime
from shared.adapters.azure.work_queue import AzureWorkQueue
from shared.automation.handlers import Automation
from shared.config import load_settings
from tests.automation_fakes import FakeDeployer, InMemoryDatastore, make_automation
from tests.azurite import AzuritePorts
from tests.fakes import InMemoryDatasetStore, InMemoryModelRegistry, InMemoryRunTracker
from tests.unit.test_function_app import FUNCTIONS  # the host indexes the app once per process


@pytest.fixture
def auto(azurite: AzuritePorts, tmp_path: Path) -> Automation:
    """The composition as the function app builds it (AzureWebJobsStorage -> the Azure queue), on fresh tables."""
    settings = load_settings(home=tmp_path, azure_web_jobs_storage=azurite.connection_string(),
                             work_queue=f"work-{uuid.uuid4().hex[:10]}")
    queue = AzureWorkQueue.from_settings(settings)
    tag = uuid.uuid4().hex[:10]  # the tables of this test only (the fixed names are shared by the session)
    from azure.data.tables import TableClient

    queue.jobs, queue.events = (TableClient.from_connection_string(azurite.connection_string(), f"{t}{tag}")
                                for t in ("jobs", "events"))
    queue.jobs.create_table()
    queue.events.create_table()
    automation = make_automation(settings=settings, datasets=InMemoryDatasetStore(), registry=InMemoryModelRegistry(),
                                 tracker=InMemoryRunTracker(), datastore=InMemoryDatastore(), deployer=FakeDeployer(), queue=queue)
    runtime.use(automation)
    return automation


def deliver(queue: AzureWorkQueue) -> int:
    """One pass of the host over the queue: every visible message to `process_work`; returns how many."""
    count = 0
    for msg in list(queue.queue.receive_messages(visibility_timeout=60, max_messages=32)):
        request = QueueMessage(id=msg.id, body=msg.content.encode(), dequeue_count=msg.dequeue_count,
                                    pop_receipt=msg.pop_receipt)  # type: ignore[no-untyped-call]
        FUNCTIONS["process_work"].get_user_function()(request)
        queue.queue.delete_message(msg)
        count += 1
    return count


def test_process_work_is_a_queue_trigger_on_bankops_work() -> None:
    bindings = json.loads(json.dumps(FUNCTIONS["process_work"].get_bindings_dict()["bindings"], default=lambda d: d.name))
    assert bindings == [{"type": "queueTrigger", "direction": "IN", "name": "msg", "queueName": "bankops-work",
                         "connection": "AzureWebJobsStorage"}]


def test_a_job_that_cannot_succeed_ends_dead_with_its_reason_in_the_poison_queue(auto: Automation) -> None:
    answer = FUNCTIONS["rollback"].get_user_function()(
        func.HttpRequest(method="POST", url="http://localhost:7071/api/rollback", body=b""))
    assert answer.status_code == 202
    job_id = json.loads(answer.get_body())["Id"]
    assert isinstance(auto.queue, AzureWorkQueue)
    assert deliver(auto.queue) == 1
    job = auto.queue.get(job_id)
    assert job is not None and job.status == "dead" and "no previous version" in job.error
    poisoned = [json.loads(m.content) for m in auto.queue.poison.receive_messages(max_messages=5)]
    assert poisoned == [{"job_id": job_id, "reason": job.error}]
    assert deliver(auto.queue) == 0  # nothing comes back


def test_a_repeated_delivery_of_a_settled_job_does_nothing(auto: Automation) -> None:
    answer = FUNCTIONS["rollback"].get_user_function()(
        func.HttpRequest(method="POST", url="http://localhost:7071/api/rollback", body=b""))
    job_id = json.loads(answer.get_body())["Id"]
    assert isinstance(auto.queue, AzureWorkQueue)
    auto.queue.queue.send_message(json.dumps({"job_id": job_id, "lane": "control"}))  # at-least-once: a second copy
    assert deliver(auto.queue) == 2
    job = auto.queue.get(job_id)
    assert job is not None and job.status == "dead" and job.attempts == 1
    assert len(list(auto.queue.poison.receive_messages(max_messages=5))) == 1


def test_the_composition_root_builds_the_queue_of_each_backend(azurite: AzuritePorts, tmp_path: Path) -> None:
    from shared.adapters.local.work_queue import SqliteWorkQueue
    from shared.bootstrap import AzureBackend, Backend
    from tests.azure_fakes import FakeMLClient

    local = Backend(load_settings(home=tmp_path / "local")).work_queue
    assert isinstance(local, SqliteWorkQueue) and local.path == tmp_path / "local" / "queue.db"
    settings = load_settings(home=tmp_path / "azure", backend="azure", datastore="azurite",
                             azure_web_jobs_storage=azurite.connection_string())
    built = AzureBackend(settings, ml_client=FakeMLClient(store=tmp_path / "ws"), credential=object()).work_queue
    assert isinstance(built, AzureWorkQueue)
    assert (built.queue.queue_name, built.poison.queue_name) == ("bankops-work", "bankops-work-poison")
    assert (built.jobs.table_name, built.events.table_name) == ("bankopsjobs", "bankopsevents")
    assert not (tmp_path / "azure" / "queue.db").exists()  # nothing on a local disk


def test_the_azure_queue_without_storage_settings_names_them(tmp_path: Path) -> None:
    from shared.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="AzureWebJobsStorage__queueServiceUri"):
        AzureWorkQueue.from_settings(load_settings(home=tmp_path, backend="azure"))
