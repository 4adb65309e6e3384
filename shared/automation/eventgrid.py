"""Event Grid payloads (Event Grid schema and CloudEvents 1.0) in, messages out.

Only blob writes that finish a blob count as arrivals, keyed by container/name + eTag (one write can
raise several events with different ids). eTags are compared without their quotes: Event Grid's
documented BlobCreated carries `"eTag": "\\"0x8D...\\""`, blob properties come with or without them.
The blob is named by the subject or, when there is none, by its URL (real `<account>.blob.core.windows.net`
or Data Lake `dfs` URLs, and the storage emulator's path-style `http://127.0.0.1:10000/<account>/...`).

Azure ML events count only for pipeline runs bankops submitted: `runType` `azureml.PipelineRun` and the
tag `bankops_job=training` (RunCompleted of child, step or AutoML runs, and other pipelines, are
acknowledged and ignored). A RunStatusChanged of such a run to Failed or Canceled marks the retrain failed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from shared.automation.messages import BatchArrived, DataArrived, Message, RunCompleted, RunFailed
from shared.errors import InvalidInput

log = logging.getLogger("bankops.events")

VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"
RUN_STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"
PIPELINE_RUN = "azureml.PipelineRun"
JOB_TAG, JOB_TRAINING, DATASET_TAG = "bankops_job", "training", "bankops_dataset"
FAILED_STATUSES = {"failed": "failed", "canceled": "canceled", "cancelled": "canceled"}
MAX_RUN_ID = 255  # Azure ML run names are shorter; a longer one is not a run of ours
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
        events.append(Envelope(id=str(item["id"]), type=str(event_type), subject=str(item.get("subject") or ""), data=data))
    return events


def validation_response(events: list[Envelope]) -> dict[str, str] | None:
    """The answer to Event Grid's subscription validation handshake, if this is one."""
    for event in events:
        if event.type == VALIDATION:
            return {"validationResponse": str(event.data.get("validationCode", ""))}
    return None


def normalize_etag(etag: str) -> str:
    """An eTag without its quotes (and weak marker), as the datastores report them."""
    value = etag.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


def _is_emulator_host(host: str) -> bool:
    """Path-style URLs (account as the first path segment): IPs, localhost, single-label hosts (Azurite)."""
    return host == "localhost" or "." not in host or host.replace(".", "").isdigit()


def blob_path(subject: str, url: str = "") -> tuple[str, str]:
    """(container, name) from `/blobServices/default/containers/<c>/blobs/<name>` or, without one, the blob URL."""
    marker = "/containers/"
    if marker in subject and "/blobs/" in subject:
        container, _, name = subject.split(marker, 1)[1].partition("/blobs/")
        if container and name:
            return container, name
    parts = urlsplit(url)
    segments = [unquote(s) for s in parts.path.split("/")[1:]]
    if parts.hostname and _is_emulator_host(parts.hostname):
        segments = segments[1:]  # the account name
    if len(segments) >= 2 and segments[0] and all(segments[1:]):
        return segments[0], "/".join(segments[1:])
    raise InvalidInput(f"cannot tell the container and blob name from subject {subject[:200]!r} or url {url[:200]!r}; "
                       "a BlobCreated event needs one of them")


def _our_pipeline_run(event: Envelope) -> tuple[str, Mapping[str, Any]] | None:
    """(run id, run tags) when the event is about a pipeline run bankops submitted; else None (logged)."""
    data = event.data
    raw_tags = data.get("runTags")
    tags: Mapping[str, Any] = raw_tags if isinstance(raw_tags, dict) else {}
    run_id, run_type = str(data.get("runId") or ""), str(data.get("runType") or "")
    if (run_type.lower() != PIPELINE_RUN.lower() or str(tags.get(JOB_TAG, "")) != JOB_TRAINING or not run_id
            or len(run_id) > MAX_RUN_ID):
        log.info("ignored %s of run %s (runType %s): not a bankops training pipeline run", event.type.rsplit(".", 1)[-1],
                 run_id[:100] or "?", run_type[:50] or "null")
        return None
    return run_id, tags


def to_message(event: Envelope) -> tuple[Message, str] | None:
    """The message and its idempotency key, or None when the event is not ours to act on."""
    if event.type == BLOB_CREATED:
        api = str(event.data.get("api", "PutBlob"))
        container, name = blob_path(event.subject, str(event.data.get("url", "")))
        if container not in (INCOMING, BATCH) or api not in FINISHING_APIS:
            log.info("ignored %s %s/%s (api %s)", event.type, container, name, api)
            return None
        etag = normalize_etag(str(event.data.get("eTag", "")))
        arrival = BatchArrived if container == BATCH else DataArrived
        message = arrival(blob=f"{container}/{name}", etag=etag, sequencer=str(event.data.get("sequencer", "")), api=api)
        return message, f"blob:{container}/{name}:{etag}"
    if event.type == RUN_COMPLETED:
        ours = _our_pipeline_run(event)
        if ours is None:
            return None
        run_id, tags = ours
        return RunCompleted(run_id=run_id, model_version="", dataset=str(tags.get(DATASET_TAG, ""))[:300]), f"run:{run_id}"
    if event.type == RUN_STATUS_CHANGED:
        status = str(event.data.get("runStatus") or "")
        if status.lower() not in FAILED_STATUSES:
            log.info("ignored RunStatusChanged to %s of run %s", status[:30] or "?", str(event.data.get("runId"))[:100])
            return None
        ours = _our_pipeline_run(event)
        if ours is None:
            return None
        run_id, tags = ours
        outcome = FAILED_STATUSES[status.lower()]
        return RunFailed(run_id=run_id, status=outcome, dataset=str(tags.get(DATASET_TAG, ""))[:300]), f"run:{run_id}:{outcome}"
    log.info("ignored event type %s", event.type[:100])
    return None
