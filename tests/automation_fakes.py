"""Fakes for the automation tests: the blob containers and the scoring endpoint.

InMemoryDatastore stands in for Azure Blob / the local folders (etag changes on each write).
FakeDeployer stands in for the scoring endpoint: it remembers what it serves and can be told to
fail its smoke test, as a broken deployment would.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.errors import Conflict, NotFound
from shared.ports import BlobInfo, DatasetStore, Datastore, Deployer, ModelRegistry, RunTracker, SmokeResult, WorkQueue

if TYPE_CHECKING:
    from shared.automation.handlers import Automation
    from shared.config import Settings


class InMemoryDatastore:
    def __init__(self) -> None:
        self.files: dict[tuple[str, str], tuple[bytes, str]] = {}
        self._etags = itertools.count(1)

    def list(self, container: str) -> list[BlobInfo]:
        return [BlobInfo(c, n, e, len(d)) for (c, n), (d, e) in self.files.items() if c == container]

    def info(self, container: str, name: str) -> BlobInfo | None:
        found = self.files.get((container, name))
        return BlobInfo(container, name, found[1], len(found[0])) if found else None

    def read(self, container: str, name: str) -> bytes:
        if (container, name) not in self.files:
            raise NotFound(f"{container}/{name} does not exist")
        return self.files[(container, name)][0]

    def read_head(self, container: str, name: str, max_bytes: int) -> bytes:
        return self.read(container, name)[:max_bytes]

    def write(self, container: str, name: str, data: bytes) -> BlobInfo:
        self.files[(container, name)] = (data, f"etag-{next(self._etags)}")
        return self.info(container, name)  # type: ignore[return-value]

    def move(self, container: str, name: str, to_container: str, *, etag: str | None = None) -> BlobInfo:
        if (container, name) not in self.files:
            raise NotFound(f"{container}/{name} does not exist")
        if etag is not None and self.files[(container, name)][1] != etag:
            raise Conflict(f"{container}/{name} changed since it was read")
        data, _ = self.files.pop((container, name))
        return self.write(to_container, name, data)


class FakeDeployer:
    def __init__(self) -> None:
        self.serving: str | None = None
        self.history: list[str] = []
        self.broken_versions: set[str] = set()

    def deploy(self, version: str) -> None:
        self.serving = version
        self.history.append(version)

    def current(self) -> str | None:
        return self.serving

    def smoke_test(self, version: str) -> SmokeResult:
        if version in self.broken_versions:
            return SmokeResult(False, f"v{version} answered 500")
        return SmokeResult(self.serving == version, f"serving v{self.serving}")


def make_automation(*, settings: Settings, datasets: DatasetStore, registry: ModelRegistry, tracker: RunTracker,
                    datastore: Datastore, deployer: Deployer, queue: WorkQueue, **ports: Any) -> Automation:
    """An Automation on the given parts; the trainer, batch runner and run lookup not given are the local backend's,
    built around these parts as the composition root builds them (the pipeline and batch scoring in this process)."""
    from shared.adapters.local.batch import LocalBatchRunner
    from shared.adapters.local.run_lookup import LocalRunLookup
    from shared.adapters.local.trainer import LocalTrainer
    from shared.automation.handlers import Automation

    if "trainer" not in ports:
        ports["trainer"] = LocalTrainer(datasets=datasets, registry=registry, tracker=tracker)
    if "batch_runner" not in ports:
        ports["batch_runner"] = LocalBatchRunner(datastore=datastore, tracker=tracker, registry=registry,
                                                 native=settings.native_trees)
    if "run_lookup" not in ports:
        ports["run_lookup"] = LocalRunLookup(tracker)
    return Automation(settings=settings, datasets=datasets, registry=registry, tracker=tracker, datastore=datastore,
                      deployer=deployer, queue=queue, **ports)


def in_memory_automation(home: Path, *, datastore: Datastore | None = None, **settings: Any) -> Automation:
    """An Automation on in-memory stores and a real SQLite queue under `home` (retries without delay): the handlers'
    tests. `datastore` defaults to the in-memory one; `settings` override load_settings."""
    from shared.adapters.local.work_queue import SqliteWorkQueue
    from shared.config import load_settings
    from tests.fakes import InMemoryDatasetStore, InMemoryModelRegistry, InMemoryRunTracker

    return make_automation(settings=load_settings(home=home, **settings), datasets=InMemoryDatasetStore(),
                           registry=InMemoryModelRegistry(), tracker=InMemoryRunTracker(), datastore=datastore or InMemoryDatastore(),
                           deployer=FakeDeployer(), queue=SqliteWorkQueue(home / "queue.db", retry_delay_s=0))
