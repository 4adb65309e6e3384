"""A first start's quick model, then the full-budget one, through the real work queue, gate and deploy handlers.

The trainer is a stand-in that registers hand-built models (a uniform guess or a logistic regression), so the
order of the runs, their budgets, the gate between them and what the console and the status say are tested
without AutoML; tests/e2e/test_up.py runs the real pipeline.
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
from shared.automation.first_model import FirstModels, FirstModelWatch, request_first_models
from shared.automation.handlers import Automation, request_training
from shared.automation.worker import Worker
from shared.dataset_registration import load_frame, register_dataset
from shared.features import FeatureEncoder
from shared.model import BankMarketingModel, Member
from shared.ports import CHAMPION, TrainingRequest, TrainingSubmission
from tests.automation_fakes import in_memory_automation

DATA = Path(__file__).resolve().parents[2] / "shared" / "resources" / "bankmarketing_train.csv"


class HandBuiltTrainer:
    """Registers a logistic regression (`good`) or a uniform guess for each request, as the pipeline would tag it."""

    def __init__(self, auto: Automation, good: dict[bool, bool]) -> None:
        self.auto, self.good = auto, good  # provisional -> good model?
        self.requests: list[TrainingRequest] = []

    def train(self, request: TrainingRequest) -> TrainingSubmission:
        self.requests.append(request)
        frame = load_frame(self.auto.datasets, request.dataset)
        y = (frame[schema.TARGET] == "yes").to_numpy(dtype=int)
        encoder = FeatureEncoder.fit(frame, y)
        good = self.good[request.provisional]
        estimator = (make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=500)) if good
                     else DummyClassifier(strategy="uniform", random_state=0))
        model = BankMarketingModel(encoder=encoder, members=[Member("lrl1" if good else "dummy", 1.0,
                                                                    estimator.fit(encoder.transform(frame), y))])
        tags = {"dataset": request.dataset.ref, "budget_s": f"{request.budget_s:g}"}
        version = self.auto.registry.register(model, run_id=f"run-{len(self.requests)}", metrics={"AUC_weighted": 0.9 if good else 0.5},
                                              tags=tags | ({"provisional": "true"} if request.provisional else {}), input_example=None)
        return TrainingSubmission(run_id=f"run-{len(self.requests)}", dataset=request.dataset.ref, model_version=version.version)


@pytest.fixture
def auto(tmp_path: Path) -> Automation:
    automation = in_memory_automation(tmp_path, automl_budget_s=60, quick_budget_s=4)
    out = io.StringIO()
    pd.read_csv(DATA).head(3000).to_csv(out, index=False)
    register_dataset(automation.datasets, out.getvalue().encode(), name="bankmarketing")
    return automation


def _step(auto: Automation, lane: str) -> None:
    job = Worker(auto).run_once(lane)
    assert job is not None and job.status == "done", job


def test_the_quick_model_is_served_first_then_the_full_one_replaces_it(auto: Automation) -> None:
    trainer = auto.trainer = HandBuiltTrainer(auto, good={True: False, False: True})
    watch = FirstModelWatch(auto, request_first_models(auto), started=0.0, clock=lambda: 42.0)
    assert watch.poll() == []  # nothing served yet
    _step(auto, "training")
    _step(auto, "control")  # gate + deploy of the quick model
    [served] = watch.poll()
    assert "first model served" in served and "after 42.0s" in served and "v1" in served and "provisional" in served
    assert control.status(auto)["champion"] == {"model_version": "1", "metrics": {"AUC_weighted": 0.5}, "dataset": "bankmarketing:1",
                                                "provisional": True}
    _step(auto, "training")
    assert watch.poll() == []  # trained, not yet gated
    _step(auto, "control")
    [replaced] = watch.poll()
    assert "full model served" in replaced and "v2" in replaced and watch.done
    assert [(r.budget_s, r.provisional) for r in trainer.requests] == [(4.0, True), (60.0, False)]
    assert auto.deployer.current() == "2" and control.status(auto)["champion"]["provisional"] is False
    assert watch.poll() == []  # each moment is said once


def test_a_full_model_the_gate_refuses_leaves_the_quick_one_serving_and_says_why(auto: Automation) -> None:
    auto.trainer = HandBuiltTrainer(auto, good={True: True, False: False})
    watch = FirstModelWatch(auto, request_first_models(auto), started=0.0, clock=lambda: 7.0)
    for lane in ("training", "control", "training", "control"):
        _step(auto, lane)
    lines = watch.poll()
    assert "first model served" in lines[0]
    assert "full model v2 not deployed" in lines[1] and "kept champion" in lines[1] and "v1 stays" in lines[1]
    assert watch.done and auto.registry.alias(CHAMPION).version == "1"  # type: ignore[union-attr]
    assert control.status(auto)["champion"]["provisional"] is True


def test_a_request_while_the_runs_are_queued_collapses_into_the_full_run_not_the_quick_one(auto: Automation) -> None:
    first = request_first_models(auto)
    job_id, created = request_training(auto, "timer")
    assert (job_id, created) == (first.full_job, False)
    assert first.quick_job and first.quick_job != first.full_job
    assert FirstModels.pending(auto) == first  # what a restart in the middle of the first start finds


@pytest.mark.parametrize("quick", [0.0, 60.0, 90.0])
def test_no_quick_model_when_disabled_or_not_shorter_than_the_full_budget(tmp_path: Path, quick: float) -> None:
    auto = in_memory_automation(tmp_path, automl_budget_s=60, quick_budget_s=quick)
    first = request_first_models(auto)
    assert first.quick_job is None
    assert [j.payload["budget_s"] for j in auto.queue.recent(10, kind="RequestTraining")] == [0.0]  # the settings' budget


def test_the_full_run_waits_in_the_queue_until_the_quick_model_is_served(auto: Automation) -> None:
    """Two cores: the full run beside the scoring service's start would delay the first prediction."""
    trainer = auto.trainer = HandBuiltTrainer(auto, good={True: False, False: True})
    first = request_first_models(auto)
    _step(auto, "training")  # the quick run
    waiting = Worker(auto).run_once("training")
    assert waiting is not None and waiting.job_id == first.full_job and waiting.status == "queued"
    assert "quick first model" in waiting.result["progress"] and waiting.attempts == 0  # deferred, no attempt used
    assert len(trainer.requests) == 1
    assert request_training(auto, "timer") == (first.full_job, False)  # still the one queued run others collapse into
