"""POST /score as a plain ASGI handler, in front of the FastAPI app.

A one-record request spent about half of its time in FastAPI's routing, dependency solving and
middleware stack, none of which /score uses (it reads its own headers and body). This handler
answers POST /score itself, with the same checks in the same order and the same answers as the
FastAPI route (`shared/serving/app.py`), and hands every other request to the app. The records are
parsed and validated from the bytes in one pass (`contract.quick_records`); a body that pass
refuses goes through the full path (`app.decode_records`), so every error is exactly the route's.
Bodies over `offload_bytes` take the full path only, in a thread, as the route does: both passes
hold the GIL, and twice over a large refused body would hold the event loop twice as long.
Nothing changes for monitoring: the request monitor wraps this handler.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool

from shared import schema
from shared.serving.contract import (
    NO_MODEL_MESSAGE,
    NOT_JSON_MESSAGE,
    UNAUTHORIZED_MESSAGE,
    ContractError,
    FieldProblem,
    Record,
    quick_records,
)
from shared.serving.keys import KeyChecker
from shared.serving.watcher import ModelSlot

log = logging.getLogger("bankops.serving")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
JSON_TYPE = b"application/json"
UNAUTHORIZED = orjson.dumps({"message": UNAUTHORIZED_MESSAGE})
NOT_JSON = orjson.dumps({"message": NOT_JSON_MESSAGE})
NO_MODEL = orjson.dumps({"message": NO_MODEL_MESSAGE})


class ClientGone(Exception):
    """The client disconnected before its body arrived: nothing to answer."""


class FastScore:
    """POST /score answered here; every other request goes to `app`."""

    def __init__(self, app: ASGIApp, slot: ModelSlot, keys: KeyChecker, *, max_records: int, max_body_bytes: int,
                 offload_bytes: int, offload_records: int,
                 decode: Callable[[bytes, int, tuple[str, ...]], Any]) -> None:
        self.app, self.slot, self.keys = app, slot, keys
        self.max_records, self.max_body_bytes = max_records, max_body_bytes
        self.offload_bytes, self.offload_records = offload_bytes, offload_records
        self.decode = decode  # the full path (orjson, then the contract's checks): exact errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/score" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            status, body, extra = await self._score(scope, receive)
        except ClientGone:
            return
        except Exception as exc:  # the route's handler for the unexpected: logged with an id, answered 500
            request_id = uuid.uuid4().hex
            log.error("request POST /score failed (request id %s)", request_id, exc_info=exc)
            status = 500
            body = orjson.dumps({"message": "internal error: the failure is logged under this request id",
                                 "request_id": request_id})
            extra = [(b"x-request-id", request_id.encode())]
        await send({"type": "http.response.start", "status": status,
                    "headers": [*extra, (b"content-length", str(len(body)).encode()), (b"content-type", JSON_TYPE)]})
        await send({"type": "http.response.body", "body": body})

    async def _score(self, scope: Scope, receive: Receive) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        authorization = content_type = length = None
        for name, value in scope["headers"]:
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif name == b"content-type" and content_type is None:
                content_type = value
            elif name == b"content-length" and length is None:
                length = value
        if not self.keys.check(authorization):
            return 401, UNAUTHORIZED, [(b"www-authenticate", b"Bearer")]
        if content_type is None or content_type.split(b";", 1)[0].strip().lower() != JSON_TYPE:
            return 415, NOT_JSON, []
        try:
            raw = await self._body(receive, length)
            current = self.slot.current
            columns = current.columns if current else schema.FEATURES
            if len(raw) > self.offload_bytes:  # the full path only: a second pass over a large refused body would hold the GIL twice
                records = await run_in_threadpool(self.decode, raw, self.max_records, columns)
            else:
                records = self._decode(raw, columns)
        except ContractError as exc:
            return exc.status, _error(exc.message, exc.problems), []
        served = current  # the version the records were checked for, even if a swap lands meanwhile
        if served is None:
            return 503, NO_MODEL, []
        if len(records) >= self.offload_records:
            scored = await run_in_threadpool(served.score, records)
        else:
            scored = served.score(records)
        self.slot.stats.add(len(records), scored.unseen)
        return 200, orjson.dumps({"result": scored.labels, "probabilities": scored.probabilities,
                                  "model_version": served.version}), []

    def _decode(self, raw: bytes, columns: tuple[str, ...]) -> list[Record]:
        records = quick_records(raw, self.max_records, columns)
        return records if records is not None else self.decode(raw, self.max_records, columns)

    async def _body(self, receive: Receive, length: bytes | None) -> bytes:
        limit = self.max_body_bytes
        too_large = f"the body is over the limit of {limit:,} bytes: split the request"
        if length is not None:
            declared = length.decode("latin-1")
            if not declared.isdigit():
                raise ContractError(400, "invalid Content-Length header")
            if int(declared) > limit:
                raise ContractError(413, too_large)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if length is None and size > limit:
                    raise ContractError(413, too_large)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)  # one chunk: no copy


def _error(message: str, problems: list[FieldProblem]) -> bytes:
    body: dict[str, Any] = {"message": message}
    if problems:
        body["errors"] = [p.as_dict() for p in problems]
    return orjson.dumps(body)
