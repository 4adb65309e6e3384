"""The composition root: build the adapters for the configured backend, lazily, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from shared.config import Settings, load_settings
from shared.errors import ConfigurationError
from shared.ports import BatchRunner, DatasetStore, Datastore, Deployer, ModelRegistry, RunLookup, RunTracker, Trainer, WorkQueue

if TYPE_CHECKING:
    from shared.automation.handlers import Automation
    from shared.training.pipeline import TrainingProgress

BACKENDS = ("local", "azure")


@dataclass
class Backend:
    """The adapters of one backend; each is built on first use. `progress` watches a training run in this process."""

    settings: Settings
    progress: TrainingProgress | None = None

    @cached_property
    def datasets(self) -> DatasetStore:
        from shared.adapters.local.datasets import LocalDatasetStore

        paths = self.settings.paths
        return LocalDatasetStore(paths.datasets, paths.catalog)

    @cached_property
    def tracker(self) -> RunTracker:
        from shared.adapters.local.tracking import MlflowTracker

        paths = self.settings.paths
        return MlflowTracker(paths.tracking_uri, self.settings.experiment_name, paths.artifacts)

    @cached_property
    def registry(self) -> ModelRegistry:
        from shared.adapters.local.registry import MlflowModelRegistry

        self.tracker  # noqa: B018 - configures the MLflow store before the registry uses it
        s = self.settings
        return MlflowModelRegistry(s.paths.tracking_uri, s.model_name, compile_at_registration=s.native_trees and s.native_at_registration,
                                   native_wait_s=s.native_registration_wait_s)

    @cached_property
    def datastore(self) -> Datastore:
        """Folders under $BANKOPS_HOME, or blob containers (BANKOPS_DATASTORE=azurite|azure)."""
        if self.settings.datastore == "local":
            from shared.adapters.local.datastore import LocalDatastore

            return LocalDatastore(self.settings.paths.datastore)
        from shared.adapters.azure.datastore import BlobDatastore, blob_service

        return BlobDatastore(blob_service(self.settings))

    @cached_property
    def deployer(self) -> Deployer:
        from shared.serving.deployer import LocalDeployer
        from shared.serving.deployment import ServingState
        from shared.serving.keys import KeyStore

        return LocalDeployer(ServingState(self.settings.paths.serving), self.registry, KeyStore.from_settings(self.settings))

    @cached_property
    def work_queue(self) -> WorkQueue:
        """Jobs and the event ledger in SQLite under BANKOPS_HOME (WAL: one machine, a local disk)."""
        from shared.adapters.local.work_queue import SqliteWorkQueue

        return SqliteWorkQueue(self.settings.paths.root / "queue.db")

    @cached_property
    def trainer(self) -> Trainer:
        """The training pipeline in this process (FLAML, MLflow on SQLite), reporting to `progress`."""
        from shared.adapters.local.trainer import LocalTrainer

        return LocalTrainer(datasets=self.datasets, registry=self.registry, tracker=self.tracker, progress=self.progress)

    @cached_property
    def batch_runner(self) -> BatchRunner:
        """Batch files scored in this process, from the datastore into its predictions container."""
        from shared.adapters.local.batch import LocalBatchRunner

        return LocalBatchRunner(datastore=self.datastore, tracker=self.tracker, registry=self.registry, native=self.settings.native_trees)

    @cached_property
    def run_lookup(self) -> RunLookup:
        """Finished runs read back from the local tracking store."""
        from shared.adapters.local.run_lookup import LocalRunLookup

        return LocalRunLookup(self.tracker)


@dataclass
class AzureBackend(Backend):
    """Azure ML (data assets, AutoML pipeline jobs, model registry, managed online endpoint) and Blob Storage."""

    ml_client: Any = None
    credential: Any = None

    def __post_init__(self) -> None:
        if self.ml_client is None:
            from shared.adapters.azure.workspace import credential, ml_client

            self.credential = self.credential or credential()
            self.ml_client = ml_client(self.settings, self.credential)

    @cached_property
    def blob_service(self) -> Any:
        from shared.adapters.azure.datastore import blob_service

        return blob_service(self.settings)

    @cached_property
    def datasets(self) -> DatasetStore:
        from shared.adapters.azure.datasets import AzureDatasetStore

        return AzureDatasetStore(self.ml_client, self.blob_service, datastore_name=self.settings.azureml_datastore)

    @cached_property
    def tracker(self) -> RunTracker:
        from shared.adapters.azure.tracking import workspace_tracker

        return workspace_tracker(self.ml_client, self.settings.experiment_name, credential=self.credential)

    @cached_property
    def registry(self) -> ModelRegistry:
        from shared.adapters.azure.registry import AzureModelRegistry

        return AzureModelRegistry(self.ml_client, self.settings.model_name, runs=self.workspace_runs,
                                  cache_dir=self.settings.paths.root / "models", lookup=self.run_lookup)

    @cached_property
    def workspace_runs(self) -> Any:
        """An MlflowClient on the workspace's tracking URI (read only)."""
        from shared.adapters.azure.tracking import workspace_runs

        return workspace_runs(self.ml_client, credential=self.credential)

    @cached_property
    def run_lookup(self) -> RunLookup:
        """Pipeline runs named by Event Grid -> their AutoML step's best child; why a run failed."""
        from shared.adapters.azure.run_lookup import AzureRunLookup

        return AzureRunLookup(self.ml_client, self.workspace_runs)

    @cached_property
    def datastore(self) -> Datastore:
        from shared.adapters.azure.datastore import BlobDatastore

        return BlobDatastore(self.blob_service)

    @cached_property
    def deployer(self) -> Deployer:
        from shared.adapters.azure.deployer import AzureDeployer

        s = self.settings
        return AzureDeployer(self.ml_client, self.registry, endpoint_name=s.endpoint_name, instance_type=s.instance_type,
                             instance_count=s.instance_count, grace_minutes=s.deploy_grace_minutes)

    @cached_property
    def work_queue(self) -> WorkQueue:
        """Storage queue `bankops-work` and tables `bankopsjobs`/`bankopsevents` on AzureWebJobsStorage: no local disk."""
        from shared.adapters.azure.work_queue import AzureWorkQueue

        return AzureWorkQueue.from_settings(self.settings)

    @cached_property
    def trainer(self) -> Trainer:
        from shared.adapters.azure.trainer import AzureTrainer

        return AzureTrainer(self.ml_client, self.settings, registry=self.registry, credential=self.credential)

    @cached_property
    def batch_runner(self) -> BatchRunner:
        """Batch files scored by an Azure ML batch endpoint or pipeline job, reading them by URL from the data account."""
        from shared.adapters.azure.batch import AzureBatchRunner

        return AzureBatchRunner(self.ml_client, self.registry, self.settings, account_url=str(self.blob_service.url),
                                datastore=self.datastore)


def missing_azure_settings(settings: Settings) -> list[str]:
    """Every setting the azure backend needs and lacks, named as app settings."""
    from shared.adapters.azure.workspace import missing_workspace_settings

    missing = missing_workspace_settings(settings)
    if settings.datastore == "local":
        missing.append("BANKOPS_DATASTORE=azure (data and dataset files live in Blob Storage with the azure backend)")
    elif settings.datastore == "azure" and not (settings.storage_account_url or settings.storage_connection_string):
        missing.append("BANKOPS_STORAGE_ACCOUNT_URL or BANKOPS_STORAGE_CONNECTION_STRING")
    if settings.azure_web_jobs_storage is None and not (settings.web_jobs_queue_uri and settings.web_jobs_table_uri):
        missing.append("AzureWebJobsStorage, or AzureWebJobsStorage__queueServiceUri and __tableServiceUri "
                       "(the work queue and job records)")
    return missing


def bootstrap(settings: Settings | None = None, *, progress: TrainingProgress | None = None, **azure: Any) -> Backend:
    """The backend the settings ask for; an unknown or incomplete one is a clear error.

    `progress` watches the training runs of this process (the local trainer's); `azure` (ml_client=,
    credential=) injects clients into the azure backend (tests use fakes).
    """
    settings = settings or load_settings()
    if settings.backend not in BACKENDS:
        raise ConfigurationError(f"unknown BANKOPS_BACKEND {settings.backend!r}; choose one of: {', '.join(BACKENDS)}")
    settings.paths.root.mkdir(parents=True, exist_ok=True)
    if settings.backend == "azure":
        missing = [] if azure.get("ml_client") is not None else missing_azure_settings(settings)
        if missing:
            raise ConfigurationError(f"BANKOPS_BACKEND=azure is missing settings: {'; '.join(missing)}. "
                                     "See README, 'Run it on Azure'.")
        return AzureBackend(settings, progress, **azure)
    return Backend(settings, progress)


# Automation's port fields and the Backend attribute that builds each
AUTOMATION_PORTS = {"datasets": "datasets", "registry": "registry", "tracker": "tracker", "datastore": "datastore",
                    "deployer": "deployer", "queue": "work_queue", "trainer": "trainer", "batch_runner": "batch_runner",
                    "run_lookup": "run_lookup"}


def build_automation(settings: Settings | None = None, backend: Backend | None = None, **given: Any) -> Automation:
    """Everything the event handlers need, for the configured backend.

    `given` hands parts in where the Automation is built, in place of the backend's (a port, e.g. the host's
    deployer that starts the scoring service) or besides them (`on_event`, e.g. the control metrics).
    """
    from shared.automation.handlers import Automation
    from shared.monitoring.ranges import MetricRanges

    backend = backend or bootstrap(settings)
    s = backend.settings
    ports = {name: given.pop(name) if name in given else getattr(backend, attr) for name, attr in AUTOMATION_PORTS.items()}
    given.setdefault("ranges", MetricRanges.from_settings(s))
    return Automation(settings=s, **ports, **given)
