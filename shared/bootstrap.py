"""The composition root: build the adapters for the configured backend, lazily, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.config import Settings, load_settings
from shared.errors import ConfigurationError
from shared.ports import DatasetStore, ModelRegistry, RunTracker

if TYPE_CHECKING:
    from shared.automation.handlers import Automation

BACKENDS = ("local", "azure")


def shipped_data() -> Path:
    """The UCI bank marketing training CSV that ships with the package (CC BY 4.0, see its README)."""
    return Path(str(resources.files("shared.resources") / "bankmarketing_train.csv"))


@dataclass
class Backend:
    """The adapters of one backend; each is built on first use."""

    settings: Settings

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
        return MlflowModelRegistry(self.settings.paths.tracking_uri, self.settings.model_name)


def bootstrap(settings: Settings | None = None) -> Backend:
    """The backend the settings ask for; an unknown or not-yet-available one is a clear error."""
    settings = settings or load_settings()
    if settings.backend not in BACKENDS:
        raise ConfigurationError(f"unknown BANKOPS_BACKEND {settings.backend!r}; choose one of: {', '.join(BACKENDS)}")
    if settings.backend == "azure":
        raise ConfigurationError(
            "the azure backend is not available in this version; set BANKOPS_BACKEND=local (the default)"
        )
    settings.paths.root.mkdir(parents=True, exist_ok=True)
    return Backend(settings)


def build_automation(settings: Settings | None = None, **extra: Any) -> Automation:
    """Everything the event handlers need, for the configured backend."""
    from shared.adapters.local.datastore import LocalDatastore
    from shared.automation.handlers import Automation
    from shared.automation.work_queue import WorkQueue
    from shared.serving.deployer import LocalDeployer
    from shared.serving.deployment import ServingState
    from shared.serving.keys import KeyStore

    backend = bootstrap(settings)
    s, paths = backend.settings, backend.settings.paths
    floors = {"recall_yes": s.gate_min_recall_yes} if s.gate_min_recall_yes > 0 else {}
    deployer = LocalDeployer(ServingState(paths.serving), backend.registry, KeyStore.from_settings(s))
    return Automation(settings=s, datasets=backend.datasets, registry=backend.registry, tracker=backend.tracker,
                      datastore=LocalDatastore(paths.datastore), deployer=deployer, queue=WorkQueue(paths.root / "queue.db"),
                      floors=floors, **extra)
