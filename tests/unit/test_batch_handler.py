"""The batch pipeline: a CSV dropped into batch/ is scored by the champion into predictions/.

Runs through the real work queue (SQLite) and the real local datastore (folders in tmp_path);
the registry, tracker and deployer are the in-memory fakes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shared.adapters.local.datastore import LocalDatastore
from shared.automation import control, eventgrid
from shared.automation.handlers import Automation
from shared.automation.messages import BatchArrived
from shared.automation.watcher import IncomingWatcher
from shared.automation.work_queue import WorkQueue
from shared.automation.worker import Worker
from shared.config import load_settings
from shared.ports import CHAMPION
from tests import samples
from tests.automation_fakes import FakeDeployer, InMemoryDatastore, make_automation
from tests.batch_samples import clients, expected_proba, tiny_model
from tests.fakes import InMemoryDatasetStore, InMemoryModelRegistry, InMemoryRunTracker


def _automation(tmp_path: Path, datastore: object, *, registry: InMemoryModelRegistry | None = None, **ports: Any) -> Automation:
    """The champion (the tiny model) in `registry`; the batch runner the local one unless given."""
    auto = make_automation(settings=load_settings(home=tmp_path / "home"), datasets=InMemoryDatasetStore(),
                           registry=registry or InMemoryModelRegistry(), tracker=InMemoryRunTracker(),
                           datastore=datastore,  # type: ignore[arg-type]
                           deployer=FakeDeployer(), queue=WorkQueue(tmp_path / "queue.db", retry_delay_s=0), **ports)
    version = auto.registry.register(tiny_model(), run_id="r1", metrics={}, tags={}, input_example=None).version
    auto.registry.set_alias(CHAMPION, version)
    return auto


@pytest.fixture
def auto(tmp_path: Path) -> Automation:
    return _automation(tmp_path, LocalDatastore(tmp_path / "datastore"))


def _frame(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)


def _drop_and_run(auto: Automation, name: str, data: bytes):  # type: ignore[no-untyped-def]
    auto.datastore.write("batch", name, data)
    watcher = IncomingWatcher(auto, container="batch")
    watcher.poll()  # first sight: wait until the file is stable
    assert watcher.poll() == 1
    assert auto.queue.recent(1)[0].kind == "BatchArrived"
    return Worker(auto).run_once("batch")


class TestBatchFolder:
    def test_a_dropped_file_is_scored_into_predictions_and_the_run_is_recorded(self, auto: Automation) -> None:
        frame = clients(1500, seed=21)
        frame.loc[7, "age"] = "old"
        job = _drop_and_run(auto, "campaign-7.csv", samples.csv_bytes(frame))
        assert job is not None and job.status == "done", job
        assert job.result["outcome"] == "scored"
        out = _frame(auto.datastore.read("predictions", "campaign-7.predictions.csv"))
        kept = frame.drop(index=[7])
        assert out["client_id"].tolist() == kept["client_id"].tolist()
        np.testing.assert_allclose(out["probability_yes"].astype(float), expected_proba(tiny_model(), kept), atol=1e-9)
        rejects = _frame(auto.datastore.read("predictions", "campaign-7.predictions.rejects.csv"))
        assert rejects["line"].tolist() == ["9"]

        run = auto.tracker.runs[-1]  # type: ignore[attr-defined]
        assert run.tags["bankops.kind"] == "batch" and run.status == "FINISHED"
        assert run.params["model_version"] == "1" and run.params["input"] == "batch/campaign-7.csv"
        assert len(run.params["input_sha256"]) == 64
        assert run.metrics["rows_read"] == 1500 and run.metrics["rows_scored"] == 1499 and run.metrics["rows_rejected"] == 1
        assert run.metrics["duration_s"] > 0

        status = control.status(auto)
        [batch] = status["batch_runs"]
        assert batch["outcome"] == "scored" and batch["rows_scored"] == 1499 and batch["model_version"] == "1"
        assert batch["output"] == "predictions/campaign-7.predictions.csv" and batch["run_id"] == run.run_id

    def test_the_same_file_is_scored_once(self, auto: Automation) -> None:
        _drop_and_run(auto, "a.csv", samples.csv_bytes(clients(50)))
        watcher = IncomingWatcher(auto, container="batch")
        watcher.poll()
        assert watcher.poll() == 0  # the ledger remembers this write
        assert auto.queue.counts() == {"done": 1}

    def test_a_scored_file_left_in_place_is_not_offered_again_every_poll(self, auto: Automation, caplog) -> None:
        """The scored list stays in batch/: the watcher offers it once, not once a second (the
        ledger would refuse it each time, and the log said so at every poll)."""
        auto.datastore.write("batch", "kept.csv", samples.csv_bytes(clients(20)))
        watcher = IncomingWatcher(auto, container="batch")
        caplog.set_level("INFO", logger="bankops")
        assert [watcher.poll() for _ in range(6)] == [0, 1, 0, 0, 0, 0]
        assert "duplicate event ignored" not in caplog.text
        auto.datastore.write("batch", "kept.csv", samples.csv_bytes(clients(21)))  # a new write is a new arrival
        assert [watcher.poll() for _ in range(3)] == [0, 1, 0]

    def test_a_file_with_wrong_columns_is_quarantined_and_nothing_is_written(self, auto: Automation) -> None:
        job = _drop_and_run(auto, "bad.csv", samples.csv_bytes(clients(50).drop(columns=["month"])))
        assert job is not None and job.result["outcome"] == "quarantined"
        assert auto.datastore.list("predictions") == []
        assert "missing column(s): month" in auto.datastore.read("quarantine", "bad.csv.reason.txt").decode()
        assert auto.datastore.info("batch", "bad.csv") is None

    def test_without_a_champion_the_job_fails_with_what_to_do(self, tmp_path: Path) -> None:
        auto = make_automation(settings=load_settings(home=tmp_path / "home"), datasets=InMemoryDatasetStore(),
                               registry=InMemoryModelRegistry(), tracker=InMemoryRunTracker(),
                               datastore=LocalDatastore(tmp_path / "ds"), deployer=FakeDeployer(), queue=WorkQueue(tmp_path / "q.db"))
        job = _drop_and_run(auto, "a.csv", samples.csv_bytes(clients(10)))
        assert job is not None and job.status == "dead" and "no champion" in job.error

    def test_a_datastore_without_streaming_works_too(self, tmp_path: Path) -> None:
        auto = _automation(tmp_path, InMemoryDatastore())
        job = _drop_and_run(auto, "mem.csv", samples.csv_bytes(clients(30)))
        assert job is not None and job.result["rows_written"] == 30
        assert len(_frame(auto.datastore.read("predictions", "mem.predictions.csv"))) == 30


def test_a_blob_created_event_in_the_batch_container_becomes_batch_arrived() -> None:
    [event] = eventgrid.parse({"id": "1", "eventType": eventgrid.BLOB_CREATED,
                               "subject": "/blobServices/default/containers/batch/blobs/list.csv",
                               "data": {"api": "PutBlockList", "eTag": "0x1", "url": "https://a.blob.core.windows.net/batch/list.csv"}})
    found = eventgrid.to_message(event)
    assert found is not None
    message, key = found
    assert isinstance(message, BatchArrived) and message.blob == "batch/list.csv" and key == "blob:batch/list.csv:0x1"
