"""The local stand-in for Storage BlobCreated events: poll `incoming/` and report new writes.

A file is reported only when its size and etag were stable across two polls, so a file still
being copied is not read half-written, and never while its name says it is unfinished: names
starting with '.' or ending in `.tmp` / `.part` are skipped until renamed (write under such a name,
then rename: the rename is the arrival). An arrival in `incoming/` is keyed in the ledger by its
content hash, which the handler releases once it has judged the file: a file put back unchanged
(say, from quarantine) is judged again, while a restart does not queue a file twice. A file that
stays where it is (a scored client list in `batch/`) is offered once per process, not at every
poll, so the ledger is not asked (and the log not told) again each second.
"""

from __future__ import annotations

import hashlib
import logging
import threading

from shared.automation.handlers import Automation, accept_event, arrival_key, unfinished, unread_arrival_key
from shared.automation.messages import BatchArrived, DataArrived
from shared.errors import NotFound
from shared.ports import BlobInfo, StreamingDatastore
from shared.untrusted_text import for_log

log = logging.getLogger("bankops.watcher")


class IncomingWatcher:
    def __init__(self, auto: Automation, *, container: str = "incoming", interval_s: float = 1.0) -> None:
        self.auto, self.container, self.interval_s = auto, container, interval_s
        self._last: dict[str, str] = {}
        self._offered: set[tuple[str, str]] = set()  # (name, etag) already offered: a file left in place is offered once
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _event_key(self, blob: BlobInfo, path: str) -> str:
        """The content hash for `incoming/` (streamed: bounded memory), the etag elsewhere or over the size cap."""
        if self.container != "incoming" or blob.size > self.auto.settings.max_data_mb * 2**20:
            return unread_arrival_key(path, blob.etag)
        digest = hashlib.sha256()
        store = self.auto.datastore
        if isinstance(store, StreamingDatastore):
            with store.open_read(self.container, blob.name) as stream:
                while chunk := stream.read(1 << 20):
                    digest.update(chunk)
        else:
            digest.update(store.read(self.container, blob.name))
        return arrival_key(path, digest.hexdigest())

    def poll(self) -> int:
        """One scan; returns how many new arrivals were queued."""
        queued = 0
        seen = {}
        for blob in self.auto.datastore.list(self.container):
            if unfinished(blob.name):
                continue
            seen[blob.name] = blob.etag
            if self._last.get(blob.name) != blob.etag or (blob.name, blob.etag) in self._offered:
                continue  # new or still changing: look again next time; or offered already
            self._offered.add((blob.name, blob.etag))
            arrival = BatchArrived if self.container == "batch" else DataArrived
            path = f"{self.container}/{blob.name}"
            message = arrival(blob=path, etag=blob.etag, sequencer=blob.etag, api="PutBlob")
            try:
                key = self._event_key(blob, path)
            except NotFound:  # gone between the listing and the read
                continue
            if accept_event(self.auto, message, key):
                log.info("new file %s queued", for_log(message.blob))
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
