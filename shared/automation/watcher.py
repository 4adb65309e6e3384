"""The local stand-in for Storage BlobCreated events: poll `incoming/` and report new writes.

A file is reported once per (name, etag) through the ledger, and only when its size and etag
were stable across two polls, so a file still being copied is not read half-written. A file that
stays where it is (a scored client list in `batch/`) is offered once per process, not at every
poll, so the ledger is not asked (and the log not told) again each second.
"""

from __future__ import annotations

import logging
import threading

from shared.automation.handlers import Automation, accept_event
from shared.automation.messages import BatchArrived, DataArrived

log = logging.getLogger("bankops.watcher")


class IncomingWatcher:
    def __init__(self, auto: Automation, *, container: str = "incoming", interval_s: float = 1.0) -> None:
        self.auto, self.container, self.interval_s = auto, container, interval_s
        self._last: dict[str, str] = {}
        self._offered: set[tuple[str, str]] = set()  # (name, etag) already offered: a file left in place is offered once
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> int:
        """One scan; returns how many new arrivals were queued."""
        queued = 0
        seen = {}
        for blob in self.auto.datastore.list(self.container):
            seen[blob.name] = blob.etag
            if self._last.get(blob.name) != blob.etag or (blob.name, blob.etag) in self._offered:
                continue  # new or still changing: look again next time; or offered already
            self._offered.add((blob.name, blob.etag))
            arrival = BatchArrived if self.container == "batch" else DataArrived
            message = arrival(blob=f"{self.container}/{blob.name}", etag=blob.etag, sequencer=blob.etag, api="PutBlob")
            if accept_event(self.auto, message, f"blob:{message.blob}:{blob.etag}"):
                log.info("new file %s queued", message.blob)
                queued += 1
        self._last = seen
        self._offered = {(name, etag) for name, etag in self._offered if seen.get(name) == etag}
        return queued

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.poll()
            except Exception:
                log.exception("scanning %s failed", self.container)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"{self.container}-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
