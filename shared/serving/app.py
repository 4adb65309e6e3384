"""The scoring service: a FastAPI app answering the Azure-ML-compatible scoring contract.

The hot path reads the body once, decodes it with orjson, validates it with pydantic, encodes
records straight into a numpy matrix and answers with orjson: no pandas per request. Auth comes
first (one `stat` for key rotation, constant-time compare), then content type and size, then
the records. Anything unexpected is a 500 with a request id; the traceback stays in the log.
POST /score itself is answered in front of FastAPI by `fast_score.FastScore`, with these same
steps and answers (the route below serves it when Azure Monitor instruments the app).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp

from shared import schema
from shared.serving.contract import (
    ENVELOPE_KEYS,
    NO_MODEL_MESSAGE,
    NOT_JSON_MESSAGE,
    UNAUTHORIZED_MESSAGE,
    WIDTH,
    ContractError,
    FieldProblem,
    Record,
    parse_records,
)
from shared.serving.deployment import ServingState
from shared.serving.fast_score import FastScore
from shared.serving.json_budget import over_key_budget
from shared.serving.keys import KeyChecker
from shared.serving.openapi import ASSETS_URL, openapi_document, swagger_ui_assets, swagger_ui_html
from shared.serving.watcher import ModelSlot

if TYPE_CHECKING:
    from shared.monitoring.scoring import ScoringMonitor

log = logging.getLogger("bankops.serving")
OFFLOAD_RECORDS = 500  # larger batches are scored in a thread so the event loop keeps answering
OFFLOAD_BYTES = 64 * 1024  # larger bodies are decoded and validated in a thread, for the same reason
JSON = "application/json"


@dataclass
class ServiceConfig:
    max_records: int
    max_body_bytes: int


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def error_response(status: int, message: str, problems: list[FieldProblem] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"message": message}
    if problems:
        body["errors"] = [p.as_dict() for p in problems]
    return json_response(body, status, headers)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ContractError(400, "invalid Content-Length header")
        if int(declared) > limit:
            raise ContractError(413, f"the body is over the limit of {limit:,} bytes: split the request")
        return await request.body()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ContractError(413, f"the body is over the limit of {limit:,} bytes: split the request")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_records(raw: bytes, max_records: int, columns: Sequence[str] = schema.FEATURES) -> list[Record]:
    """The validated records of a raw body; a body with more keys than `max_records` records can hold
    is refused before it is decoded (decoding builds every key: seconds and hundreds of MB)."""
    budget = max_records * WIDTH + ENVELOPE_KEYS
    keys = over_key_budget(raw, budget)
    if keys is not None:
        if raw.count(b"{") - 1 > max_records:  # objects (an upper bound) besides the envelope: too many records
            raise ContractError(413, f"more than {max_records} records in one request: split the request")
        raise ContractError(422, f"the body holds {keys:,} or more fields, more than {max_records:,} records of {WIDTH} features "
                            "can: remove the unknown fields")
    try:
        decoded = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ContractError(422, "the body is not valid JSON") from None
    return parse_records(decoded, max_records, columns)


def _is_json(content_type: str | None) -> bool:
    return bool(content_type) and content_type.split(";", 1)[0].strip().lower() == JSON  # type: ignore[union-attr]


def create_app(slot: ModelSlot, keys: KeyChecker, config: ServiceConfig, *,
               on_startup: Callable[[], None] | None = None, on_shutdown: Callable[[], None] | None = None,
               state: ServingState | None = None, monitor: ScoringMonitor | None = None) -> ASGIApp:
    """The app for one worker; `slot` holds the model it serves, `keys` checks bearer keys.

    With `monitor` the app is returned inside it (request log, GET /metrics, OpenTelemetry request spans:
    see shared/monitoring/scoring.py); the slot's loader and stats get their monitoring hooks where they are built.
    """
    stats = slot.stats

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if on_startup:
            on_startup()
        try:
            yield
        finally:
            if on_shutdown:
                on_shutdown()

    app = FastAPI(title="bankops scoring", lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
    documents: dict[tuple[str, ...], bytes] = {}  # by the served model's columns: the document asks for what it uses

    def document(columns: tuple[str, ...]) -> bytes:
        if columns not in documents:
            documents[columns] = orjson.dumps(openapi_document(config.max_records, columns=columns))
        return documents[columns]

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        request_id = uuid.uuid4().hex
        log.error("request %s %s failed (request id %s)", request.method, request.url.path, request_id, exc_info=exc)
        body = {"message": "internal error: the failure is logged under this request id", "request_id": request_id}
        return json_response(body, 500, {"x-request-id": request_id})

    @app.get("/")
    async def health() -> Response:
        served = slot.current
        if served is None:
            return error_response(503, NO_MODEL_MESSAGE)
        return json_response({"status": "Healthy", "model_version": served.version})

    @app.post("/score")
    async def score(request: Request) -> Response:
        if not keys.check(request.headers.get("authorization")):
            return error_response(401, UNAUTHORIZED_MESSAGE,
                                  headers={"www-authenticate": "Bearer"})
        if not _is_json(request.headers.get("content-type")):
            return error_response(415, NOT_JSON_MESSAGE)
        try:
            raw = await _read_body(request, config.max_body_bytes)
            current = slot.current
            columns = current.columns if current else schema.FEATURES
            if len(raw) > OFFLOAD_BYTES:
                records = await run_in_threadpool(decode_records, raw, config.max_records, columns)
            else:
                records = decode_records(raw, config.max_records, columns)
        except ContractError as exc:
            return error_response(exc.status, exc.message, exc.problems)
        served = current  # the version the records were checked for, even if a swap lands meanwhile
        if served is None:
            return error_response(503, NO_MODEL_MESSAGE)
        if len(records) >= OFFLOAD_RECORDS:
            scored = await run_in_threadpool(served.score, records)
        else:
            scored = served.score(records)
        stats.add(len(records), scored.unseen)
        return json_response({"result": scored.labels, "probabilities": scored.probabilities, "model_version": served.version})

    @app.get("/stats")
    async def service_stats(request: Request) -> Response:
        if not keys.check(request.headers.get("authorization")):
            return error_response(401, UNAUTHORIZED_MESSAGE,
                                  headers={"www-authenticate": "Bearer"})
        slot.report()
        reports = state.reports() if state else []
        unseen: dict[str, int] = {}
        for r in reports:
            for name, n in r.unseen_categories.items():
                unseen[name] = unseen.get(name, 0) + n
        return json_response({
            "model_version": slot.current.version if slot.current else None,
            "requests": sum(r.requests for r in reports), "records": sum(r.records for r in reports),
            "unseen_categories": unseen,
            "workers": [{"pid": r.pid, "model_version": r.model_version, "error": r.error, "requests": r.requests}
                        for r in reports],
        })

    @app.get("/swagger.json", include_in_schema=False)
    async def swagger() -> Response:
        served = slot.current
        return Response(document(served.columns if served else schema.FEATURES), media_type=JSON)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(swagger_ui_html("/swagger.json"))

    app.mount(ASSETS_URL, StaticFiles(directory=swagger_ui_assets()), name="swagger-ui")
    from shared.monitoring import telemetry

    front: ASGIApp = app
    if not telemetry.azure_enabled():  # with Azure Monitor, /score goes through the instrumented app (its request spans)
        # POST /score answered without FastAPI's routing and middleware (same checks and answers): see fast_score.py
        front = FastScore(app, slot, keys, max_records=config.max_records, max_body_bytes=config.max_body_bytes,
                          offload_bytes=OFFLOAD_BYTES, offload_records=OFFLOAD_RECORDS, decode=decode_records)
    if monitor is None:
        return front
    telemetry.instrument_app(app)  # a no-op unless Azure Monitor is configured
    return monitor.wrap(front, keys.key_name, version=lambda: slot.current.version if slot.current is not None else None)
