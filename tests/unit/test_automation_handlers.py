"""The event handlers, run through the real work queue (SQLite in tmp_path) with in-memory ports.

Models here are tiny hand-built blends, so the gate and deploy logic are tested without AutoML.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shared import schema
from shared.automation import control
from shared.automation.handlers import Automation, on_run_completed
from shared.automation.messages import RunCompleted
from shared.automation.watcher import IncomingWatcher
from shared.automation.worker import Worker
from shared.dataset_registration import load_frame, register_dataset
from shared.features import FeatureEncoder
from shared.model import BankMarketingModel, Member
from shared.ports import CHAMPION, PREVIOUS
from tests.automation_fakes import in_memory_automation

DATA = Path(__file__).resolve().parents[2] / "shared" / "resources" / "bankmarketing_train.csv"


def _csv(frame: pd.DataFrame) -> bytes:
    out = io.StringIO()
    frame.to_csv(out, index=False)
    return out.getvalue().encode()


@pytest.fixture(scope="module")
def full() -> pd.DataFrame:
    return pd.read_csv(DATA)


@pytest.fixture
def auto(tmp_path: Path) -> Automation:
    return in_memory_automation(tmp_path, automl_budget_s=3)


def _register(auto: Automation, frame: pd.DataFrame) -> str:
    return register_dataset(auto.datasets, _csv(frame), name="bankmarketing").dataset.ref


def _model(auto: Automation, dataset_ref: str, *, good: bool) -> str:
    name, _, version = dataset_ref.partition(":")
    frame = load_frame(auto.datasets, auto.datasets.get(name, int(version)))
    y = (frame[schema.TARGET] == "yes").to_numpy(dtype=int)
    encoder = FeatureEncoder.fit(frame, y)
    x = encoder.transform(frame)
    estimator = (make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=1000)) if good
                 else DummyClassifier(strategy="uniform", random_state=0))
    model = BankMarketingModel(encoder=encoder, members=[Member("lrl1" if good else "dummy", 1.0, estimator.fit(x, y))])
    return auto.registry.register(model, run_id=f"run-{good}", metrics={}, tags={"dataset": dataset_ref}, input_example=None).version


class TestDataArrival:
    def test_a_valid_file_registers_a_version_and_queues_one_training_run(self, auto: Automation, full: pd.DataFrame) -> None:
        auto.datastore.write("incoming", "batch1.csv", _csv(full.head(600)))
        watcher = IncomingWatcher(auto)
        assert watcher.poll() == 0  # first sight: wait until the file is stable
        assert watcher.poll() == 1
        assert watcher.poll() == 0  # the same write is never reported twice
        Worker(auto).run_once("control")
        assert [v.rows for v in auto.datasets.list()] == [600]
        assert auto.datastore.list("processed")[0].name == "batch1.csv"
        assert auto.queue.counts() == {"done": 1, "queued": 1}
        assert auto.queue.recent(1)[0].kind == "RequestTraining"

    def test_a_new_file_appends_to_the_previous_version_without_duplicates(self, auto: Automation, full: pd.DataFrame) -> None:
        _register(auto, full.head(600))
        auto.datastore.write("incoming", "more.csv", _csv(full.iloc[500:800]))  # 100 rows overlap
        control.events(auto, [_blob_event("e1", "more.csv", auto.datastore.info("incoming", "more.csv").etag)])
        Worker(auto).run_once("control")
        assert [v.rows for v in auto.datasets.list()] == [600, 800]

    def test_a_file_of_rows_already_registered_adds_no_version(self, auto: Automation, full: pd.DataFrame) -> None:
        _register(auto, full.head(600))
        auto.datastore.write("incoming", "old.csv", _csv(full.head(200)))
        control.events(auto, [_blob_event("e1", "old.csv", auto.datastore.info("incoming", "old.csv").etag)])
        job = Worker(auto).run_once("control")
        assert job is not None and job.result["outcome"] == "unchanged"
        assert len(auto.datasets.list()) == 1
        assert auto.queue.recent(5, kind="RequestTraining") == []

    def test_a_bad_file_is_quarantined_with_a_reason_and_nothing_is_registered(self, auto: Automation, full: pd.DataFrame) -> None:
        auto.datastore.write("incoming", "bad.csv", _csv(full.head(300).drop(columns=["age"])))
        control.events(auto, [_blob_event("e1", "bad.csv", auto.datastore.info("incoming", "bad.csv").etag)])
        job = Worker(auto).run_once("control")
        assert job is not None and job.result["outcome"] == "quarantined"
        assert auto.datasets.list() == []
        reason = auto.datastore.read("quarantine", "bad.csv.reason.txt").decode()
        assert "missing column(s): age" in reason
        assert auto.datastore.info("incoming", "bad.csv") is None
        assert auto.queue.recent(5, kind="RequestTraining") == []

    def test_a_duplicate_event_does_the_work_once(self, auto: Automation, full: pd.DataFrame) -> None:
        auto.datastore.write("incoming", "a.csv", _csv(full.head(600)))
        etag = auto.datastore.info("incoming", "a.csv").etag
        first = control.events(auto, [_blob_event("id-1", "a.csv", etag)])
        again = control.events(auto, [_blob_event("id-2", "a.csv", etag)])  # another id, same write
        assert first["accepted"] == ["id-1"] and again["accepted"] == []
        assert auto.queue.counts() == {"queued": 1}

    def test_the_same_content_dropped_twice_registers_one_version(self, auto: Automation, full: pd.DataFrame) -> None:
        for name in ("one.csv", "two.csv"):
            auto.datastore.write("incoming", name, _csv(full.head(600)))
            control.events(auto, [_blob_event(name, name, auto.datastore.info("incoming", name).etag)])
            job = Worker(auto).run_once("control")
        assert len(auto.datasets.list()) == 1
        assert job is not None and job.result["outcome"] == "unchanged"

    def test_an_event_for_an_overwritten_blob_is_left_to_the_newer_event(self, auto: Automation, full: pd.DataFrame) -> None:
        auto.datastore.write("incoming", "a.csv", _csv(full.head(600)))
        old = auto.datastore.info("incoming", "a.csv").etag
        auto.datastore.write("incoming", "a.csv", _csv(full.head(700)))
        control.events(auto, [_blob_event("old", "a.csv", old)])
        job = Worker(auto).run_once("control")
        assert job is not None and job.result["outcome"] == "ignored"
        assert auto.datasets.list() == []


def _blob_event(event_id: str, name: str, etag: str, container: str = "incoming", api: str = "PutBlob") -> dict[str, object]:
    return {"id": event_id, "eventType": "Microsoft.Storage.BlobCreated",
            "subject": f"/blobServices/default/containers/{container}/blobs/{name}",
            "data": {"api": api, "eTag": etag, "url": f"https://acct.blob.core.windows.net/{container}/{name}",
                     "sequencer": "0000000000000001"}}


class TestGateAndDeploy:
    def test_the_first_model_is_deployed_and_becomes_champion(self, auto: Automation, full: pd.DataFrame) -> None:
        ref = _register(auto, full.head(2000))
        v1 = _model(auto, ref, good=True)
        result = on_run_completed(auto, RunCompleted(run_id="r1", model_version=v1, dataset=ref))
        assert result["outcome"] == "deployed"
        assert auto.deployer.current() == v1
        assert auto.registry.alias(CHAMPION).version == v1

    def test_a_worse_challenger_stays_registered_but_not_deployed(self, auto: Automation, full: pd.DataFrame) -> None:
        ref = _register(auto, full.head(2000))
        v1 = _model(auto, ref, good=True)
        on_run_completed(auto, RunCompleted(run_id="r1", model_version=v1, dataset=ref))
        v2 = _model(auto, ref, good=False)
        result = on_run_completed(auto, RunCompleted(run_id="r2", model_version=v2, dataset=ref))
        assert result["outcome"] == "kept_champion"
        assert "kept champion" in result["reason"] and f"v{v2}" in result["reason"]
        assert auto.deployer.current() == v1
        assert auto.registry.alias(CHAMPION).version == v1

    def test_a_failed_smoke_test_restores_the_previous_model(self, auto: Automation, full: pd.DataFrame) -> None:
        ref = _register(auto, full.head(2000))
        v1 = _model(auto, ref, good=True)
        on_run_completed(auto, RunCompleted(run_id="r1", model_version=v1, dataset=ref))
        v2 = _model(auto, ref, good=True)
        auto.deployer.broken_versions.add(v2)
        result = on_run_completed(auto, RunCompleted(run_id="r2", model_version=v2, dataset=ref))
        assert result["outcome"] == "rolled_back"
        assert auto.deployer.history == [v1, v2, v1]
        assert auto.registry.alias(CHAMPION).version == v1

    def test_rollback_serves_the_previous_version(self, auto: Automation, full: pd.DataFrame) -> None:
        ref = _register(auto, full.head(2000))
        v1 = _model(auto, ref, good=True)
        on_run_completed(auto, RunCompleted(run_id="r1", model_version=v1, dataset=ref))
        v2 = _model(auto, ref, good=True)
        on_run_completed(auto, RunCompleted(run_id="r2", model_version=v2, dataset=ref))
        assert auto.deployer.current() == v2 and auto.registry.alias(PREVIOUS).version == v1
        control.rollback(auto)
        job = Worker(auto).run_once("control")
        assert job is not None and job.status == "done", job
        assert auto.deployer.current() == v1

    def test_a_new_champion_is_prepared_for_batch_scoring_in_the_batch_lane(self, auto: Automation, full: pd.DataFrame) -> None:
        """Without a remote batch runner the champion's batch model is loaded and prepared in this
        process (its boosters compiled; this one has none); a version replaced meanwhile is skipped."""
        ref = _register(auto, full.head(2000))
        v1 = _model(auto, ref, good=True)
        on_run_completed(auto, RunCompleted(run_id="r1", model_version=v1, dataset=ref))
        v2 = _model(auto, ref, good=True)
        on_run_completed(auto, RunCompleted(run_id="r2", model_version=v2, dataset=ref))
        assert Worker(auto).run_once("control") is None  # nothing of it waits in the deploy lane
        stale = Worker(auto).run_once("batch")
        assert stale is not None and stale.kind == "PrepareBatch" and stale.status == "done"
        assert stale.result == {"outcome": "skipped", "reason": f"v{v1} is no longer the champion"}
        fresh = Worker(auto).run_once("batch")
        assert fresh is not None and fresh.result == {"outcome": "prepared", "model_version": v2, "native_members": []}

    def test_redeploy_of_an_unknown_version_is_refused_before_queueing(self, auto: Automation) -> None:
        from shared.errors import NotFound

        with pytest.raises(NotFound, match="no version 7"):
            control.redeploy(auto, {"model_version": 7})
        assert auto.queue.counts() == {}


class TestTrainingRequests:
    def test_requests_while_one_is_queued_collapse_into_one_run(self, auto: Automation) -> None:
        first = control.retrain(auto, {"ExperimentName": "bankmarketing"})
        second = control.retrain(auto, None)
        assert first["Id"] == second["Id"]
        assert auto.queue.counts() == {"queued": 1}

    def test_a_job_interrupted_by_a_crash_is_queued_again_on_restart(self, auto: Automation) -> None:
        control.retrain(auto, None)
        job = auto.queue.claim("training")  # the host dies while this runs
        assert job is not None
        recovered = auto.queue.recover()
        assert [j.status for j in recovered] == ["queued"]
        assert "interrupted" in recovered[0].error
