"""Monitoring of the scoring service: one outermost ASGI middleware per worker.

Per request it takes two clock readings, counts the request in Prometheus and appends one JSON
line to the request log: no exporter set-up, no network, no body parsing beyond a byte count of
the labels in a successful /score answer. It is outermost (outside Starlette's error
middleware), so an unexpected failure is seen as the 500 the client got, with the same
`x-request-id` the service log names. `GET /metrics` is answered here, without a key (loopback).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.monitoring.metrics import CONTENT_TYPE, ScoringMetrics
from shared.monitoring.request_log import RequestLog, now_iso

if TYPE_CHECKING:
    from shared.serving.served import ServedModel

log = logging.getLogger("bankops.monitoring")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]
ROUTES = {"/", "/score", "/stats", "/swagger.json", "/docs", "/metrics"}


def route_of(path: str) -> str:
    if path in ROUTES:
        return path
    if path.startswith("/swagger-ui"):
        return "/swagger-ui"
    return "other"  # unknown paths (404s) share one label: no unbounded label values


def labels_in(body: bytes) -> tuple[int, int, str | None]:
    """(yes, no, model version) of a /score answer, counted on the bytes (no JSON decoding)."""
    end = body.find(b'"probabilities"')
    head = body[:end] if end > 0 else body
    version = None
    at = body.rfind(b'"model_version":"')
    if at >= 0:
        start = at + len(b'"model_version":"')
        version = body[start:body.find(b'"', start)].decode("utf-8", "replace")
    return head.count(b'"yes"'), head.count(b'"no"'), version


class RequestMonitor:
    """The outermost ASGI layer of a scoring worker."""

    def __init__(self, app: ASGIApp, *, metrics: ScoringMetrics, request_log: RequestLog,
                 key_name: Callable[[str | None], str], version: Callable[[], str | None]) -> None:
        self.app, self.metrics, self.request_log, self.key_name, self.version = app, metrics, request_log, key_name, version
        self.pid = os.getpid()
        self._children: dict[tuple[str, str, int], Any] = {}
        self._latency: dict[str, Any] = {}
        self._predictions: dict[str, Any] = {}  # the label children, looked up once (a series appears on its first count)

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == "/metrics":
            await self._metrics(send)
            return
        started = time.perf_counter()
        route = route_of(path)
        is_score = route == "/score"
        status = 500
        request_id: str | None = None
        body: bytes = b""

        async def watch(message: Message) -> None:
            nonlocal status, request_id, body
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                for name, value in headers:
                    if name == b"x-request-id":
                        request_id = value.decode("latin-1")
                if request_id is None:
                    request_id = uuid.uuid4().hex
                    headers.append((b"x-request-id", request_id.encode()))
                    message["headers"] = headers
            elif is_score and status == 200 and not body and message["type"] == "http.response.body":
                body = bytes(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self._record(scope, route, status, time.perf_counter() - started, request_id, body)

    def _record(self, scope: Scope, route: str, status: int, elapsed: float, request_id: str | None, body: bytes) -> None:
        try:
            method = scope.get("method", "GET")
            key = (route, method, status)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self.metrics.requests.labels(route, method, str(status))
            child.inc()
            latency = self._latency.get(route)
            if latency is None:
                latency = self._latency[route] = self.metrics.latency.labels(route)
            latency.observe(elapsed)
            records, version, yes = None, None, 0
            if body:
                yes, no, version = labels_in(body)
                records = yes + no
                self.metrics.records.inc(records)
                for label, n in (("yes", yes), ("no", no)):
                    if n:
                        child = self._predictions.get(label)
                        if child is None:
                            child = self._predictions[label] = self.metrics.predictions.labels(label)
                        child.inc(n)
            entry: dict[str, Any] = {"timestamp": now_iso(), "request_id": request_id or uuid.uuid4().hex, "method": method,
                                     "route": route, "status": status, "latency_ms": round(elapsed * 1000, 3),
                                     "model_version": version or self.version(), "records": records, "worker": self.pid}
            if records is not None:
                entry["predicted_yes"] = yes  # of `records`: the prediction mix the drift alert watches
            if route in ("/score", "/stats"):
                entry["key"] = self.key_name(_header(scope, b"authorization"))
            self.request_log.write(entry)
        except Exception:  # monitoring never fails a request
            log.exception("could not record request monitoring")

    async def _metrics(self, send: Callable[[Message], Awaitable[None]]) -> None:
        payload = self.metrics.exposition()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", CONTENT_TYPE.encode()), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


class ScoringMonitor:
    """Monitoring of one scoring worker, built before the worker's objects and handed to each where it is
    built: the loader (model load time and version), the stats (unseen categories) and the app (outermost layer)."""

    def __init__(self, logs: Path, metrics: ScoringMetrics | None = None, *, background_log: bool = False) -> None:
        """`background_log`: the request log is written by a thread of its own (`RequestLog`), as a worker does."""
        self.metrics = metrics or ScoringMetrics()
        self.request_log = RequestLog(logs, background=background_log)

    def close(self) -> None:
        """At shutdown: every queued request-log entry is written."""
        self.request_log.close()

    def count(self, records: int, unseen: Mapping[str, int] | None) -> None:
        """`WorkerStats.on_add`: the unseen categories the model reports, per field."""
        for name, n in (unseen or {}).items():
            self.metrics.unseen.labels(name).inc(n)

    def timed(self, loader: Callable[[str], ServedModel]) -> Callable[[str], ServedModel]:
        """`loader`, reporting each loaded version and how long it took to load, compile and warm."""

        def load(version: str) -> ServedModel:
            started = time.perf_counter()
            served = loader(version)
            self.metrics.served(str(served.version), time.perf_counter() - started)
            return served

        return load

    def wrap(self, app: ASGIApp, key_name: Callable[[str | None], str], version: Callable[[], str | None]) -> RequestMonitor:
        """`app` inside the request monitor (outside its error middleware: a failure is the 500 the client got)."""
        return RequestMonitor(app, metrics=self.metrics, request_log=self.request_log, key_name=key_name, version=version)
