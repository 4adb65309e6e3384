"""With APPLICATIONINSIGHTS_CONNECTION_STRING set, the scoring service exports through Azure Monitor:
its exporter is pointed at a local HTTP sink here, and the sink receives the request telemetry."""

from __future__ import annotations

import gzip
import json
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.integration.scoring_fixtures import endpoint_records, free_port, start_service, trained_home

pytestmark = pytest.mark.integration


class Sink:
    """A tiny Application Insights ingestion endpoint: stores every envelope POSTed to it."""

    def __init__(self) -> None:
        self.envelopes: list[dict[str, Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.headers.get("content-encoding") == "gzip" or body[:2] == b"\x1f\x8b":
                    body = gzip.decompress(body)
                text = body.decode("utf-8")
                items = json.loads(text) if text.lstrip().startswith("[") else [json.loads(x) for x in text.splitlines() if x]
                sink.envelopes.extend(items)
                answer = json.dumps({"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def requests(self) -> list[dict[str, Any]]:
        return [e["data"]["baseData"] for e in self.envelopes if e.get("data", {}).get("baseType") == "RequestData"]


@pytest.fixture
def sink() -> Iterator[Sink]:
    found = Sink()
    yield found
    found.server.shutdown()


def test_the_azure_monitor_exporter_receives_request_telemetry(sink: Sink, tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("azure-monitor") / "home"
    shutil.copytree(trained_home(), home, ignore=shutil.ignore_patterns("serving", "keys", "logs", "*.log"))
    # The nil UUID as the key: no real Application Insights resource, only the local sink.
    connection = f"InstrumentationKey={uuid.UUID(int=0)};IngestionEndpoint=http://127.0.0.1:{sink.port}/"
    # A short batch delay instead of 5 s (the exporter flushes while the test waits); every trace kept (the
    # distro's default samples 5 traces a second, and the health polls of start-up spend them); no cloud
    # resource detection (it asks the Azure VM metadata service).
    env = {"APPLICATIONINSIGHTS_CONNECTION_STRING": connection, "OTEL_BSP_SCHEDULE_DELAY": "200",
           "OTEL_TRACES_SAMPLER": "always_on", "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel"}
    service = start_service(home, "--model-version", "2", env=env)
    try:
        assert service.score({"data": endpoint_records()}).status_code == 200
        assert httpx.post(f"{service.url}/score", json={"data": endpoint_records()}, timeout=10).status_code == 401
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len([r for r in sink.requests() if "/score" in r.get("url", "")]) < 2:
            time.sleep(0.2)
    finally:
        service.stop()  # shutting down flushes whatever is left
    scored = [r for r in sink.requests() if "/score" in r.get("url", "")]
    seen = sorted({e["name"] for e in sink.envelopes}), [(r.get("url"), r.get("responseCode")) for r in sink.requests()]
    assert sorted(str(r["responseCode"]) for r in scored) == ["200", "401"], (seen, service.log.read_text()[-3000:])
    assert {str(r["responseCode"]): r["success"] for r in scored} == {"200": True, "401": False}  # as `bankops monitor` counts
    assert all(r["duration"] for r in scored)
    assert service.key("primary") not in json.dumps(sink.envelopes)
