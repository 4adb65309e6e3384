"""Fakes of the Azure ML batch endpoint operations, for the batch runner's tests with no Azure.

`FakeBatchService` stands in for the Azure ML batch inference service of one workspace: it adds
`batch_endpoints` (BatchEndpointOperations) and `batch_deployments` (BatchDeploymentOperations) to
a FakeMLClient. It checks the entities it is given as Azure ML would (types, names, the model
reference, the uploaded code holding the scoring script), records them so a test can assert on
the exact entity built, builds each invocation's request body with the SDK's own BatchJobSchema
(as `invoke` does), and replays what the service does: a created endpoint or deployment is
"Creating" until `settle()`, a job runs until `complete()` plays it — by running the uploaded
scoring script's init()/run() (endpoint jobs) or the pipeline step's command (pipeline jobs) on
the input file, and uploading what it wrote to the output datastore.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import shlex
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any

from azure.ai.ml.constants._common import BASE_PATH_CONTEXT_KEY, PARAMS_OVERRIDE_KEY
from azure.ai.ml.entities import BatchEndpoint, Environment, ModelBatchDeployment, PipelineJob
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tests.azure_fakes import NAME, FakeMLClient, FakePoller

Read = Callable[[str], bytes]  # input URL -> content
Write = Callable[[str, str, bytes], None]  # (datastore, path in it, content)


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class FakeBatchEndpoints:
    """Stands in for `MLClient.batch_endpoints` (BatchEndpointOperations)."""

    def __init__(self, service: FakeBatchService) -> None:
        self.service = service
        self.endpoints: dict[str, BatchEndpoint] = {}
        self.created: list[BatchEndpoint] = []
        self.invocations: list[dict[str, Any]] = []

    def begin_create_or_update(self, endpoint: BatchEndpoint) -> FakePoller:
        assert isinstance(endpoint, BatchEndpoint), type(endpoint)
        assert NAME.match(endpoint.name), endpoint.name
        endpoint._to_rest_batch_endpoint("westeurope")  # the SDK's serialization checks the name and defaults
        assert endpoint.auth_mode == "aad_token", "batch endpoints take Entra ID tokens only"
        existing = self.endpoints.get(endpoint.name)
        if existing is None:
            stored = BatchEndpoint(name=endpoint.name, tags=dict(endpoint.tags or {}), description=endpoint.description)
            stored._provisioning_state = "Creating"
            self.endpoints[endpoint.name] = stored
            self.created.append(endpoint)
            return FakePoller(lambda: self.service.settle() or stored)
        default = (endpoint.defaults or {}).get("deployment_name") if isinstance(endpoint.defaults, dict) else None
        if default and default not in self.service.batch_deployments.deployments.get(endpoint.name, {}):
            raise HttpResponseError(f"default deployment {default} does not exist")
        existing.defaults = dict(endpoint.defaults or {})
        existing.tags = dict(endpoint.tags or {})
        return FakePoller(lambda: existing)

    def get(self, name: str) -> BatchEndpoint:
        if name not in self.endpoints:
            raise ResourceNotFoundError(f"batch endpoint {name} not found")
        return self.endpoints[name]

    def invoke(self, endpoint_name: str, *, deployment_name: str | None = None, inputs: dict[str, Any] | None = None,
               **kwargs: Any) -> Any:
        """Start a batch job: the body is built by the SDK's BatchJobSchema from the same arguments as the real invoke."""
        from azure.ai.ml._schema._deployment.batch.batch_job import BatchJobSchema

        endpoint = self.get(endpoint_name)
        name = deployment_name or (endpoint.defaults or {}).get("deployment_name")
        assert name, "no deployment named and the endpoint has no default"
        deployment = self.service.batch_deployments.get(name, endpoint_name)
        if deployment.provisioning_state != "Succeeded":
            raise HttpResponseError(f"batch deployment {name} is {deployment.provisioning_state}")
        overrides = [*(kwargs.get("params_override") or []), {"input_data": inputs}]
        if kwargs.get("outputs"):
            overrides.append({"output_data": kwargs["outputs"]})
        job_name = kwargs.get("job_name") or next(self.service.names)
        overrides.append({"job_name": job_name})
        body = BatchJobSchema(context={BASE_PATH_CONTEXT_KEY: Path("."), PARAMS_OVERRIDE_KEY: overrides}).load(data={})
        if job_name in self.service.client.jobs.jobs:
            raise ResourceExistsError(f"job {job_name} exists")
        record = SimpleNamespace(name=job_name, type="pipeline", status="Running", tags={}, properties=dict(body.get("properties", {})),
                                 studio_url=f"https://ml.azure.com/runs/{job_name}", endpoint=endpoint_name, deployment=name, body=body,
                                 inputs=dict(inputs or {}), outputs=dict(kwargs.get("outputs") or {}))
        self.service.client.jobs.jobs[job_name] = record
        self.invocations.append({"endpoint": endpoint_name, "deployment": name, "inputs": inputs, **kwargs})
        return record


class FakeBatchDeployments:
    """Stands in for `MLClient.batch_deployments` (BatchDeploymentOperations); the code folder is "uploaded" (copied)."""

    def __init__(self, service: FakeBatchService) -> None:
        self.service = service
        self.deployments: dict[str, dict[str, ModelBatchDeployment]] = {}
        self.created: list[ModelBatchDeployment] = []
        self.code: dict[str, Path] = {}
        self.fail: set[str] = set()

    def begin_create_or_update(self, deployment: ModelBatchDeployment) -> FakePoller:
        assert isinstance(deployment, ModelBatchDeployment), type(deployment)
        assert NAME.match(deployment.name), f"invalid deployment name {deployment.name!r}"
        endpoint = self.service.batch_endpoints.get(str(deployment.endpoint_name))
        # what BatchDeploymentOperations.begin_create_or_update runs before sending: the scoring script parses,
        # code / environment / model / compute resolved by the SDK's orchestrator, `_to_rest_object` (settings checks)
        self.service.client.preflight.deployment(deployment)
        if endpoint.provisioning_state != "Succeeded":
            raise HttpResponseError(f"batch endpoint {endpoint.name} is {endpoint.provisioning_state}")
        _, model, version = str(deployment.model).split(":")
        self.service.client.models.get(model, version)
        assert deployment.compute, "a batch deployment runs on a compute cluster"
        assert isinstance(deployment.environment, Environment) and deployment.environment.image, "a scoring script needs an environment"
        code = Path(str(deployment.code_configuration.code))
        script = code / deployment.code_configuration.scoring_script
        assert script.is_file(), f"the scoring script {deployment.code_configuration.scoring_script} is not in the code folder"
        upload = self.service.client.store / "code" / f"{deployment.endpoint_name}-{deployment.name}"
        shutil.rmtree(upload, ignore_errors=True)
        shutil.copytree(code, upload)
        self.code[deployment.name] = upload
        deployment._provisioning_state = "Creating"
        self.deployments.setdefault(endpoint.name, {})[deployment.name] = deployment
        self.created.append(deployment)
        return FakePoller(lambda: self.service.settle() or deployment)

    def get(self, name: str, endpoint_name: str) -> ModelBatchDeployment:
        found = self.deployments.get(endpoint_name, {}).get(name)
        if found is None:
            raise ResourceNotFoundError(f"batch deployment {name} not found")
        return found

    def list(self, endpoint_name: str) -> list[ModelBatchDeployment]:
        return list(self.deployments.get(endpoint_name, {}).values())


class FakeBatchService:
    """Stands in for Azure ML's batch inference on one workspace; `attach` gives a FakeMLClient its operations."""

    def __init__(self, client: FakeMLClient) -> None:
        self.client = client
        self.batch_endpoints = FakeBatchEndpoints(self)
        self.batch_deployments = FakeBatchDeployments(self)
        self.names = (f"batchjob-{n}" for n in itertools.count(1))
        self.pipeline_code: dict[str, Path] = {}
        client.batch_endpoints = self.batch_endpoints  # type: ignore[attr-defined]
        client.batch_deployments = self.batch_deployments  # type: ignore[attr-defined]
        submit = client.jobs.create_or_update

        def create_or_update(job: Any, **kwargs: Any) -> Any:
            """Pipeline jobs as FakeJobOperations takes them, plus the upload of a command step's code folder."""
            assert isinstance(job, PipelineJob), type(job)
            if job.name and job.name in client.jobs.jobs:
                raise ResourceExistsError(f"job {job.name} exists")
            step = next(iter(job.jobs.values()))
            code = Path(str(step.code))  # read before the SDK resolves the step's code into an uploaded asset
            assert code.is_dir(), "the step's code folder must exist when the job is submitted"
            staged = Path(tempfile.mkdtemp(prefix="fake-code-", dir=client.store))
            shutil.copytree(code, staged / "code")
            record = submit(job, **kwargs)
            if job.name:  # a name given by the caller is the job's name
                client.jobs.jobs[job.name] = client.jobs.jobs.pop(record.name)
                client.jobs.commands[job.name] = client.jobs.commands.pop(record.name)
                record.name = job.name
            self.pipeline_code[record.name] = staged / "code"
            return record

        client.jobs.create_or_update = create_or_update  # type: ignore[method-assign]

    def settle(self) -> None:
        """Azure ML finishes provisioning: Creating batch endpoints and deployments are Succeeded (or Failed)."""
        for endpoint in self.batch_endpoints.endpoints.values():
            if endpoint.provisioning_state == "Creating":
                endpoint._provisioning_state = "Succeeded"
        for deployments in self.batch_deployments.deployments.values():
            for d in deployments.values():
                if d.provisioning_state == "Creating":
                    d._provisioning_state = "Failed" if d.name in self.batch_deployments.fail else "Succeeded"

    def _model_dir(self, ref: str) -> Path:
        """`azureml:<name>:<version>` or the ARM id the SDK resolved it to (`.../models/<name>/versions/<version>`)."""
        if ref.startswith("/subscriptions/"):
            parts = ref.split("/")
            name, version = parts[-3], parts[-1]
        else:
            _, name, version = ref.split(":")
        return self.client.models.files[(name, version)].parent  # AZUREML_MODEL_DIR: the folder holding the model's files

    def complete(self, job_name: str, *, read: Read, write: Write) -> Any:
        """Run the job to its end as the service would, upload its outputs; answers the job (Completed or Failed)."""
        job = self.client.jobs.get(job_name)
        with tempfile.TemporaryDirectory(prefix="fake-batch-job-") as tmp:
            try:
                datastore, outputs = self._endpoint_job(job, Path(tmp), read) if hasattr(job, "deployment") else \
                    self._pipeline_job(job, Path(tmp), read)
            except Exception as exc:  # the job fails; its error is what the studio would show
                job.status, job.error = "Failed", f"{type(exc).__name__}: {exc}"
                return job
            for path in sorted(outputs.iterdir()):
                write(datastore, path.name, path.read_bytes())
        job.status = "Completed"
        return job

    def _endpoint_job(self, job: Any, tmp: Path, read: Read) -> tuple[str, Path]:
        """The batch driver: init() once, run() on a mini-batch of the input file, the summary in output_file_name."""
        import pandas as pd

        deployment = self.batch_deployments.get(job.deployment, job.endpoint)
        (clients,) = job.inputs.values()
        (output,) = job.outputs.values()
        source = tmp / "inputs" / PurePosixPath(clients.path).name
        source.parent.mkdir()
        source.write_bytes(read(clients.path))
        out = tmp / "outputs"
        out.mkdir()
        code = self.batch_deployments.code[deployment.name]
        spec = importlib.util.spec_from_file_location("fake_batch_driver_entry", code / deployment.code_configuration.scoring_script)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        env = {"AZUREML_MODEL_DIR": str(self._model_dir(str(deployment.model))), "AZUREML_BI_OUTPUT_PATH": str(out),
               **(deployment.settings.environment_variables or {})}
        with _environ(env):
            spec.loader.exec_module(module)
            module.init()
            result = module.run([str(source)])
        assert isinstance(result, pd.DataFrame | list), "run() must answer a DataFrame or a list"
        if deployment.settings.output_action != "summary_only":  # append_row: the driver appends run()'s rows to one file
            pd.DataFrame(result).to_csv(out / (deployment.settings.output_file_name or "predictions.csv"), index=False, header=False)
        return _datastore(output.path), out

    def _pipeline_job(self, job: Any, tmp: Path, read: Read) -> tuple[str, Path]:
        """The command step: its command line with the inputs and output resolved, run on the uploaded code."""
        from shared.batch import azureml_score

        pipeline = job.entity
        step = next(iter(pipeline.jobs.values()))
        clients = pipeline.inputs.clients.path
        source = tmp / "inputs" / PurePosixPath(clients).name
        source.parent.mkdir()
        source.write_bytes(read(clients))
        out = tmp / "outputs"
        values = {"${{inputs.clients}}": str(source), "${{inputs.model}}": str(self._model_dir(pipeline.inputs.model.path)),
                  "${{outputs.predictions}}": str(out)}
        command, _ = self.client.jobs.commands[job.name][next(iter(pipeline.jobs))]
        argv = [values.get(arg, arg) for arg in shlex.split(command)]
        assert argv[:3] == ["python", "-m", "shared.batch.azureml_score"], argv
        assert (self.pipeline_code[job.name] / "shared" / "batch" / "azureml_score.py").is_file(), "the module is not in the code"
        azureml_score.main(argv[3:])
        return _datastore(step.outputs.predictions.path), out


def _datastore(uri: str) -> str:
    """azureml://datastores/<name>/paths/ -> <name>"""
    assert uri.startswith("azureml://datastores/") and "/paths/" in uri, f"batch outputs go to a Blob datastore, not {uri!r}"
    return uri.split("/")[3]
