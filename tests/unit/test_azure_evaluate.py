"""The gate inside Azure ML: the training pipeline's evaluate step, and the completion path that reads its decision.

The pipeline is submitted to the fake workspace (tests/azure_fakes.py), which runs the SDK's own
validation, component registration and reference resolution on it; the evaluate step then runs as
the cluster would run it: its command line in a new Python process on the uploaded code folder.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shared import schema
from shared.adapters.azure.registry import AzureModelRegistry
from shared.adapters.azure.trainer import AzureTrainer
from shared.automation.handlers import Automation, on_run_completed
from shared.automation.messages import RunCompleted
from shared.automation.work_queue import WorkQueue
from shared.config import Settings, load_settings
from shared.dataset_registration import register_dataset
from shared.errors import NotFound
from shared.mlflow_model import example_frame
from shared.ports import CHAMPION, DatasetVersion
from shared.training.pipeline import TrainingRequest
from tests import samples
from tests.automation_fakes import InMemoryDatastore, make_automation
from tests.azure_fakes import FakeMLClient, mount_dataset
from tests.contract.conftest import tiny_model
from tests.contract.test_trainer_contract import automl_output
from tests.fakes import InMemoryDatasetStore, InMemoryRunTracker


class Rig:
    """A workspace with one dataset version, a registry and a trainer that knows the champion."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.fake = FakeMLClient()
        self.datasets = InMemoryDatasetStore()
        self.dataset: DatasetVersion = register_dataset(self.datasets, samples.csv_bytes(samples.stratified_sample(600, seed=2)),
                                                        name="bankmarketing").dataset
        self.frame = pd.read_csv(io.BytesIO(self.datasets.read(self.dataset)))
        self.settings: Settings = load_settings(home=tmp_path / "home")
        self.registry = AzureModelRegistry(self.fake, self.settings.model_name, runs=self.fake.runs, cache_dir=tmp_path / "cache")
        self.trainer = AzureTrainer(self.fake, self.settings, registry=self.registry)
        self.mounted = mount_dataset(self.datasets, self.dataset, tmp_path / "mounted")

    def submit(self) -> str:
        return self.trainer.train(TrainingRequest(dataset=self.dataset, reason="test")).run_id

    def champion_v1(self, *, shuffled: bool = False) -> None:
        """A champion (our own MLflow pyfunc, as `register` logs it); trained on shuffled labels it is chance."""
        example = example_frame(self.frame.drop(columns=[schema.TARGET]).head(2).to_dict("records"))
        typed = samples.stratified_sample(600, seed=2)
        if shuffled:
            typed[schema.TARGET] = np.random.default_rng(1).permutation(typed[schema.TARGET].to_numpy())
        self.registry.register(tiny_model(typed, 1.0), run_id="r0", metrics={}, tags={"dataset": self.dataset.ref},
                               input_example=example)
        self.registry.set_alias(CHAMPION, "1")

    def challenger(self, *, shuffled: bool) -> Path:
        """AutoML's best model; trained on shuffled labels it is no better than chance."""
        frame = self.frame.copy()
        if shuffled:
            frame[schema.TARGET] = np.random.default_rng(0).permutation(frame[schema.TARGET].to_numpy())
        return automl_output(frame, self.tmp / ("noise" if shuffled else "good") / "mlflow-model")

    def automation(self) -> Automation:
        return make_automation(settings=self.settings, datasets=self.datasets, registry=self.registry, tracker=InMemoryRunTracker(),
                               datastore=InMemoryDatastore(), deployer=None,  # type: ignore[arg-type]  # keep: nothing is deployed
                               queue=WorkQueue(self.tmp / "queue.db"), trainer=self.trainer)


def _no_loading(version: str) -> Any:
    raise AssertionError(f"the function app loaded model v{version}")


def test_a_worse_challenger_is_judged_in_azure_ml_and_the_completion_keeps_the_champion(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.champion_v1()
    run = rig.submit()
    submitted = rig.fake.jobs.submitted[-1]
    assert list(submitted.jobs) == ["step", "gate"]
    # the champion of submit time is the step's opponent, resolved by the SDK as on a real submit
    assert str(submitted.inputs["champion_model"].path).endswith(f"/models/{rig.settings.model_name}/versions/1")
    rig.fake.complete_automl(run, rig.challenger(shuffled=True), {"AUC_weighted": 0.5}, dataset_folder=rig.mounted)
    job = rig.fake.jobs.get(run)
    assert job.status == "Completed", getattr(job, "error", "")
    assert job.tags["bankops_decision"] == "keep" and job.tags["bankops_champion"] == "1", job.tags
    assert job.tags["bankops_reason"].startswith("kept champion: challenger vnew AUC_weighted")
    assert float(job.tags["bankops_metric_AUC_weighted"]) < 0.7  # chance, on the holdout of bankmarketing:1
    decision = (rig.fake.jobs.outputs[(run, "evaluation")] / "decision.json").read_text()
    assert '"decision": "keep"' in decision and '"champion_version": "1"' in decision

    rig.registry.load = _no_loading  # type: ignore[method-assign]
    result = on_run_completed(rig.automation(), RunCompleted(run_id=run, model_version="", dataset=""))
    assert result["outcome"] == "kept_champion" and result["model_version"] == "2", result
    assert "judged in Azure ML by " + run in result["reason"]
    assert rig.registry.alias(CHAMPION).version == "1"  # type: ignore[union-attr]


def test_a_better_challenger_is_promoted_and_a_moved_champion_keeps_it_out(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.champion_v1(shuffled=True)
    run = rig.submit()
    rig.fake.complete_automl(run, rig.challenger(shuffled=False), {"AUC_weighted": 0.93}, dataset_folder=rig.mounted)
    tags = rig.fake.jobs.get(run).tags
    assert tags["bankops_decision"] == "promote", tags
    assert tags["bankops_smoke_labels"].count(",") == 1  # the challenger's answers for the two example records
    challenger = rig.registry.register_from_run(run)
    assert challenger.tags["bankops_smoke_labels"] == tags["bankops_smoke_labels"]  # the smoke test compares with these
    rig.registry.load = _no_loading  # type: ignore[method-assign]
    promote = rig.registry.decision_of_run(run, challenger=challenger.version, champion="1")
    assert promote.deploy and promote.challenger["AUC_weighted"] == pytest.approx(float(tags["bankops_metric_AUC_weighted"]))
    moved = rig.registry.decision_of_run(run, challenger=challenger.version, champion="3")
    assert not moved.deploy and "judged against v1" in moved.reason
    again = rig.registry.decision_of_run(run, challenger=challenger.version, champion=challenger.version)
    assert not again.deploy and "already the champion" in again.reason


def test_the_evaluate_step_runs_only_the_code_the_component_ships(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A code folder without the module fails the step (and the pipeline) as it would on the cluster."""
    import shared.adapters.azure.batch as batch

    staged = batch.staged_code

    def without_evaluation() -> Any:
        import contextlib
        import shutil

        @contextlib.contextmanager
        def folder() -> Any:
            with staged() as code:
                shutil.rmtree(code / "shared" / "evaluation")
                yield code

        return folder()

    monkeypatch.setattr(batch, "staged_code", without_evaluation)
    rig = Rig(tmp_path)
    run = rig.submit()
    rig.fake.complete_automl(run, rig.challenger(shuffled=False), {"AUC_weighted": 0.93}, dataset_folder=rig.mounted)
    job = rig.fake.jobs.get(run)
    assert job.status == "Failed" and "No module named 'shared.evaluation'" in job.error
    with pytest.raises(NotFound, match="carries no bankops_decision tag"):
        on_run_completed(rig.automation(), RunCompleted(run_id=run, model_version="", dataset=""))


def test_the_fake_refuses_an_evaluate_step_the_sdk_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The component's own validation runs on submit: a command that binds an input the component lacks."""
    from azure.ai.ml.exceptions import ValidationException

    import shared.adapters.azure.trainer as trainer

    built = trainer.evaluate_step

    def broken(*args: Any, **kwargs: Any) -> Any:
        component = built(*args, **kwargs)
        component.command += " --holdout ${{inputs.holdout}}"
        return component

    monkeypatch.setattr(trainer, "evaluate_step", broken)
    rig = Rig(tmp_path)
    with pytest.raises(ValidationException, match=r"Invalid data binding expression: inputs\.holdout"):
        rig.submit()
    assert rig.fake.jobs.submitted == []
