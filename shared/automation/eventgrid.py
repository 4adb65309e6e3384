"""Event Grid payloads (Event Grid schema and CloudEvents 1.0) in, messages out.

Only blob writes that finish a blob count as arrivals, keyed by URL + eTag (one write can raise
several events with different ids); Azure ML RunCompleted counts for AutoML parent runs only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.automation.messages import BatchArrived, DataArrived, Message, RunCompleted
from shared.errors import InvalidInput

log = logging.getLogger("bankops.events")

VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"
FINISHING_APIS = {"PutBlob", "PutBlockList", "CopyBlob", "FlushWithClose", "PutBlobFromUrl"}
INCOMING = "incoming"
BATCH = "batch"


@dataclass(frozen=True)
class Envelope:
    """One event, whichever schema it came in."""

    id: str
    type: str
    subject: str
    data: Mapping[str, Any]


def parse(body: Any) -> list[Envelope]:
    """A batch (JSON array) or a single event, Event Grid schema or CloudEvents."""
    items = body if isinstance(body, list) else [body]
    events = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidInput(f"event {index} is not a JSON object")
        event_type = item.get("eventType") or item.get("type")
        if not event_type or "id" not in item:
            raise InvalidInput(f"event {index} has no id and eventType (Event Grid) or type (CloudEvents)")
        data = item.get("data") or {}
        if not isinstance(data, dict):
            raise InvalidInput(f"event {index}: data must be a JSON object")
        events.append(Envelope(id=str(item["id"]), type=str(event_type), subject=str(item.get("subject", "")), data=data))
    return events


def validation_response(events: list[Envelope]) -> dict[str, str] | None:
    """The answer to Event Grid's subscription validation handshake, if this is one."""
    for event in events:
        if event.type == VALIDATION:
            return {"validationResponse": str(event.data.get("validationCode", ""))}
    return None


def blob_path(subject: str, url: str = "") -> tuple[str, str]:
    """(container, name) from `/blobServices/default/containers/<c>/blobs/<name>` or the blob URL."""
    marker = "/containers/"
    if marker in subject and "/blobs/" in subject:
        container, _, name = subject.split(marker, 1)[1].partition("/blobs/")
        return container, name
    parts = url.split("://", 1)[-1].split("/", 2)
    if len(parts) == 3 and "/" in parts[2]:
        container, name = parts[2].split("/", 1)
        return container, name
    raise InvalidInput(f"cannot tell the container and blob name from subject {subject!r}")


def to_message(event: Envelope) -> tuple[Message, str] | None:
    """The message and its idempotency key, or None when the event is not ours to act on."""
    if event.type == BLOB_CREATED:
        api = str(event.data.get("api", "PutBlob"))
        container, name = blob_path(event.subject, str(event.data.get("url", "")))
        if container not in (INCOMING, BATCH) or api not in FINISHING_APIS:
            log.info("ignored %s %s/%s (api %s)", event.type, container, name, api)
            return None
        etag = str(event.data.get("eTag", ""))
        arrival = BatchArrived if container == BATCH else DataArrived
        message = arrival(blob=f"{container}/{name}", etag=etag, sequencer=str(event.data.get("sequencer", "")), api=api)
        return message, f"blob:{container}/{name}:{etag}"
    if event.type == RUN_COMPLETED:
        props = event.data.get("runProperties") or {}
        run_type = str(event.data.get("runType", "")).lower()
        if run_type != "automl" or str(props.get("runTemplate", "")).lower() == "automl_child":
            log.info("ignored RunCompleted of %s run %s (not an AutoML parent run)", run_type or "unknown", event.data.get("runId"))
            return None
        run_id = str(event.data.get("runId", ""))
        return RunCompleted(run_id=run_id, model_version="", dataset=""), f"run:{run_id}"
    log.info("ignored event type %s", event.type)
    return None
