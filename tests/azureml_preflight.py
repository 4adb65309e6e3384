"""What azure-ai-ml runs on an entity before it sends a request, run here on fake collaborators.

The fakes in tests/azure_fakes.py and tests/azure_batch_fakes.py call `Preflight` first, so an
entity the installed SDK (1.35.2) would refuse is refused in the tests too, with the SDK's own
error. These are the SDK's own code paths, not copies:

- jobs (`JobOperations.create_or_update`): `JobOperations._validate` (the job's schema validation
  and compute resolution), `JobOperations._resolve_arm_id_or_upload_dependencies` (components
  registered through `ComponentOperations`' own validate / resolve / `_to_rest_object`, inputs
  such as `azureml:name:version`, `name@latest` or datastore URIs resolved through the real
  `OperationOrchestrator`), then `to_rest_job_object`;
- schedules (`ScheduleOperations.begin_create_or_update`): `JobSchedule._validate`, the job's
  dependency resolution as above, `_to_rest_object`;
- online and batch deployments: `validate_scoring_script`, `upload_dependencies` (code, environment,
  model and compute through the orchestrator), `_to_rest_object(location=...)`;
- endpoints, data assets, models, environments, code: `_to_rest_object`.

The SDK resolves jobs and schedules in place (references become ARM ids), here as on a real
submit; deployments are checked on a deep copy, so the fake keeps the entity as given.

What it cannot check: anything the service decides (quota, RBAC, whether a datastore, a
registry environment or an explicitly versioned asset really exists, image builds, the
service-side schema of newer API versions). The SDK itself looks up only computes named on a
job or node, `@latest` labels, and local code and environments it must upload.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

from azure.ai.ml._scope_dependent_operations import OperationConfig, OperationsContainer, OperationScope
from azure.ai.ml._utils._endpoint_utils import upload_dependencies, validate_scoring_script
from azure.ai.ml.constants._common import AzureMLResourceType
from azure.ai.ml.entities import Component, Environment, Job, JobSchedule
from azure.ai.ml.entities._assets import Code
from azure.ai.ml.entities._job.to_rest_functions import to_rest_job_object
from azure.ai.ml.operations import ComponentOperations, ComputeOperations, EnvironmentOperations, JobOperations
from azure.ai.ml.operations._code_operations import CodeOperations
from azure.core.exceptions import ResourceNotFoundError

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "bankops-rg"
LOCATION = "westeurope"


def arm_id(workspace: str, kind: str, name: str, version: str | None = None) -> str:
    base = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.MachineLearningServices/"
            f"workspaces/{workspace}/{kind}/{name}")
    return f"{base}/versions/{version}" if version else base


class FakeComputeOperations(ComputeOperations):
    """Stands in for `MLClient.compute`: only `get` of the clusters this workspace has (by name)."""

    def __init__(self, workspace: str, clusters: set[str]) -> None:  # no service client: nothing is sent
        self.workspace, self.clusters = workspace, clusters

    def get(self, name: str, **_: Any) -> Any:  # type: ignore[override]
        if name not in self.clusters:
            raise ResourceNotFoundError(f"compute {name} not found in workspace {self.workspace}")
        from types import SimpleNamespace

        return SimpleNamespace(name=name, id=arm_id(self.workspace, "computes", name))


class FakeComponentOperations(ComponentOperations):
    """Stands in for `MLClient.components`: the real create_or_update's pre-send steps (validate without
    the remote part, resolve its code and environment, `_to_rest_object`), then an anonymous version."""

    def __init__(self, preflight: Preflight) -> None:
        from types import SimpleNamespace

        no_service = SimpleNamespace(component_versions=None, component_containers=None)  # never called: nothing is sent
        super().__init__(preflight.scope, preflight.config, no_service, preflight.container)  # type: ignore[arg-type]
        self.preflight = preflight
        self.registered: list[Component] = []

    def _get_client_key(self) -> str:  # the real one asks the workspaces operation for the workspace's id
        return f"workspace/{SUBSCRIPTION}/{RESOURCE_GROUP}/{self.preflight.workspace}"

    def create_or_update(self, component: Component, **_: Any) -> Component:  # type: ignore[override]
        self._validate(component, raise_on_failure=True, skip_remote_validation=True)
        self._resolve_arm_id_or_upload_dependencies(component)
        component._to_rest_object()
        component._id = arm_id(self.preflight.workspace, "components", component.name or "azureml_anonymous",
                               str(len(self.registered) + 1))
        self.registered.append(component)
        return component


class FakeCodeOperations(CodeOperations):
    """Stands in for `MLClient._code`: a local folder "uploaded" (it must exist and not be empty)."""

    def __init__(self, preflight: Preflight) -> None:
        self.preflight = preflight
        self.uploaded: list[Path] = []

    def create_or_update(self, code: Code) -> Code:  # type: ignore[override]
        path = Path(str(code.path))
        if not path.is_dir() or not any(path.iterdir()):
            raise ValueError(f"the code folder {path} does not exist or is empty")
        code._to_rest_object()
        self.uploaded.append(path)
        code._id = arm_id(self.preflight.workspace, "codes", code.name or "anonymous", str(len(self.uploaded)))
        return code


class FakeEnvironmentOperations(EnvironmentOperations):
    """Stands in for `MLClient.environments`: `_to_rest_object` (image or build context, conda file), an id."""

    def __init__(self, preflight: Preflight) -> None:
        self.preflight = preflight
        self.registered: list[Environment] = []

    def create_or_update(self, environment: Environment) -> Environment:  # type: ignore[override]
        environment._to_rest_object()
        self.registered.append(environment)
        environment._id = arm_id(self.preflight.workspace, "environments", environment.name or "anonymous",
                                 str(len(self.registered)))
        return environment


class Preflight:
    """The SDK's own pre-send steps, bound to one fake workspace's asset operations."""

    def __init__(self, client: Any, *, clusters: set[str] | None = None) -> None:
        from azure.ai.ml.operations._operation_orchestrator import OperationOrchestrator

        self.workspace = client.workspace_name
        self.scope = OperationScope(SUBSCRIPTION, RESOURCE_GROUP, self.workspace)
        self.config = OperationConfig(show_progress=False, enable_telemetry=False)
        self.container = OperationsContainer()
        self.orchestrator = OperationOrchestrator(self.container, self.scope, self.config)
        self.compute = FakeComputeOperations(self.workspace, clusters if clusters is not None else set())
        self.components = FakeComponentOperations(self)
        self.code = FakeCodeOperations(self)
        self.environments = FakeEnvironmentOperations(self)
        for kind, ops in ((AzureMLResourceType.DATA, client.data), (AzureMLResourceType.MODEL, client.models),
                          (AzureMLResourceType.COMPUTE, self.compute), (AzureMLResourceType.COMPONENT, self.components),
                          (AzureMLResourceType.CODE, self.code), (AzureMLResourceType.ENVIRONMENT, self.environments)):
            self.container.add(kind, ops)
        jobs = JobOperations.__new__(JobOperations)  # the real class without its service clients: only local steps run
        jobs._operation_scope, jobs._operation_config, jobs._all_operations = self.scope, self.config, self.container
        jobs._orchestrators, jobs._kwargs = self.orchestrator, {}
        self.jobs = jobs
        self.container.add(AzureMLResourceType.JOB, jobs)

    def job(self, job: Job) -> Job:
        """What JobOperations.create_or_update runs before its request, in place as there; answers the job."""
        self.jobs._validate(job, raise_on_failure=True)
        self.jobs._resolve_arm_id_or_upload_dependencies(job)
        to_rest_job_object(job)
        return job

    def schedule(self, schedule: JobSchedule) -> JobSchedule:
        """What ScheduleOperations.begin_create_or_update runs on a JobSchedule, in place as there."""
        schedule._validate(raise_error=True)
        if isinstance(schedule.create_job, Job):
            self.jobs._resolve_arm_id_or_upload_dependencies(schedule.create_job)
        schedule._to_rest_object()
        return schedule

    def deployment(self, deployment: Any) -> Any:
        """What Online/BatchDeploymentOperations.begin_create_or_update run (endpoint check aside)."""
        resolved = copy.deepcopy(deployment)
        if resolved.code_configuration and not str(resolved.code_configuration.code).startswith(("azureml:", "/subscriptions/")):
            validate_scoring_script(resolved)
        upload_dependencies(resolved, self.orchestrator)
        resolved._to_rest_object(location=LOCATION)
        return resolved

    def resolve_data(self, reference: str) -> str:
        """An input reference (`azureml:name:version`, `azureml:name@latest`) as the orchestrator resolves it."""
        return str(self.orchestrator.get_asset_arm_id(reference, AzureMLResourceType.DATA))


def copy_code(source: Path, target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    return target
