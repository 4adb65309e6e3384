"""Fakes of the Azure ML `MLClient` operations the azure adapters call, for tests with no Azure.

Each fake stands in for one operations group of `azure-ai-ml` (named in its docstring). It
checks the entities it is given as Azure ML would (types, names, references, traffic), records
them so a test can assert on the exact entity built, and replays the state changes Azure ML
reports: a created endpoint or deployment is "Creating" until `FakeMLClient.settle()` (Azure ML
finishing its provisioning), an AutoML job runs until `complete_automl` plays its end, and the
pipeline's evaluate step runs as the compute cluster would run it: its command line, in a fresh
Python process, on the code folder the job uploaded, with the workspace's MLflow tracking replaced
by a local store (what the step tags on the pipeline run becomes the job's tags). Errors are the
ones `azure-core` raises (ResourceNotFoundError, ResourceExistsError, HttpResponseError).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
from azure.ai.ml.entities import (
    Data,
    JobSchedule,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    Model,
    PipelineJob,
)
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tests.azureml_preflight import Preflight

NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{2,31}$")


class FakePoller:
    """Stands in for azure.core.polling.LROPoller: `result()` returns what Azure ML answers once done."""

    def __init__(self, result: Callable[[], Any]) -> None:
        self._result = result

    def result(self, timeout: float | None = None) -> Any:
        return self._result()

    def done(self) -> bool:
        return True


def _now() -> datetime:
    return datetime.now(UTC)


class FakeDataOperations:
    """Stands in for `MLClient.data` (DataOperations): immutable, versioned data assets."""

    _registry_name = None  # a workspace's assets, not a registry's (the SDK's label resolution asks)

    def __init__(self) -> None:
        self.assets: dict[tuple[str, str], Data] = {}
        self.created: list[Data] = []
        # as DataOperations: `@latest` -> the newest version; the orchestrator passes the name with its `azureml:` prefix
        self._managed_label_resolver = {"latest": lambda name: self.get(name.removeprefix("azureml:"))}

    def create_or_update(self, data: Data) -> Data:
        assert isinstance(data, Data), f"expected azure.ai.ml.entities.Data, got {type(data)}"
        data._to_rest_object()  # the SDK's serialisation (DataOperations.create_or_update calls it before sending)
        assert data.type in ("uri_file", "uri_folder", "mltable"), data.type
        assert data.version, "bankops numbers its data versions itself"
        key = (data.name, str(data.version))
        if key in self.assets:
            raise ResourceExistsError(f"data {data.name}:{data.version} exists and assets are immutable")
        stored = Data(name=data.name, version=str(data.version), type=data.type, path=data.path, tags=dict(data.tags or {}),
                      description=data.description)
        self.assets[key] = stored
        self.created.append(data)
        return stored

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Data:
        found = [d for (n, v), d in self.assets.items() if n == name and (version is None or v == str(version))]
        if not found:
            raise ResourceNotFoundError(f"data {name}:{version} not found")
        return max(found, key=lambda d: int(d.version))

    def list(self, name: str | None = None) -> Iterable[Data]:
        if name is None:  # one entry per asset name (its latest version), as the service lists containers
            return [self.get(n) for n in sorted({n for n, _ in self.assets})]
        return [d for (n, _), d in self.assets.items() if n == name]


class FakeModelOperations:
    """Stands in for `MLClient.models` (ModelOperations): versions numbered by the service, tags updatable.

    A local `path` is "uploaded" (copied); an `azureml://jobs/<run>/outputs/artifacts/<p>` path must
    name an output a finished job produced (see FakeJobOperations.outputs).
    """

    def __init__(self, jobs: FakeJobOperations, store: Path) -> None:
        self.jobs, self.store = jobs, store
        self.versions: dict[str, list[Model]] = {}
        self.files: dict[tuple[str, str], Path] = {}
        self.created: list[Model] = []

    def create_or_update(self, model: Model) -> Model:
        assert isinstance(model, Model), f"expected azure.ai.ml.entities.Model, got {type(model)}"
        versions = self.versions.setdefault(model.name, [])
        if model.version is not None and any(m.version == str(model.version) for m in versions):
            existing = next(m for m in versions if m.version == str(model.version))
            existing.tags = dict(model.tags or {})  # a registered version takes tag and description updates only
            return existing
        assert model.type == "mlflow_model", f"bankops registers MLflow models, not {model.type}"
        model._to_rest_object()  # the SDK's serialisation, as ModelOperations.create_or_update
        version = str(len(versions) + 1)
        source = self._source(str(model.path))
        target = self.store / model.name / version / source.name
        shutil.copytree(source, target)
        stored = Model(name=model.name, version=version, type=model.type, path=str(model.path), tags=dict(model.tags or {}),
                       description=model.description)
        stored._creation_context = SimpleNamespace(created_at=_now())  # the service stamps the creation time
        versions.append(stored)
        self.files[(model.name, version)] = target
        self.created.append(model)
        return stored

    def _source(self, path: str) -> Path:
        match = re.fullmatch(r"azureml://jobs/([^/]+)/outputs/artifacts/(.+?)/?", path)
        if match:
            run, artifact = match.groups()
            if (run, artifact) not in self.jobs.outputs:
                raise HttpResponseError(f"job {run} has no output {artifact}")
            return self.jobs.outputs[(run, artifact)]
        assert Path(path).is_dir(), f"not a local folder or job output: {path}"
        return Path(path)

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Model:
        for m in self.versions.get(name, []):
            if m.version == str(version):
                return m
        raise ResourceNotFoundError(f"model {name}:{version} not found")

    def list(self, name: str | None = None) -> Iterable[Model]:
        if name not in self.versions:
            raise ResourceNotFoundError(f"model {name} not found")
        return list(self.versions[name])

    def download(self, name: str, version: str, download_path: str = ".") -> None:
        self.get(name, version)
        source = self.files[(name, version)]
        shutil.copytree(source, Path(download_path) / name / source.name)


class FakeJobOperations:
    """Stands in for `MLClient.jobs` (JobOperations): submitted pipeline jobs and the AutoML runs they spawn."""

    preflight: Preflight  # set by FakeMLClient
    store: Path | None = None  # the workspace's files (FakeMLClient sets it): uploaded code goes there

    def __init__(self) -> None:
        self.submitted: list[PipelineJob] = []
        self.jobs: dict[str, Any] = {}
        self.children: dict[str, list[str]] = {}
        self.outputs: dict[tuple[str, str], Path] = {}
        self.commands: dict[str, dict[str, tuple[str, Path]]] = {}  # job -> command step -> (command line, code folder)
        self._names = (f"bankops-job-{n}" for n in itertools.count(1))

    def create_or_update(self, job: Any, *, experiment_name: str | None = None, **_: Any) -> Any:
        assert isinstance(job, PipelineJob), f"bankops submits pipeline jobs, not {type(job)}"
        # read before the SDK resolves each command step's component (and its code) into registered assets
        commands = {n: (str(step.command), Path(str(step.code))) for n, step in job.jobs.items() if getattr(step, "command", None)}
        self.preflight.job(job)  # JobOperations' own validation, reference resolution and serialisation, as on submit
        name = next(self._names)
        if self.store is not None:
            self.store.mkdir(parents=True, exist_ok=True)
        uploaded = Path(tempfile.mkdtemp(prefix=f"{name}-code-", dir=self.store))
        self.commands[name] = {n: (command, shutil.copytree(code, uploaded / n)) for n, (command, code) in commands.items()}
        record = SimpleNamespace(name=name, type="pipeline", status="Running", tags=dict(job.tags or {}),
                                 experiment_name=experiment_name or job.experiment_name,
                                 studio_url=f"https://ml.azure.com/runs/{name}", entity=job)
        self.submitted.append(job)
        self.jobs[name] = record
        return record

    def get(self, name: str) -> Any:
        if name not in self.jobs:
            raise ResourceNotFoundError(f"job {name} not found")
        return self.jobs[name]

    def list(self, parent_job_name: str | None = None) -> Iterable[Any]:
        return [self.jobs[c] for c in self.children.get(parent_job_name or "", [])]


class FakeWorkspaceRuns:
    """Stands in for an MlflowClient on the workspace's tracking URI: AutoML runs' tags and metrics."""

    def __init__(self) -> None:
        self.runs: dict[str, SimpleNamespace] = {}

    def get_run(self, run_id: str) -> Any:
        if run_id not in self.runs:
            from mlflow.exceptions import MlflowException

            raise MlflowException(f"run {run_id} not found")
        return self.runs[run_id]


@dataclass
class _Keys:
    primary_key: str
    secondary_key: str


class FakeOnlineEndpoints:
    """Stands in for `MLClient.online_endpoints` (OnlineEndpointOperations): endpoints, traffic, keys, invoke."""

    def __init__(self, client: FakeMLClient) -> None:
        self.client = client
        self.endpoints: dict[str, ManagedOnlineEndpoint] = {}
        self.created: list[ManagedOnlineEndpoint] = []
        self.updates: list[dict[str, int]] = []
        self.keys: dict[str, _Keys] = {}
        self.invocations: list[tuple[str, str | None, dict[str, Any]]] = []

    def begin_create_or_update(self, endpoint: ManagedOnlineEndpoint) -> FakePoller:
        assert isinstance(endpoint, ManagedOnlineEndpoint), type(endpoint)
        assert NAME.match(endpoint.name), endpoint.name
        endpoint._to_rest_online_endpoint("westeurope")  # the SDK's serialisation, as begin_create_or_update
        existing = self.endpoints.get(endpoint.name)
        if existing is None:
            assert endpoint.auth_mode == "key", "bankops endpoints use key auth"
            stored = ManagedOnlineEndpoint(name=endpoint.name, auth_mode=endpoint.auth_mode, tags=dict(endpoint.tags or {}),
                                           description=endpoint.description)
            stored._provisioning_state = "Creating"
            stored.traffic = {}
            self.endpoints[endpoint.name] = stored
            self.keys[endpoint.name] = _Keys("primary-0", "secondary-0")
            self.created.append(endpoint)
            return FakePoller(lambda: self.client.settle() or stored)
        traffic = dict(endpoint.traffic or {})
        deployments = self.client.online_deployments.deployments.get(endpoint.name, {})
        unknown = set(traffic) - set(deployments)
        if unknown:
            raise HttpResponseError(f"traffic names deployments that do not exist: {sorted(unknown)}")
        if traffic and sum(traffic.values()) != 100:
            raise HttpResponseError(f"traffic must add up to 100, not {sum(traffic.values())}")
        existing.traffic = traffic
        existing.tags = dict(endpoint.tags or {})
        self.updates.append(traffic)
        return FakePoller(lambda: existing)

    def get(self, name: str) -> ManagedOnlineEndpoint:
        if name not in self.endpoints:
            raise ResourceNotFoundError(f"endpoint {name} not found")
        return self.endpoints[name]

    def get_keys(self, name: str) -> _Keys:
        self.get(name)
        return self.keys[name]

    def begin_regenerate_keys(self, name: str, *, key_type: str = "primary") -> FakePoller:
        keys = self.get_keys(name)
        n = int(getattr(keys, f"{key_type}_key").rsplit("-", 1)[1]) + 1
        setattr(keys, f"{key_type}_key", f"{key_type}-{n}")
        return FakePoller(lambda: None)

    def invoke(self, endpoint_name: str, *, request_file: str | None = None, deployment_name: str | None = None, **_: Any) -> str:
        """Score as a no-code MLflow deployment does: the model of the addressed (or live) deployment."""
        endpoint = self.get(endpoint_name)
        body = json.loads(Path(str(request_file)).read_text())
        self.invocations.append((endpoint_name, deployment_name, body))
        if deployment_name is None:
            live = [d for d, share in (endpoint.traffic or {}).items() if share > 0]
            if not live:
                raise HttpResponseError("no deployment takes traffic")
            deployment_name = live[0]
        deployment = self.client.online_deployments.get(deployment_name, endpoint_name)
        if deployment.provisioning_state != "Succeeded":
            raise HttpResponseError(f"deployment {deployment_name} is {deployment.provisioning_state}")
        answer = self.client.online_deployments.answers.get(deployment_name)
        if answer is not None:
            return answer
        split = body["input_data"]
        frame = pd.DataFrame(split["data"], columns=split["columns"], index=split.get("index"))
        predictions = self.client.predict(str(deployment.model), frame)
        return json.dumps(predictions)


class FakeOnlineDeployments:
    """Stands in for `MLClient.online_deployments` (OnlineDeploymentOperations)."""

    def __init__(self, client: FakeMLClient) -> None:
        self.client = client
        self.deployments: dict[str, dict[str, ManagedOnlineDeployment]] = {}
        self.created: list[ManagedOnlineDeployment] = []
        self.deleted: list[str] = []
        self.answers: dict[str, str] = {}  # deployment -> canned raw answer (a broken model)
        self.fail: set[str] = set()  # deployments whose provisioning fails

    def begin_create_or_update(self, deployment: ManagedOnlineDeployment) -> FakePoller:
        assert isinstance(deployment, ManagedOnlineDeployment), type(deployment)
        assert NAME.match(deployment.name), f"invalid deployment name {deployment.name!r}"
        endpoint = self.client.online_endpoints.get(str(deployment.endpoint_name))
        self.client.preflight.deployment(deployment)  # scoring script, dependencies through the orchestrator, serialisation
        if endpoint.provisioning_state != "Succeeded":
            raise HttpResponseError(f"endpoint {endpoint.name} is {endpoint.provisioning_state}")
        match = re.fullmatch(r"azureml:([^:]+):(\d+)", str(deployment.model))
        assert match, f"model must be an azureml:<name>:<version> reference, not {deployment.model!r}"
        self.client.models.get(match.group(1), match.group(2))
        deployment._provisioning_state = "Creating"
        self.deployments.setdefault(endpoint.name, {})[deployment.name] = deployment
        self.created.append(deployment)
        return FakePoller(lambda: self.client.settle() or deployment)

    def get(self, name: str, endpoint_name: str) -> ManagedOnlineDeployment:
        found = self.deployments.get(endpoint_name, {}).get(name)
        if found is None:
            raise ResourceNotFoundError(f"deployment {name} not found")
        return found

    def list(self, endpoint_name: str) -> list[ManagedOnlineDeployment]:
        return list(self.deployments.get(endpoint_name, {}).values())

    def begin_delete(self, name: str, endpoint_name: str) -> FakePoller:
        self.get(name, endpoint_name)
        if (self.client.online_endpoints.get(endpoint_name).traffic or {}).get(name, 0) > 0:
            raise HttpResponseError(f"deployment {name} still takes traffic")
        del self.deployments[endpoint_name][name]
        self.deleted.append(name)
        return FakePoller(lambda: None)

    def get_logs(self, name: str, endpoint_name: str, lines: int, *, container_type: str | None = None, **_: Any) -> str:
        deployment = self.get(name, endpoint_name)
        return f"[{container_type or 'InferenceServer'}] {name}: {deployment.provisioning_state}"


class FakeSchedules:
    """Stands in for `MLClient.schedules` (ScheduleOperations): what begin_create_or_update runs on a
    JobSchedule (validation, the job's references resolved by the orchestrator, serialisation); the
    service keeps the resolved job, so `fire` submits what Azure ML would run at the next trigger."""

    def __init__(self, client: FakeMLClient) -> None:
        self.client = client
        self.schedules: dict[str, JobSchedule] = {}
        self.deleted: list[str] = []

    def begin_create_or_update(self, schedule: JobSchedule) -> FakePoller:
        assert isinstance(schedule, JobSchedule), type(schedule)
        self.client.preflight.schedule(schedule)
        schedule._is_enabled = True  # the service enables a new schedule
        self.schedules[schedule.name] = schedule
        return FakePoller(lambda: schedule)

    def get(self, name: str) -> JobSchedule:
        if name not in self.schedules:
            raise ResourceNotFoundError(f"schedule {name} not found")
        return self.schedules[name]

    def begin_delete(self, name: str) -> FakePoller:
        self.get(name)
        del self.schedules[name]
        self.deleted.append(name)
        return FakePoller(lambda: None)

    def fire(self, name: str) -> Any:
        """The trigger fires: Azure ML submits the job as it stored it (its references resolved at creation)."""
        return self.client.jobs.create_or_update(self.get(name).create_job)


class FakeWorkspaces:
    """Stands in for `MLClient.workspaces` (WorkspaceOperations): only the MLflow tracking URI."""

    def get(self, name: str) -> Any:
        return SimpleNamespace(name=name, mlflow_tracking_uri=f"azureml://westeurope.api.azureml.ms/mlflow/v1.0/workspaces/{name}")


@dataclass
class FakeMLClient:
    """Stands in for azure.ai.ml.MLClient on one workspace, with the operations above."""

    store: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fake-azureml-")))
    workspace_name: str = "bankops-ws"
    clusters: set[str] = field(default_factory=lambda: {"cpu-cluster", "cpu-cluster-6"})  # compute names the workspace has

    def __post_init__(self) -> None:
        self.data = FakeDataOperations()
        self.jobs = FakeJobOperations()
        self.models = FakeModelOperations(self.jobs, self.store / "models")
        self.preflight = Preflight(self, clusters=self.clusters)
        self.jobs.preflight, self.jobs.store = self.preflight, self.store
        self.online_endpoints = FakeOnlineEndpoints(self)
        self.online_deployments = FakeOnlineDeployments(self)
        self.schedules = FakeSchedules(self)
        self.workspaces = FakeWorkspaces()
        self.runs = FakeWorkspaceRuns()
        self._loaded: dict[str, Any] = {}

    def settle(self) -> None:
        """Azure ML finishes provisioning: every Creating endpoint and deployment is now Succeeded (or Failed)."""
        for endpoint in self.online_endpoints.endpoints.values():
            if endpoint.provisioning_state == "Creating":
                endpoint._provisioning_state = "Succeeded"
        for deployments in self.online_deployments.deployments.values():
            for d in deployments.values():
                if d.provisioning_state == "Creating":
                    d._provisioning_state = "Failed" if d.name in self.online_deployments.fail else "Succeeded"

    def predict(self, model_ref: str, frame: pd.DataFrame) -> Any:
        """What the MLflow scoring server of a deployment answers for `frame`."""
        import mlflow.pyfunc

        if model_ref not in self._loaded:
            _, name, version = model_ref.split(":")
            self._loaded[model_ref] = mlflow.pyfunc.load_model(str(self.models.files[(name, version)]))
        out = self._loaded[model_ref].predict(frame)
        return out.to_dict(orient="records") if isinstance(out, pd.DataFrame) else [str(x) for x in out]

    def complete_automl(self, pipeline_job: str, model_folder: Path, metrics: dict[str, float],
                        dataset_folder: Path | None = None) -> str:
        """Replay an AutoML pipeline run to its end: the AutoML step, its best child, the child's MLflow model output,
        then (given the folder the dataset input mounts as) the evaluate step on that output.

        Returns the AutoML step's run id (what a RunCompleted event names).
        """
        pipeline = self.jobs.get(pipeline_job)
        step_job = pipeline.entity.jobs["step"]
        automl = f"{pipeline_job}-automl"
        best = f"{automl}_3"
        self.jobs.jobs[automl] = SimpleNamespace(name=automl, type="automl", status="Completed", tags=dict(step_job.tags or {}))
        self.jobs.children[pipeline_job] = [automl]
        self.jobs.outputs[(best, "outputs/mlflow-model")] = model_folder
        self.runs.runs[automl] = SimpleNamespace(data=SimpleNamespace(
            tags={"automl_best_child_run_id": best, "mlflow.rootRunId": pipeline_job, "mlflow.parentRunId": pipeline_job},
            metrics={}))
        self.runs.runs[best] = SimpleNamespace(data=SimpleNamespace(tags={"run_algorithm": "LightGBM"}, metrics=dict(metrics)))
        pipeline.status = "Completed"
        if dataset_folder is not None:
            self.run_evaluate(pipeline_job, model_folder, dataset_folder)
        return automl

    def run_evaluate(self, pipeline_job: str, challenger: Path, dataset_folder: Path) -> Any:
        """The evaluate step as the cluster runs it: the command line with its inputs mounted, `python` in a new
        process whose only source of `shared` is the uploaded code folder; MLflow is a local store holding the
        pipeline's run and the step's (the step's names the pipeline's as `mlflow.rootRunId`, as Azure ML does).
        A failing step fails the pipeline job with the step's last output as its error."""
        from mlflow.tracking import MlflowClient

        pipeline = self.jobs.get(pipeline_job)
        command, code = self.jobs.commands[pipeline_job]["gate"]
        work = Path(tempfile.mkdtemp(prefix=f"{pipeline_job}-evaluate-", dir=self.store))
        mounts = {"challenger": challenger, "dataset": dataset_folder}
        champion = pipeline.entity.inputs.get("champion_model")
        if champion is not None and champion.path:
            parts = str(champion.path).split("/")  # resolved on submit: .../models/<name>/versions/<version>
            mounts["champion"] = self.models.files[(parts[-3], parts[-1])]
        values = {f"${{{{inputs.{k}}}}}": str(v) for k, v in mounts.items()} | {"${{outputs.evaluation}}": str(work / "evaluation")}
        argv = [values.get(arg, arg) for arg in shlex.split(command)]
        assert all("${{" not in a for a in argv), f"an input the fake does not mount: {argv}"
        assert argv[:2] == ["python", "-m"], argv
        tracking = _workspace_tracking()
        client = MlflowClient(tracking)
        experiment = client.create_experiment(work.name)
        root = client.create_run(experiment, run_name=pipeline_job).info.run_id
        step = client.create_run(experiment, run_name="gate", tags={"mlflow.rootRunId": root, "mlflow.parentRunId": root}).info.run_id
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PYTHONPATH", "BANKOPS_"))}
        env |= {"PYTHONPATH": str(code), "MLFLOW_TRACKING_URI": tracking, "MLFLOW_RUN_ID": step}
        # The cluster has the component's code folder and the environment's packages, not this checkout: an editable
        # install's import finder (which maps `shared.*` to the checkout by name) is dropped before the module runs.
        assert argv[2:3], argv
        launcher = ("import runpy, sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in type(f).__module__ "
                    "and 'editable' not in getattr(f, '__name__', '').lower()]; sys.argv = [sys.argv[0], *sys.argv[2:]]; "
                    "runpy.run_module(sys.argv_module, run_name='__main__', alter_sys=True)")
        launcher = launcher.replace("sys.argv_module", repr(argv[2]))
        done = subprocess.run([sys.executable, "-c", launcher, argv[2], *argv[3:]], cwd=code, env=env, capture_output=True,
                              text=True, timeout=300, check=False)
        if done.returncode != 0:
            pipeline.status, pipeline.error = "Failed", (done.stderr or done.stdout)[-2000:]
            return pipeline
        pipeline.tags.update({k: v for k, v in client.get_run(root).data.tags.items() if k.startswith("bankops_")})
        self.jobs.outputs[(pipeline_job, "evaluation")] = work / "evaluation"
        return pipeline


_TRACKING: list[str] = []


def _workspace_tracking() -> str:
    """One local MLflow store per test session for the evaluate steps (creating one costs seconds)."""
    if not _TRACKING:
        _TRACKING.append(f"sqlite:///{Path(tempfile.mkdtemp(prefix='fake-azureml-mlflow-')) / 'mlflow.db'}")
    return _TRACKING[0]


def mount_dataset(datasets: Any, dataset: Any, folder: Path) -> Path:
    """The folder an `mltable` input of a dataset version mounts as: the files AzureDatasetStore writes."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.csv").write_bytes(datasets.read(dataset))
    (folder / "holdout.json").write_text(json.dumps([int(i) for i in datasets.holdout(dataset)]))
    return folder


def until_settled(step: Callable[[], Any], settle: Callable[[], None], attempts: int = 4) -> Any:
    """Run an adapter step the way the work queue does: again after each InProgress, with Azure ML
    having finished what it was provisioning (`settle`). Returns the step's answer; other errors pass."""
    from shared.errors import InProgress

    for _ in range(attempts):
        try:
            return step()
        except InProgress:
            settle()
    raise AssertionError(f"still in progress after {attempts} attempts")
