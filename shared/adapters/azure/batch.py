"""BatchRunner on Azure ML: the batch step as a batch endpoint deployment, or as a pipeline job step.

Both run this package's own scoring code (`shared/batch/azureml_score.py`, which calls the local
batch step `shared.batch.job.score_file`) on a compute cluster, so the predictions have the same
columns as `bankops batch-score`. They read the input by its blob URL in the `batch` container
(mounted with the cluster's identity) and write `<stem>.predictions.csv` through the Azure ML
datastore on the `predictions` container (AZUREML_PREDICTIONS_DATASTORE): batch outputs go only
to Blob datastores.

- **endpoint** (AZUREML_BATCH_MODE, the default): a batch endpoint (Entra ID auth) with one
  deployment per model version, `model-v<N>`: a ModelBatchDeployment of the registered model with
  the scoring script, `output_action=summary_only` (the script writes the files itself), one file
  per mini-batch, retries and a per-mini-batch timeout. Azure ML takes minutes to create a
  deployment, so `submit` never waits for it: it starts the creation and raises InProgress, and
  the worker calls again later (as the online deployer does). `deploy` (`bankops azure
  batch-deploy`) prepares the champion's deployment ahead and makes it the endpoint's default.
- **pipeline**: a pipeline job with one command step running `python -m shared.batch.azureml_score`
  on the model and the file; nothing to prepare, any output name.

The code folder uploaded with a deployment or job is a copy of the `shared` package.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata as md
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from shared.adapters.azure.provisioning import raise_unless_ready
from shared.batch.files import HEADER_BYTES, PREDICTIONS, check_header_bytes, output_names
from shared.config import Settings
from shared.errors import ConfigurationError, InProgress, InvalidInput, NotFound
from shared.ports import BatchRunStatus, BatchSubmission, Datastore, ModelRegistry

PREFIX = "model-v"
SCORING_SCRIPT = "shared/batch/azureml_score.py"
IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
PIPELINE_NAME = "bankops_batch_scoring"
STATES = {"completed": "completed", "failed": "failed", "canceled": "failed", "cancelrequested": "failed", "notresponding": "failed"}
TAG_INPUT, TAG_OUTPUT, TAG_VERSION = "bankops.input", "bankops.output", "bankops.model_version"


def deployment_name(version: str) -> str:
    return f"{PREFIX}{version}"


def _default_deployment(endpoint: Any) -> str | None:
    defaults = getattr(endpoint, "defaults", None)
    if isinstance(defaults, dict):
        return defaults.get("deployment_name")
    return getattr(defaults, "deployment_name", None)


@contextlib.contextmanager
def staged_code() -> Iterator[Path]:
    """A folder holding a copy of the `shared` package: the code of the deployment or job (uploaded by the SDK)."""
    import shared

    with tempfile.TemporaryDirectory(prefix="bankops-batch-code-") as tmp:
        shutil.copytree(Path(shared.__file__).parent, Path(tmp) / "shared", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        yield Path(tmp)


BATCH_EXTRAS = ("local", "models")


def pip_requirements() -> list[str]:
    """The package's core and `local` dependencies (the scoring engine and the models' libraries; the function app's
    `function` extra stays out), plus azureml-core, which Azure ML's batch driver needs in the image."""
    try:
        requires = md.requires("bankops") or []
    except md.PackageNotFoundError as exc:
        raise ConfigurationError("the batch environment is built from the installed bankops package: pip install '.[azure]'") from exc
    wanted = [r for r in requires if "extra ==" not in r or any(f'extra == "{e}"' in r for e in BATCH_EXTRAS)]
    return [r.split(";")[0].strip() for r in wanted if not r.startswith("bankops")] + ["azureml-core"]


def batch_environment() -> Any:
    """An anonymous environment (Azure ML versions it by content): the base image and the package's pip dependencies."""
    from azure.ai.ml.entities import Environment

    conda = {"name": "bankops-batch", "channels": ["conda-forge"],
             "dependencies": ["python=3.11", "pip", {"pip": pip_requirements()}]}
    return Environment(image=IMAGE, conda_file=conda, description="bankops batch scoring")


def model_deployment(settings: Settings, model: str, version: str, code: Path, *, endpoint_name: str) -> Any:
    """The ModelBatchDeployment of one registered model version (every setting the README names is here)."""
    from azure.ai.ml.constants import BatchDeploymentOutputAction
    from azure.ai.ml.entities import (
        BatchRetrySettings,
        CodeConfiguration,
        ModelBatchDeployment,
        ModelBatchDeploymentSettings,
        ResourceConfiguration,
    )

    return ModelBatchDeployment(
        name=deployment_name(version), endpoint_name=endpoint_name, model=f"azureml:{model}:{version}",
        code_configuration=CodeConfiguration(code=str(code), scoring_script=SCORING_SCRIPT), environment=batch_environment(),
        compute=settings.batch_compute, resources=ResourceConfiguration(instance_count=settings.batch_instance_count),
        settings=ModelBatchDeploymentSettings(
            mini_batch_size=settings.batch_mini_batch_size, max_concurrency_per_instance=1,
            output_action=BatchDeploymentOutputAction.SUMMARY_ONLY,  # the SDK refuses an output_file_name with summary_only
            retry_settings=BatchRetrySettings(max_retries=settings.batch_max_retries, timeout=settings.batch_timeout_s),
            error_threshold=0,  # a file that fails (e.g. wrong columns) fails the job: there is nothing partial to keep
            logging_level="info", environment_variables={"BANKOPS_MODEL_VERSION": str(version)}),
        description=f"bankops batch scoring with {model} v{version}", tags={"model_version": str(version), "bankops.kind": "batch"},
    )


def scoring_pipeline(settings: Settings, input_url: str, model: str, version: str, output_name: str, code: Path) -> Any:
    """A PipelineJob with one command step: the batch step on `input_url` with the model version, into predictions/."""
    from azure.ai.ml import Input, Output, command, dsl
    from azure.ai.ml.constants import AssetTypes

    score = command(
        name="score", display_name="score the client list",
        command=("python -m shared.batch.azureml_score --model ${{inputs.model}} --input ${{inputs.clients}} "
                 f"--output ${{{{outputs.predictions}}}} --output-name {shlex.quote(output_name)} --model-version {shlex.quote(version)}"),
        code=str(code), environment=batch_environment(),
        inputs={"clients": Input(type=AssetTypes.URI_FILE), "model": Input(type=AssetTypes.MLFLOW_MODEL)},
        outputs={"predictions": Output(type=AssetTypes.URI_FOLDER)},
    )

    # azure-ai-ml's overloads of dsl.pipeline require `func` even for the @pipeline(...) form the SDK documents
    @dsl.pipeline(name=PIPELINE_NAME, description="bankops: batch scoring of a client list",  # type: ignore[call-overload]
                  default_compute=settings.batch_compute)
    def bankops_batch_scoring(clients, model):  # type: ignore[no-untyped-def]  # unannotated: dsl reads the signature
        step: Any = score(clients=clients, model=model)
        step.outputs.predictions.path = predictions_path(settings)  # the predictions container, through its datastore
        step.outputs.predictions.mode = "upload"
        return {}

    job = bankops_batch_scoring(clients=Input(type=AssetTypes.URI_FILE, path=input_url),
                                model=Input(type=AssetTypes.MLFLOW_MODEL, path=f"azureml:{model}:{version}"))
    job.experiment_name = settings.experiment_name
    job.display_name = f"bankops batch scoring of {PurePosixPath(input_url).name}"
    job.tags = {TAG_INPUT: input_url, TAG_OUTPUT: f"{PREDICTIONS}/{output_name}", TAG_VERSION: str(version), "bankops.kind": "batch"}
    return job


def predictions_path(settings: Settings) -> str:
    return f"azureml://datastores/{settings.predictions_datastore}/paths/"


class AzureBatchRunner:
    def __init__(self, ml_client: Any, registry: ModelRegistry, settings: Settings, *, account_url: str, datastore: Datastore,
                 retry_after_s: float = 60.0) -> None:
        """`account_url`: the data storage account's blob endpoint; `batch/x.csv` is read as `<account_url>/batch/x.csv`.
        `datastore`: the same account's containers, where a file's header is checked before a job is submitted for it."""
        self.ml, self.registry, self.settings, self.datastore = ml_client, registry, settings, datastore
        self.account_url, self.retry_after_s = account_url.rstrip("/"), retry_after_s
        self.endpoint_name = settings.batch_endpoint_name

    # --- inputs --------------------------------------------------------------------------------
    def input_url(self, input_uri: str) -> str:
        """A remote URI (https://, azureml://) as it is; a datastore file (batch/clients.csv) as its blob URL."""
        if "://" in input_uri:
            return input_uri
        container, _, name = input_uri.partition("/")
        if not container or not name:
            raise InvalidInput(f"name a file as CONTAINER/NAME (e.g. batch/clients.csv) or a URI, not {input_uri!r}")
        return f"{self.account_url}/{container}/{name}"

    # --- the endpoint and its deployments -------------------------------------------------------
    def _get(self, operation: Any, *args: Any) -> Any | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return operation.get(*args)
        except ResourceNotFoundError:
            return None

    def _endpoint(self) -> Any:
        """The batch endpoint once it exists and is ready; creates it (InProgress) when missing."""
        from azure.ai.ml.entities import BatchEndpoint

        endpoint = self._get(self.ml.batch_endpoints, self.endpoint_name)
        if endpoint is None:
            self.ml.batch_endpoints.begin_create_or_update(BatchEndpoint(
                name=self.endpoint_name, description="bankops: batch scoring of client lists", tags={"bankops.kind": "batch"}))
            raise InProgress(f"creating batch endpoint {self.endpoint_name}", retry_after_s=self.retry_after_s)
        raise_unless_ready(endpoint, f"batch endpoint {self.endpoint_name}", self.retry_after_s, if_failed="see the Azure ML studio")
        return endpoint

    def _deployment(self, version: str) -> str:
        """The name of version's deployment once it has succeeded; creates it (InProgress) when missing."""
        self._endpoint()
        name = deployment_name(version)
        deployment = self._get(self.ml.batch_deployments, name, self.endpoint_name)
        if deployment is None:
            model = self.registry.get(version)
            with staged_code() as code:
                self.ml.batch_deployments.begin_create_or_update(
                    model_deployment(self.settings, model.name, model.version, code, endpoint_name=self.endpoint_name))
            raise InProgress(f"creating batch deployment {name}", retry_after_s=self.retry_after_s)
        raise_unless_ready(deployment, f"batch deployment {name}", self.retry_after_s,
                           if_failed="delete it in the Azure ML studio (or fix the environment) and submit again")
        return name

    def deploy(self, model_version: str) -> dict[str, str]:
        """Prepare `model_version`'s deployment and make it the endpoint's default (raises InProgress until ready)."""
        version = self.registry.get(str(model_version)).version
        name = self._deployment(version)
        endpoint = self._endpoint()
        if _default_deployment(endpoint) != name:
            endpoint.defaults = {"deployment_name": name}
            self.ml.batch_endpoints.begin_create_or_update(endpoint).result()
        return {"endpoint": self.endpoint_name, "deployment": name, "model_version": version,
                "scoring_uri": str(getattr(endpoint, "scoring_uri", "") or "")}

    def prepare(self, model_version: str) -> dict[str, Any]:
        """Endpoint mode: the version's deployment, made the default (InProgress until ready).
        Pipeline mode builds each job from the registered model: nothing to prepare."""
        if self.settings.batch_mode == "endpoint":
            return self.deploy(model_version)
        return {"model_version": self.registry.get(str(model_version)).version, "mode": "pipeline"}

    # --- runs ------------------------------------------------------------------------------------
    def submit(self, input_uri: str, model_version: str, output_name: str | None = None, *, key: str = "") -> BatchSubmission:
        """Submit the job; a datastore file's header is checked from its first bytes first, so a file with the wrong
        columns raises InvalidDataset (the handler quarantines it, as locally) instead of failing a job on the cluster."""
        url = self.input_url(input_uri)
        if "://" not in input_uri:
            container, _, name = input_uri.partition("/")
            check_header_bytes(self.datastore.read_head(container, name, HEADER_BYTES))
        return BatchSubmission(run_id=self._submit(url, str(model_version), output_name, key), scored=False)

    def _submit(self, url: str, model_version: str, output_name: str | None, key: str) -> str:
        version = self.registry.get(model_version).version
        default_output = output_names(PurePosixPath(url).name)[0]
        if self.settings.batch_mode == "endpoint" and output_name not in (None, default_output):
            raise InvalidInput(f"a batch endpoint writes {default_output} for this input; use AZUREML_BATCH_MODE=pipeline "
                               f"to name the output {output_name}")
        output = output_name or default_output
        job_name = f"bankops-batch-{hashlib.sha256(key.encode()).hexdigest()[:20]}" if key else None
        if job_name and self._get(self.ml.jobs, job_name) is not None:
            return job_name  # submitted before (a repeated event or a retried job): the same run
        if self.settings.batch_mode == "pipeline":
            with staged_code() as code:
                job = scoring_pipeline(self.settings, url, self.registry.get(version).name, version, output, code)
                if job_name:
                    job.name = job_name
                return str(self.ml.jobs.create_or_update(job, experiment_name=self.settings.experiment_name).name)
        return self._invoke(url, version, output, job_name)

    def _invoke(self, url: str, version: str, output: str, job_name: str | None) -> str:
        from azure.ai.ml import Input, Output
        from azure.ai.ml.constants import AssetTypes

        deployment = self._deployment(version)
        properties = {"experimentName": self.settings.experiment_name, TAG_INPUT: url, TAG_OUTPUT: f"{PREDICTIONS}/{output}",
                      TAG_VERSION: version}
        job = self.ml.batch_endpoints.invoke(
            endpoint_name=self.endpoint_name, deployment_name=deployment,
            inputs={"clients": Input(type=AssetTypes.URI_FILE, path=url)},
            outputs={"score": Output(type=AssetTypes.URI_FOLDER, path=predictions_path(self.settings))},
            params_override=[{"properties": properties}], **({"job_name": job_name} if job_name else {}))
        return str(job.name)

    def status(self, run_id: str) -> BatchRunStatus:
        job = self._get(self.ml.jobs, run_id)
        if job is None:
            raise NotFound(f"no Azure ML job named {run_id!r} in this workspace")
        marks = {**dict(getattr(job, "properties", None) or {}), **dict(getattr(job, "tags", None) or {})}
        status = str(job.status or "")
        return BatchRunStatus(run_id=run_id, state=STATES.get(status.lower(), "running"), input=marks.get(TAG_INPUT, ""),
                              output=marks.get(TAG_OUTPUT, ""), model_version=marks.get(TAG_VERSION, ""),
                              details={"status": status, "studio_url": str(getattr(job, "studio_url", "") or "")})
