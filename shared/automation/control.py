"""The control-plane operations behind the HTTP routes, shared by the Azure Functions app and
the local host: each takes a parsed body and returns a JSON-ready answer (or raises a
BankopsError that the route maps to a status)."""

from __future__ import annotations

import json
from typing import Any

from shared.automation import eventgrid
from shared.automation.handlers import CHAMPION, Automation, accept_event, request_training
from shared.automation.messages import Deploy, Rollback
from shared.errors import InvalidInput, NotFound


def parse_body(raw: bytes) -> Any:
    """A request body as JSON; empty is None; anything else is a 422 naming the problem."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from exc


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
    serving = auto.deployer.current()
    recent = auto.queue.recent(10)
    return {
        "champion": {"model_version": champion.version, "metrics": dict(champion.metrics), "dataset": champion.tags.get("dataset")}
        if champion else None,
        "endpoint": {"serving_version": serving, "healthy": serving is not None,
                     "availability": summary(auto.settings.paths.logs)},
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
        "dead_letters": [{"Id": j.job_id, "kind": j.kind, "error": j.error} for j in auto.queue.recent(50) if j.status == "dead"],
        "alerts": status_view(auto.settings.paths.logs),
        "pipeline_rules": pipeline_verdicts(auto),  # retrain_failed, retrain_stuck, model_stale, data_stale, metric_out_of_range now
    }


def events(auto: Automation, body: Any) -> dict[str, Any]:
    """The Event Grid webhook: the validation handshake, or queue each event we act on."""
    parsed = eventgrid.parse(body)
    handshake = eventgrid.validation_response(parsed)
    if handshake is not None:
        return handshake
    accepted, ignored = [], []
    for event in parsed:
        found = eventgrid.to_message(event)
        if found is None:
            ignored.append(event.id)
            continue
        message, key = found
        (accepted if accept_event(auto, message, key) else ignored).append(event.id)
    return {"accepted": accepted, "ignored": ignored}
