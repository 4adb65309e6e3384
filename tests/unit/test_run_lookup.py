"""AzureRunLookup: the pipeline run an event names -> its AutoML step's best child; why a run failed.

Against the Azure ML fakes held to the SDK by tests/azure_run_fakes.py (signatures, Job attributes,
JobType/JobStatus values, real MLflow Run objects). The pipeline job is built by the trainer and
serialised by the SDK on submit.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from shared.adapters.azure.run_lookup import AzureRunLookup
from shared.adapters.azure.trainer import training_pipeline
from shared.config import load_settings
from shared.errors import NotFound
from tests.azure_fakes import FakeMLClient
from tests.azure_run_fakes import SdkJob, StrictClient, StrictJobs, StrictRuns


@pytest.fixture
def fake(tmp_path: Path) -> FakeMLClient:
    return FakeMLClient(store=tmp_path / "ws")


def _submit(fake: FakeMLClient, tmp_path: Path) -> str:
    from shared.adapters.azure.batch import staged_code

    with staged_code() as code:  # the evaluate step's code folder, as AzureTrainer stages it for a submit
        job = training_pipeline(load_settings(home=tmp_path / "home"), "azureml:bankmarketing:2", dataset_ref="bankmarketing:2",
                                code=code)
        return str(fake.jobs.create_or_update(job).name)


def _lookup(fake: FakeMLClient) -> AzureRunLookup:
    return AzureRunLookup(StrictClient(fake), StrictRuns(fake.runs))


def test_the_pipeline_run_leads_to_its_automl_steps_best_child(fake: FakeMLClient, tmp_path: Path) -> None:
    pipeline = _submit(fake, tmp_path)
    assert fake.jobs.get(pipeline).tags["bankops_job"] == "training"  # what the event's runTags carry
    automl = fake.complete_automl(pipeline, tmp_path, {"AUC_weighted": 0.94, "accuracy": 0.91, "broken": float("nan")})
    found = _lookup(fake).best_child(pipeline)
    assert (found.pipeline_run, found.automl_run, found.best_child_run) == (pipeline, automl, f"{automl}_3")
    assert found.metrics == {"AUC_weighted": 0.94, "accuracy": 0.91}  # not-a-number dropped
    assert found.dataset == "bankmarketing:2"


def test_a_pipeline_without_automl_step_or_best_child_yet_is_not_found(fake: FakeMLClient, tmp_path: Path) -> None:
    pipeline = _submit(fake, tmp_path)
    with pytest.raises(NotFound, match="has no AutoML step"):
        _lookup(fake).best_child(pipeline)
    automl = fake.complete_automl(pipeline, tmp_path, {"AUC_weighted": 0.9})
    fake.runs.runs[automl].data.tags.clear()
    with pytest.raises(NotFound, match="has no best child run yet"):
        _lookup(fake).best_child(pipeline)
    with pytest.raises(NotFound, match="no Azure ML job named 'nope'"):
        _lookup(fake).best_child("nope")


def test_the_failure_names_the_status_the_failed_steps_and_where_the_logs_are(fake: FakeMLClient, tmp_path: Path) -> None:
    pipeline = _submit(fake, tmp_path)
    automl = fake.complete_automl(pipeline, tmp_path, {})
    fake.jobs.jobs[pipeline].status = "Failed"
    fake.jobs.jobs[automl].status = "Failed"
    text = _lookup(fake).failure(pipeline)
    assert text == (f"Azure ML pipeline run {pipeline} ended Failed (failed steps: {automl}); "
                    f"its logs: https://ml.azure.com/runs/{pipeline}")
    assert len(_lookup(fake).failure("x" * 1000)) <= 300  # bounded, even for a hostile run id


def test_the_strict_fakes_refuse_what_the_sdk_refuses(fake: FakeMLClient, tmp_path: Path) -> None:
    pipeline = _submit(fake, tmp_path)
    jobs = StrictJobs(fake.jobs)
    with pytest.raises(TypeError):
        jobs.list(pipeline)  # parent_job_name is keyword-only in JobOperations.list
    with pytest.raises(TypeError):
        jobs.get(pipeline, "extra")
    with pytest.raises(AttributeError, match="has no attribute 'entity'"):
        _ = jobs.get(pipeline).entity  # the fake's own field, not a Job attribute
    with pytest.raises(AssertionError, match="JobType"):
        SdkJob(SimpleNamespace(type="AutoML", status="Completed"))
    with pytest.raises(AssertionError, match="JobStatus"):
        SdkJob(SimpleNamespace(type="automl", status="Succeeded"))
