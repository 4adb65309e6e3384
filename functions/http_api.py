"""HTTP routes (function-level auth): retrain, redeploy, rollback, status, runs, the Event Grid webhook."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import azure.functions as func

from functions.runtime import automation
from shared.automation import control
from shared.errors import BankopsError, http_status

bp = func.Blueprint()


def _body(req: func.HttpRequest) -> Any:
    return control.parse_body(req.get_body())


def _answer(work: Callable[[], dict[str, Any]], status: int = 200) -> func.HttpResponse:
    try:
        return func.HttpResponse(json.dumps(work()), status_code=status, mimetype="application/json")
    except BankopsError as exc:
        body = json.dumps({"error": exc.message, "details": exc.details})
        return func.HttpResponse(body, status_code=http_status(exc), mimetype="application/json")


@bp.route(route="retrain", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def retrain(req: func.HttpRequest) -> func.HttpResponse:
    """Queue a training run; answers {"Id": ...} like a published pipeline endpoint."""
    return _answer(lambda: control.retrain(automation(), _body(req)), 202)


@bp.route(route="redeploy", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def redeploy(req: func.HttpRequest) -> func.HttpResponse:
    """Deploy {"model_version": N} (default: the champion)."""
    return _answer(lambda: control.redeploy(automation(), _body(req)), 202)


@bp.route(route="rollback", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def rollback(req: func.HttpRequest) -> func.HttpResponse:
    """Serve the previous model version again."""
    return _answer(lambda: control.rollback(automation()), 202)


@bp.route(route="status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def status(req: func.HttpRequest) -> func.HttpResponse:
    """Champion, endpoint health, recent jobs and the retrain schedule."""
    return _answer(lambda: control.status(automation()))


@bp.route(route="runs/{job_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def run(req: func.HttpRequest) -> func.HttpResponse:
    """One job's status, result and error."""
    return _answer(lambda: control.job_status(automation(), req.route_params["job_id"]))


@bp.route(route="events", methods=["POST", "OPTIONS"], auth_level=func.AuthLevel.FUNCTION)
def events(req: func.HttpRequest) -> func.HttpResponse:
    """Event Grid webhook: validation handshake (both schemas) and event batches."""
    if req.method == "OPTIONS":
        origin = req.headers.get("WebHook-Request-Origin", "*")
        return func.HttpResponse(status_code=200, headers={"WebHook-Allowed-Origin": origin})
    return _answer(lambda: control.events(automation(), _body(req)))
