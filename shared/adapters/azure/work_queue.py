"""The work queue and event ledger on Azure Storage: nothing on a local disk, one queue trigger runs the work.

Queue `bankops-work` carries only job ids (base64, as the Functions queue trigger reads them); the job
records are entities of table `bankopsjobs`, the ledger entities of table `bankopsevents`. A message's
visibility timeout is its lease and its delay: a retry or an `InProgress` step is a new message sent
with a visibility delay, so the attempts counted on the record (not the dequeue count) decide when a job
is dead. A dead job's id and reason go to `bankops-work-poison` (the Functions host's poison queue).

Storage has no transaction across a queue and a table, so intake is ordered to lose nothing: the job
record first, then the ledger entry (insert-if-absent, naming the job), then the queue message, then the
record marked sent. A redelivered event whose job was recorded but never sent gets it sent then.
Training requests collapse through an insert-if-absent `dedupe` entity that lives while its job is queued.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from shared.automation.messages import Message, lane_of
from shared.config import Settings
from shared.errors import BackendUnavailable, ConfigurationError
from shared.ports import Job

JOBS_TABLE, EVENTS_TABLE = "bankopsjobs", "bankopsevents"
JOB, DEDUPE, EVENT = "job", "dedupe", "event"  # partition keys
MAX_VISIBILITY_S = 7 * 24 * 3600 - 1  # a queue message can stay hidden for at most 7 days
INTAKE_THREADS = 16  # events of one batch taken concurrently: each is 3-4 storage round trips
MAX_TEXT = 30_000  # a table string property holds 64 KiB (UTF-16): results and errors are cut well below


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _row_key(event_key: str) -> str:
    """Table keys may not hold / \\ # ? or control characters, which blob names do: key by a digest."""
    return hashlib.sha256(event_key.encode()).hexdigest()


def _bounded_json(value: dict[str, Any]) -> str:
    text = json.dumps(value)
    return text if len(text) <= MAX_TEXT else json.dumps({"truncated": True, "outcome": value.get("outcome")})


def poison_queue_name(queue: str) -> str:
    return f"{queue}-poison"


class AzureWorkQueue:
    """The `WorkQueue` port on a Storage queue (the work) and two tables (job records, the ledger)."""

    def __init__(self, queue: QueueClient, poison: QueueClient, jobs: TableClient, events: TableClient, *,
                 max_attempts: int = 3, retry_delay_s: float = 5.0, lease_s: int = 600) -> None:
        self.queue, self.poison, self.jobs, self.events = queue, poison, jobs, events
        self.max_attempts, self.retry_delay_s, self.lease_s = max_attempts, retry_delay_s, lease_s
        self._leases: dict[str, Any] = {}  # job id -> the message `claim` holds invisible until the job settles
        for client in (queue, poison):
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()
        for table in (jobs, events):
            with contextlib.suppress(ResourceExistsError):
                table.create_table()

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> AzureWorkQueue:
        """Clients from `AzureWebJobsStorage` (a connection string) or its identity-based service URIs."""
        name = settings.work_queue
        if settings.azure_web_jobs_storage is not None:
            conn = settings.azure_web_jobs_storage.get_secret_value()
            queues = [QueueClient.from_connection_string(conn, q, message_encode_policy=TextBase64EncodePolicy(),
                                                         message_decode_policy=TextBase64DecodePolicy())
                      for q in (name, poison_queue_name(name))]
            tables = [TableClient.from_connection_string(conn, t) for t in (JOBS_TABLE, EVENTS_TABLE)]
        elif settings.web_jobs_queue_uri and settings.web_jobs_table_uri:
            from shared.adapters.azure.workspace import credential

            cred = credential()
            queues = [QueueClient(settings.web_jobs_queue_uri, q, credential=cred, message_encode_policy=TextBase64EncodePolicy(),
                                  message_decode_policy=TextBase64DecodePolicy()) for q in (name, poison_queue_name(name))]
            tables = [TableClient(settings.web_jobs_table_uri, t, credential=cred) for t in (JOBS_TABLE, EVENTS_TABLE)]
        else:
            raise ConfigurationError("the azure work queue needs AzureWebJobsStorage (a connection string) or "
                                     "AzureWebJobsStorage__queueServiceUri and AzureWebJobsStorage__tableServiceUri")
        return cls(queues[0], queues[1], tables[0], tables[1], **options)

    # --- records ----------------------------------------------------------------------------
    @staticmethod
    def _job(entity: dict[str, Any]) -> Job:
        return Job(job_id=entity["RowKey"], lane=entity["lane"], kind=entity["kind"], status=entity["status"],
                   attempts=int(entity["attempts"]), created_at=entity["created_at"], updated_at=entity["updated_at"],
                   error=entity.get("error", ""), result=json.loads(entity.get("result", "{}")),
                   payload=json.loads(entity["payload"]))

    def _entity(self, job_id: str) -> dict[str, Any] | None:
        try:
            return dict(self.jobs.get_entity(JOB, job_id))
        except ResourceNotFoundError:
            return None

    def _update(self, job_id: str, **fields: Any) -> None:
        self.jobs.update_entity({"PartitionKey": JOB, "RowKey": job_id, "updated_at": _now(), **fields}, mode=UpdateMode.MERGE)

    def _record(self, message: Message, dedupe: str | None) -> dict[str, Any]:
        now = _now()
        entity = {"PartitionKey": JOB, "RowKey": message.message_id, "lane": lane_of(message.kind), "kind": message.kind,
                  "payload": json.dumps(message.to_dict()), "status": "queued", "attempts": 0, "dedupe": dedupe or "",
                  "created_at": now, "updated_at": now, "created_ns": f"{time.time_ns():020d}", "error": "", "result": "{}", "sent": False}
        self.jobs.create_entity(entity)
        return entity

    def _send(self, job_id: str, lane: str, delay_s: float = 0.0) -> None:
        body = json.dumps({"job_id": job_id, "lane": lane})
        self.queue.send_message(body, visibility_timeout=min(max(int(delay_s + 0.999), 0), MAX_VISIBILITY_S))
        self._update(job_id, sent=True)

    # --- intake -----------------------------------------------------------------------------
    def accept(self, items: Sequence[tuple[Message, str]]) -> list[bool]:
        """Each distinct key in its own ordered steps, up to INTAKE_THREADS at once (Event Grid waits 30 s at most)."""
        first: dict[str, int] = {}
        for index, (_, event_key) in enumerate(items):
            first.setdefault(event_key, index)
        unique = [items[i] for i in first.values()]
        with ThreadPoolExecutor(max_workers=min(INTAKE_THREADS, max(len(unique), 1))) as pool:
            taken = dict(zip(first.values(), pool.map(lambda item: self._accept_one(*item), unique), strict=True))
        return [taken.get(index, False) for index in range(len(items))]

    def _accept_one(self, message: Message, event_key: str) -> bool:
        try:  # the common repeat (Event Grid redelivers) costs one read
            seen = self.events.get_entity(EVENT, _row_key(event_key))
        except ResourceNotFoundError:
            pass
        else:
            self._finish_intake(str(seen["job_id"]))
            return False
        with contextlib.suppress(ResourceExistsError):  # the same message again: its record is already there
            self._record(message, None)
        try:
            self.events.create_entity({"PartitionKey": EVENT, "RowKey": _row_key(event_key), "event_key": event_key[:1000],
                                       "job_id": message.message_id, "received_at": _now()})
        except ResourceExistsError:
            owner = str(self.events.get_entity(EVENT, _row_key(event_key))["job_id"])
            if owner != message.message_id:
                self.jobs.delete_entity(JOB, message.message_id)
            self._finish_intake(owner)
            return False
        self._send(message.message_id, lane_of(message.kind))
        return True

    def release_event(self, event_key: str) -> None:
        """Forget a key once its file was judged, so the same content put back is judged again."""
        with contextlib.suppress(ResourceNotFoundError):
            self.events.delete_entity(EVENT, _row_key(event_key))

    def _finish_intake(self, job_id: str) -> None:
        """A key seen before whose job was recorded but never sent (a crash in between): send it now."""
        entity = self._entity(job_id)
        if entity is not None and entity["status"] == "queued" and not entity.get("sent"):
            self._send(job_id, entity["lane"])

    def put(self, message: Message, *, dedupe: str | None = None) -> tuple[Job, bool]:
        if dedupe is not None:
            for _ in range(5):  # each pass takes the key, finds the live job under it, or clears a stale holder
                try:
                    self.jobs.create_entity({"PartitionKey": DEDUPE, "RowKey": dedupe, "job_id": message.message_id})
                    break
                except ResourceExistsError:
                    try:
                        holder = self.jobs.get_entity(DEDUPE, dedupe)
                    except ResourceNotFoundError:
                        continue
                    current = self._entity(holder["job_id"])
                    if current is not None and current["status"] == "queued":
                        return self._job(current), False
                    # only the holder we read: a concurrent put may have replaced it meanwhile
                    with contextlib.suppress(ResourceNotFoundError, ResourceModifiedError):
                        self.jobs.delete_entity(DEDUPE, dedupe, etag=holder.metadata["etag"],
                                                match_condition=MatchConditions.IfNotModified)
            else:
                raise BackendUnavailable(f"could not take the {dedupe!r} queue key after 5 tries; try again")
        entity = self._record(message, dedupe)
        self._send(message.message_id, entity["lane"])
        return self._job(self._entity(message.message_id) or entity), True

    # --- the worker's side ------------------------------------------------------------------
    def start(self, job_id: str) -> Job | None:
        """A delivery of `job_id` begins: the job is now running (None: already finished, or gone).

        A job found `running` was interrupted (the host stopped or timed out): that counts as an attempt.
        """
        entity = self._entity(job_id)
        if entity is None or entity["status"] in ("done", "dead"):
            return None
        if entity["status"] == "running" and int(entity["attempts"]) >= self.max_attempts:
            self._dead(job_id, "interrupted: the host stopped or timed out on every attempt")
            return None
        if entity.get("dedupe"):
            with contextlib.suppress(ResourceNotFoundError):  # no longer queued: a new request queues a new run
                self.jobs.delete_entity(DEDUPE, entity["dedupe"])
        self._update(job_id, status="running", attempts=int(entity["attempts"]) + 1)
        found = self._entity(job_id)
        return self._job(found) if found else None

    def claim(self, lane: str) -> Job | None:
        """Pull the next visible job of `lane` (the local-style loop; on Azure the queue trigger delivers instead).

        Messages of other lanes are made visible again at once.
        """
        taken: Job | None = None
        for msg in list(self.queue.receive_messages(messages_per_page=32, visibility_timeout=self.lease_s, max_messages=32)):
            body = json.loads(msg.content)
            if taken is not None or body.get("lane") != lane:
                self.queue.update_message(msg, visibility_timeout=0)  # not ours to run now: visible again at once
                continue
            job = self.start(str(body["job_id"]))
            if job is None:  # already settled: a repeated delivery
                self.queue.delete_message(msg)
                continue
            self._leases[job.job_id] = msg
            taken = job
        return taken

    def _settle(self, job_id: str) -> None:
        """The job's delivery is over (the queue trigger's host deletes its own message when the function returns)."""
        msg = self._leases.pop(job_id, None)
        if msg is not None:
            self.queue.delete_message(msg)

    def complete(self, job_id: str, result: dict[str, Any] | None = None) -> None:
        self._update(job_id, status="done", error="", result=_bounded_json(result or {}))
        self._settle(job_id)

    def annotate(self, job_id: str, result: dict[str, Any]) -> None:
        entity = self._entity(job_id)
        merged = (json.loads(entity.get("result", "{}")) if entity else {}) | result
        self._update(job_id, result=_bounded_json(merged))

    def _dead(self, job_id: str, error: str) -> None:
        self._update(job_id, status="dead", error=error[:2000])
        self.poison.send_message(json.dumps({"job_id": job_id, "reason": error[:2000]}))
        self._settle(job_id)

    def fail(self, job_id: str, error: str, *, retry: bool = True) -> Job:
        entity = self._entity(job_id)
        if entity is None:
            raise KeyError(job_id)
        attempts = int(entity["attempts"])
        if not retry or attempts >= self.max_attempts:
            self._dead(job_id, error)
        else:
            self._update(job_id, status="queued", error=error[:2000], sent=False)
            self._send(job_id, entity["lane"], self.retry_delay_s * 2 ** (attempts - 1))
            self._settle(job_id)
        return self._job(self._entity(job_id) or entity)

    def defer(self, job_id: str, delay_s: float, note: str) -> Job:
        entity = self._entity(job_id)
        if entity is None:
            raise KeyError(job_id)
        result = json.loads(entity.get("result", "{}")) | {"progress": note[:500]}
        self._update(job_id, status="queued", attempts=max(int(entity["attempts"]) - 1, 0), result=_bounded_json(result),
                     sent=False)
        self._send(job_id, entity["lane"], delay_s)
        self._settle(job_id)
        return self._job(self._entity(job_id) or entity)

    def recover(self) -> list[Job]:
        """Nothing to do: an interrupted delivery becomes visible again when its lease ends, and `start` counts it."""
        return []

    # --- reading ----------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        entity = self._entity(job_id)
        return self._job(entity) if entity else None

    def _all(self, query: str = "PartitionKey eq 'job'", **params: Any) -> list[dict[str, Any]]:
        rows = [dict(e) for e in self.jobs.query_entities(query, parameters=params or None)]
        return sorted(rows, key=lambda e: str(e.get("created_ns", "")), reverse=True)

    def recent(self, limit: int = 10, kind: str | None = None) -> list[Job]:
        rows = self._all("PartitionKey eq 'job' and kind eq @kind", kind=kind) if kind else self._all()
        return [self._job(e) for e in rows[:limit]]

    def dead_letters(self, limit: int = 20) -> tuple[list[Job], int]:
        rows = self._all("PartitionKey eq 'job' and status eq 'dead'")
        return [self._job(e) for e in rows[:limit]], len(rows)

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for entity in self.jobs.query_entities("PartitionKey eq 'job'", select=["status"]):
            found[entity["status"]] = found.get(entity["status"], 0) + 1
        return found

    def pending(self) -> int:
        counts = self.counts()
        return counts.get("queued", 0) + counts.get("running", 0)
