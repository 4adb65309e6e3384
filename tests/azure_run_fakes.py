"""Strict stand-ins for what AzureRunLookup calls: `MLClient.jobs.get/list` and `MlflowClient.get_run`.

They wrap the Azure ML fakes of tests/azure_fakes.py and hold them to the installed SDKs:
- every call must bind to the real method's signature (`JobOperations.get(name)`, the keyword-only
  `JobOperations.list(*, parent_job_name=..., list_view_type=...)`, `MlflowClient.get_run(run_id)`), and a job
  name must be a string, as the SDK checks;
- a returned job can be read only through attributes the SDK's `azure.ai.ml.entities.Job` has, its `type` must be
  one of the SDK's `JobType` values and its `status` one of the service's `JobStatus` values;
- a returned MLflow run is a real `mlflow.entities.Run` (tags and metrics as RunData builds them).
What they cannot check: that Azure ML lists a pipeline's AutoML node among `jobs.list(parent_job_name=)` with
type `automl` (the docs' notebooks read it that way), that the AutoML run carries `automl_best_child_run_id`
once it completes, the exact status and error texts the service returns, and access rights.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from azure.ai.ml.constants import JobType
from azure.ai.ml.entities import Job
from azure.ai.ml.operations import JobOperations
from mlflow.entities import Metric, Run, RunData, RunInfo, RunTag
from mlflow.tracking import MlflowClient

JOB_TYPES = {v for k, v in vars(JobType).items() if not k.startswith("_")}
# what every azure.ai.ml Job has: its public properties and the attributes Job.__init__ sets
JOB_ATTRIBUTES = {name for name in dir(Job) if not name.startswith("_")} | {
    p for p in inspect.signature(Job.__init__).parameters if p not in ("self", "kwargs")}


def _job_statuses() -> set[str]:
    from azure.ai.ml._restclient.arm_ml_service.models import JobStatus

    return {s.value for s in JobStatus}


class SdkJob:
    """A fake job record, readable only as an `azure.ai.ml.entities.Job` is."""

    def __init__(self, record: Any) -> None:
        assert record.type in JOB_TYPES, f"job type {record.type!r} is not one of the SDK's JobType values"
        assert record.status in _job_statuses(), f"job status {record.status!r} is not a JobStatus value"
        self._record = record

    def __getattr__(self, name: str) -> Any:
        if name not in JOB_ATTRIBUTES:
            raise AttributeError(f"azure.ai.ml.entities.Job has no attribute {name!r}")
        return getattr(self._record, name, None)


def _bind(method: Any, *args: Any, **kwargs: Any) -> inspect.BoundArguments:
    return inspect.signature(method).bind(None, *args, **kwargs)  # raises TypeError as the real call would


class StrictJobs:
    def __init__(self, jobs: Any) -> None:
        self._jobs = jobs

    def get(self, *args: Any, **kwargs: Any) -> SdkJob:
        name = _bind(JobOperations.get, *args, **kwargs).arguments["name"]
        if not isinstance(name, str):
            raise TypeError(f"JobOperations.get takes the job name as a string, not {type(name).__name__}")
        return SdkJob(self._jobs.get(name))

    def list(self, *args: Any, **kwargs: Any) -> Iterable[SdkJob]:
        bound = _bind(JobOperations.list, *args, **kwargs)
        return [SdkJob(j) for j in self._jobs.list(parent_job_name=bound.arguments.get("parent_job_name"))]


class StrictRuns:
    def __init__(self, runs: Any) -> None:
        self._runs = runs

    def get_run(self, *args: Any, **kwargs: Any) -> Run:
        run_id = _bind(MlflowClient.get_run, *args, **kwargs).arguments["run_id"]
        record = self._runs.get_run(run_id)
        info = RunInfo(run_id, "0", "", "FINISHED", 0, 0, "active")
        data = RunData(metrics=[Metric(k, float(v), 0, 0) for k, v in record.data.metrics.items()],
                       tags=[RunTag(k, str(v)) for k, v in record.data.tags.items()])
        return Run(info, data)


class StrictClient:
    """The MLClient surface AzureRunLookup uses: `.jobs`."""

    def __init__(self, fake: Any) -> None:
        self.jobs = StrictJobs(fake.jobs)
