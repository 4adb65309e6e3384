"""The local control plane: the function app's /api routes on FastAPI, for `bankops up`.

Auth is Azure Functions' function level: the key in `x-functions-key` or `?code=`, on every /api
route; /metrics (Prometheus on loopback) and the dashboard page (its data is /api/dashboard) need none.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from shared.automation import control
from shared.automation.handlers import Automation
from shared.errors import BankopsError, http_status
from shared.monitoring.dashboard_page import add_dashboard_routes
from shared.monitoring.metrics import CONTENT_TYPE, ControlMetrics

T = TypeVar("T")


def function_key_of(request: Request) -> str | None:
    return request.headers.get("x-functions-key") or request.query_params.get("code")


async def _body_bytes(request: Request) -> bytes:
    """The body, refused with a 413 as soon as it is over the limit (by its Content-Length or as it streams in)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit():
        control.check_size(int(declared))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        control.check_size(size)
        chunks.append(chunk)
    return b"".join(chunks)


def _off_loop(work: Callable[[], T]) -> Awaitable[T]:
    """Parsing and queue writes (SQLite waits for its lock) run in the threadpool: other requests go on meanwhile."""
    return run_in_threadpool(work)


def create_control_app(auto: Automation, *, key_ok: Callable[[str | None], bool],
                       next_schedule: Callable[[], str | None] = lambda: None, metrics: ControlMetrics | None = None) -> FastAPI:
    app = FastAPI(title="bankops control plane", version="1", docs_url=None, redoc_url=None)
    counters = metrics or ControlMetrics()

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Any]) -> Response:
        if request.url.path.startswith("/api/") and not key_ok(function_key_of(request)):
            return JSONResponse({"error": "missing or wrong function key: send it as x-functions-key or ?code="}, status_code=401)
        answer: Response = await call_next(request)
        return answer

    @app.exception_handler(BankopsError)
    async def bankops_error(_request: Request, exc: BankopsError) -> JSONResponse:
        return JSONResponse({"error": exc.message, "details": exc.details}, status_code=http_status(exc))

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        """Prometheus: events by type and outcome, pipeline runs, deploys, rollbacks, gate decisions, next retrain."""
        nxt = next_schedule()
        unix = datetime.fromisoformat(nxt).timestamp() if nxt else None
        return Response(counters.exposition(unix), media_type=CONTENT_TYPE)

    add_dashboard_routes(app, auto, next_schedule)  # GET /dashboard (page) and /api/dashboard (data)

    @app.post("/api/retrain", status_code=202)
    async def retrain(request: Request) -> dict[str, Any]:
        """Queue a training run (the published-pipeline REST contract)."""
        raw = await _body_bytes(request)
        return await _off_loop(lambda: control.retrain(auto, control.parse_body(raw)))

    @app.post("/api/redeploy", status_code=202)
    async def redeploy(request: Request) -> dict[str, Any]:
        """Deploy a model version (default: the champion)."""
        raw = await _body_bytes(request)
        return await _off_loop(lambda: control.redeploy(auto, control.parse_body(raw)))

    @app.post("/api/rollback", status_code=202)
    async def rollback() -> dict[str, Any]:
        """Serve the previous version again."""
        return await _off_loop(lambda: control.rollback(auto))

    @app.get("/api/status")
    async def status() -> dict[str, Any]:
        """Champion, endpoint health, recent jobs, next scheduled retrain."""
        return await _off_loop(lambda: control.status(auto, next_schedule()))

    @app.get("/api/runs/{job_id}")
    async def run(job_id: str) -> dict[str, Any]:
        """One job: its status, result and error."""
        return await _off_loop(lambda: control.job_status(auto, job_id))

    @app.options("/api/events")
    async def cloudevents_handshake(request: Request) -> Response:
        origin = request.headers.get("webhook-request-origin", "*")
        return Response(status_code=200, headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "120"})

    @app.post("/api/events")
    async def events(request: Request) -> dict[str, Any]:
        """Event Grid webhook: Event Grid schema or CloudEvents, single or batch."""
        raw = await _body_bytes(request)
        return await _off_loop(lambda: control.events(auto, control.parse_body(raw)))

    return app
