"""Each worker's model slot: follows `deployment.json` and swaps models without a pause.

A background thread checks the deployment file's stamp every `poll_s`. When it names another
version, the thread loads, compiles and warms that version beside the serving one, then swaps
the slot's reference in one assignment: a request reads `slot.current` once and is answered
by that model, old or new, never by a half-loaded one. The thread also reports what the worker
serves, and its counters, in `serving/workers/<pid>.json`.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Mapping

from shared.errors import CorruptState
from shared.serving.deployment import ServingState, WorkerReport
from shared.serving.served import ServedModel

log = logging.getLogger("bankops.serving")


def _settle_heap() -> None:
    """Collect once and freeze what is left (the libraries and the model just loaded) out of the
    collector's sight: a full collection walks every object the worker holds (milliseconds, with the
    GIL), and a request that arrives meanwhile waits; frozen objects are never walked again. Called
    after a load or a swap (the old model's cycles are collected first, so nothing leaks)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class WorkerStats:
    """Requests, records and unseen categories scored by this worker (the event loop writes them).

    `on_add` sees each scored request too (monitoring counts its unseen categories in Prometheus).
    """

    def __init__(self, on_add: Callable[[int, Mapping[str, int]], None] | None = None) -> None:
        self.requests = 0
        self.records = 0
        self.unseen: Counter[str] = Counter()
        self.on_add = on_add

    def add(self, records: int, unseen: Mapping[str, int]) -> None:
        self.requests += 1
        self.records += records
        if unseen:
            self.unseen.update(unseen)
        if self.on_add is not None:
            self.on_add(records, unseen)

    def snapshot(self) -> tuple[int, int, dict[str, int]]:
        return self.requests, self.records, dict(self.unseen)


class ModelSlot:
    """The model a worker serves now, kept in step with the deployment file."""

    def __init__(self, state: ServingState, loader: Callable[[str], ServedModel], stats: WorkerStats,
                 *, poll_s: float = 0.1, report_every_s: float = 1.0, freeze_heap: bool = False) -> None:
        self.state, self.loader, self.stats = state, loader, stats
        self.freeze_heap = freeze_heap  # a worker process of its own: settle the heap after each load (`_settle_heap`)
        self.poll_s, self.report_every_s = poll_s, report_every_s
        self.current: ServedModel | None = None
        self.error: str | None = None
        self.failed_version: str | None = None
        self.pid = os.getpid()
        self._stamp: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reported: tuple[object, ...] | None = None

    def start(self, fallback_version: Callable[[], str]) -> None:
        """Load the deployed version (or the fallback) now, then follow the deployment file."""
        self._stamp = self.state.deployment_stamp()
        deployment = self.state.deployment()
        version = deployment.model_version if deployment else fallback_version()
        self.current = self.loader(version)
        self._settled()
        log.info("worker %d serves model v%s", self.pid, version)
        self.report(force=True)
        self._thread = threading.Thread(target=self._run, name="bankops-model-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.state.remove_report(self.pid)

    def _run(self) -> None:
        waited = 0.0
        while not self._stop.wait(self.poll_s):
            try:
                self.check()
                waited += self.poll_s
                if waited >= self.report_every_s:
                    waited = 0.0
                    self.upgrade()
                    self.report()
            except Exception:  # keep watching: a bad file or a failed load must not stop the worker
                log.exception("model watcher of worker %d", self.pid)

    def check(self) -> None:
        """Swap to the deployed version if it changed (called by the thread; callable in tests)."""
        stamp = self.state.deployment_stamp()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            deployment = self.state.deployment()
        except CorruptState as exc:  # keep serving what it serves; the report and the log say why
            self.error = str(exc)
            log.error("worker %d keeps v%s: %s", self.pid, self.current.version if self.current else "-", self.error)
            self.report(force=True)
            return
        if deployment is None or (self.current and deployment.model_version == self.current.version):
            self.error = self.failed_version = None
            self.report(force=True)
            return
        try:
            loaded = self.loader(deployment.model_version)
        except Exception as exc:
            self.error = f"could not load model v{deployment.model_version}: {type(exc).__name__}: {exc}"
            self.failed_version = deployment.model_version
            log.error("worker %d keeps v%s: %s", self.pid, self.current.version if self.current else "-", self.error)
        else:
            before = self.current.version if self.current else "-"
            self.current, self.error, self.failed_version = loaded, None, None
            self._settled()  # the old model is unreferenced now: collected, not frozen
            log.info("worker %d swapped model v%s -> v%s", self.pid, before, loaded.version)
        self.report(force=True)

    def _settled(self) -> None:
        if self.freeze_heap:
            _settle_heap()

    def upgrade(self) -> None:
        """Swap to the same version with its members' machine code, once the compiler has cached it."""
        current = self.current
        if current is None or (upgraded := current.upgraded()) is None:
            return
        self.current = upgraded
        self._settled()
        log.info("worker %d serves model v%s with native trees (%s)", self.pid, upgraded.version,
                 ", ".join(upgraded.compiled.serving_native))

    def report(self, force: bool = False) -> None:
        requests, records, unseen = self.stats.snapshot()
        version = self.current.version if self.current else None
        key = (version, self.error, self.failed_version, requests, records, tuple(sorted(unseen.items())))
        if force or key != self._reported:
            self.state.write_report(WorkerReport(pid=self.pid, model_version=version, error=self.error,
                                                 failed_version=self.failed_version, requests=requests,
                                                 records=records, unseen_categories=unseen))
            self._reported = key
