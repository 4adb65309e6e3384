"""The control-plane operations behind the HTTP routes, shared by the Azure Functions app and
the local host: each takes a parsed body and returns a JSON-ready answer (or raises a
BankopsError that the route maps to a status)."""

from __future__ import annotations

import json
from typing import Any

from shared.automation import eventgrid
from shared.automation.handlers import Automation, request_training
from shared.automation.messages import Deploy, Rollback
from shared.errors import BankopsError, InvalidInput, NotFound, PayloadTooLarge
from shared.ports import CHAMPION

MAX_BODY_BYTES = 2 * 1024 * 1024  # Event Grid batches stay under 1 MB (one event may be 1 MB): room to spare
MAX_DEPTH = 32  # the deepest documented payload (a blob or run event) nests 4 levels
MAX_EVENTS = 5000  # Event Grid's largest maxEventsPerBatch
DEAD_LETTERS_SHOWN = 20  # /api/status lists the newest ones and counts them all


def check_size(size: int) -> None:
    """413 for a body over the control plane's limit, before it is read."""
    if size > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body is larger than the control plane's limit of {MAX_BODY_BYTES} bytes; "
                              "send less (Event Grid: batches of at most 1 MB)")


def _depth(value: Any) -> int:
    """How deep `value` nests lists and objects (iterative: a deep value cannot exhaust the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_body(raw: bytes) -> Any:
    """A request body as JSON; empty is None; too big is a 413; anything else bad is a 422 naming the problem."""
    check_size(len(raw))
    if not raw.strip():
        return None
    too_deep = InvalidInput(f"the body nests lists or objects deeper than {MAX_DEPTH} levels; send a flat JSON document")
    try:
        body = json.loads(raw)
    except RecursionError:  # the decoder's own guard on nesting far beyond MAX_DEPTH
        raise too_deep from None
    except ValueError as exc:
        raise InvalidInput(f"the body is not valid JSON: {str(exc)[:200]}") from None
    if _depth(body) > MAX_DEPTH:
        raise too_deep
    return body


def retrain(auto: Automation, body: Any) -> dict[str, Any]:
    """The published-pipeline REST contract: optional {"ExperimentName": ...}, answers {"Id": ...}."""
    if body not in (None, "") and not isinstance(body, dict):
        raise InvalidInput('the body must be a JSON object such as {"ExperimentName": "bankmarketing"}, or empty')
    experiment = str((body or {}).get("ExperimentName", ""))
    job_id, created = request_training(auto, "http: /api/retrain", experiment)
    return {"Id": job_id, "status": "queued" if created else "already queued (requests collapse into one run)"}


def redeploy(auto: Automation, body: Any) -> dict[str, Any]:
    version = (body or {}).get("model_version") if isinstance(body, dict) else None
    if version is not None and not str(version).isdigit():
        raise InvalidInput(f'model_version must be a version number such as 3, not {version!r}')
    if version is not None:
        auto.registry.get(str(version))  # NotFound now rather than in the queue
    job, _ = auto.queue.put(Deploy(model_version=str(version or ""), reason="http: /api/redeploy"))
    return {"Id": job.job_id, "status": "queued"}


def rollback(auto: Automation) -> dict[str, Any]:
    job, _ = auto.queue.put(Rollback(reason="http: /api/rollback"))
    return {"Id": job.job_id, "status": "queued"}


def job_status(auto: Automation, job_id: str) -> dict[str, Any]:
    job = auto.queue.get(job_id)
    if job is None:
        raise NotFound(f"no job or run with id {job_id!r}; /api/status lists recent ones")
    return {"Id": job.job_id, "kind": job.kind, "status": job.status, "attempts": job.attempts, "created_at": job.created_at,
            "updated_at": job.updated_at, "error": job.error, "result": job.result}


def status(auto: Automation, next_schedule: str | None = None) -> dict[str, Any]:
    from shared.monitoring.alerts import pipeline_verdicts, status_view
    from shared.monitoring.availability import summary

    champion = auto.registry.alias(CHAMPION)
    try:
        serving, serving_error = auto.deployer.current(), None
    except BankopsError as exc:  # a bad state file: the status says which and what to do, instead of failing whole
        serving, serving_error = None, str(exc)
    recent = auto.queue.recent(10)
    dead, dead_total = auto.queue.dead_letters(DEAD_LETTERS_SHOWN)
    return {
        # provisional: a quick first model, served until the full-budget one replaces it (shared/automation/first_model.py)
        "champion": {"model_version": champion.version, "metrics": dict(champion.metrics), "dataset": champion.tags.get("dataset"),
                     "provisional": champion.tags.get("provisional") == "true"}
        if champion else None,
        "endpoint": {"serving_version": serving, "healthy": serving is not None,
                     "availability": summary(auto.settings.paths.logs), **({"error": serving_error} if serving_error else {})},
        "next_retrain": next_schedule,
        "schedule": auto.settings.retrain_schedule,
        "queue": auto.queue.counts(),
        "recent_jobs": [{"Id": j.job_id, "kind": j.kind, "status": j.status, "updated_at": j.updated_at,
                         "outcome": j.result.get("outcome"), "reason": j.result.get("reason") or j.result.get("gate"),
                         "error": j.error or None} for j in recent],
        "batch_runs": [{"Id": j.job_id, "status": j.status, "updated_at": j.updated_at, "error": j.error or None,
                        **{k: j.result.get(k) for k in ("outcome", "input", "output", "rows_read", "rows_scored", "rows_rejected",
                                                        "model_version", "input_sha256", "duration_s", "run_id")}}
                       for j in auto.queue.recent(10, kind="BatchArrived")],
        "dead_letters": [{"Id": j.job_id, "kind": j.kind, "updated_at": j.updated_at, "error": j.error[:500]} for j in dead],
        "dead_letters_total": dead_total,
        "alerts": status_view(auto.settings.paths.logs),
        "pipeline_rules": pipeline_verdicts(auto),  # retrain_failed, retrain_stuck, model_stale, data_stale, metric_out_of_range now
    }


def events(auto: Automation, body: Any) -> dict[str, Any]:
    """The Event Grid webhook: the validation handshake, or queue each event we act on.

    The whole batch is checked before anything is queued, then taken whole or not at all (one
    transaction): a 4xx leaves nothing behind, so Event Grid's redelivery (or dead-lettering) loses nothing.
    """
    if isinstance(body, list) and len(body) > MAX_EVENTS:
        raise PayloadTooLarge(f"the batch has {len(body)} events; at most {MAX_EVENTS} (Event Grid's maxEventsPerBatch)")
    parsed = eventgrid.parse(body)
    handshake = eventgrid.validation_response(parsed)
    if handshake is not None:
        return handshake
    ours, ignored = [], []
    for index, event in enumerate(parsed):
        try:
            found = eventgrid.to_message(event)
        except InvalidInput as exc:
            raise InvalidInput(f"event {index} (id {event.id[:100]!r}): {exc.message}; nothing in this batch was queued") from None
        if found is None:
            ignored.append(event.id)
        else:
            ours.append((event.id, found))
    taken = auto.queue.accept([found for _, found in ours])
    accepted = [event_id for (event_id, _), new in zip(ours, taken, strict=True) if new]
    ignored += [event_id for (event_id, _), new in zip(ours, taken, strict=True) if not new]
    return {"accepted": accepted, "ignored": ignored}
