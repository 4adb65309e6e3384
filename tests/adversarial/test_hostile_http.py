"""Hostile bodies and slow connections against the real services on loopback, bounded in count and time.

The scoring service is a real `bankops serve` (a model trained once per session); the control plane
is the real app of `bankops up` on its real uvicorn server. Each attack is sent while another client
keeps asking `GET /`: nothing may answer 5xx, and the other client must keep getting answers.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from shared.automation.local_host import LocalHost
from shared.config import load_settings
from shared.serving.contract import EXAMPLE_RECORDS
from tests.integration.scoring_fixtures import Service, free_port, start_service, trained_home

pytestmark = pytest.mark.integration
HEADER_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 40
HEALTH_DEADLINE_S = 3.0  # the other client's patience per request: generous, far below the seconds a held loop costs


@pytest.fixture(scope="module")
def scoring() -> Iterator[Service]:
    service = start_service(trained_home(), workers=1, env={
        "BANKOPS_HTTP_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT_S), "BANKOPS_HTTP_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "BANKOPS_SCORING_MAX_RECORDS": "10000", "BANKOPS_SCORING_MAX_BODY_BYTES": str(16 * 1024 * 1024)})
    yield service
    service.stop()


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("control-home")
    settings = load_settings(home=home, http_header_timeout_s=HEADER_TIMEOUT_S, http_max_connections=MAX_CONNECTIONS)
    port = free_port()
    host = LocalHost(settings, control_port=port, scoring_port=free_port())
    host.control_thread.start()  # only the control plane: no training, no scoring child
    deadline = time.monotonic() + 30
    while not host.control.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host.control.started
    yield f"http://127.0.0.1:{port}"
    host.control.should_exit = True
    host.control_thread.join(10)


class Bystander:
    """Another client asking `url` over and over on fresh connections; records the slowest answer and any failure."""

    def __init__(self, url: str) -> None:
        self.url, self.slowest, self.answers = url, 0.0, 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status = httpx.get(self.url, timeout=HEALTH_DEADLINE_S).status_code
                if status >= 500:
                    self.failures.append(f"status {status}")
                self.answers += 1
            except httpx.HTTPError as exc:
                self.failures.append(type(exc).__name__)
            self.slowest = max(self.slowest, time.monotonic() - started)
            self._stop.wait(0.05)

    def __enter__(self) -> Bystander:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(HEALTH_DEADLINE_S + 2)
        assert self.answers > 0 and not self.failures, f"the other client was not answered: {self.failures[:5]}"


def hostile_bodies() -> dict[str, bytes]:
    wide = dict(EXAMPLE_RECORDS[0]) | {f"k{i}": 1 for i in range(1_300_000)}
    columns = list(EXAMPLE_RECORDS[0])
    return {
        "one record, 1.3M unknown keys (15 MiB)": orjson.dumps({"data": [wide]}),
        "nested 100,000 deep": b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "index of objects": orjson.dumps({"input_data": {"columns": columns, "data": [list(EXAMPLE_RECORDS[0].values())],
                                                         "index": [{}]}}),
        "a 1 MB field name": orjson.dumps({"data": [dict(EXAMPLE_RECORDS[0]) | {"x" * 1_000_000: 1}]}),
        "invalid UTF-8": b'{"data": [{"job": "\xff\xfe"}]}',
        "NaN and 1e400": b'{"data": [{"age": NaN, "duration": 1e400}]}',
        "10,000 records of 20 wrong fields": orjson.dumps({"data": [{k: [] for k in EXAMPLE_RECORDS[0]}] * 10_000}),
    }


def test_hostile_scoring_bodies_get_4xx_and_never_hold_other_clients(scoring: Service) -> None:
    with Bystander(f"{scoring.url}/") as other:
        for name, body in hostile_bodies().items():
            answer = httpx.post(f"{scoring.url}/score", content=body, timeout=60,
                                headers=scoring.headers() | {"Content-Type": "application/json"})
            assert 400 <= answer.status_code < 500, f"{name}: {answer.status_code}"
            assert len(answer.content) < 16_000, f"{name}: the answer copies the input"
    assert other.slowest < HEALTH_DEADLINE_S
    assert httpx.get(f"{scoring.url}/", timeout=5).status_code == 200


def hold_slow_connections(url: str, count: int) -> list[socket.socket]:
    host, port = url.removeprefix("http://").split(":")
    held = []
    for _ in range(count):
        sock = socket.create_connection((host, int(port)), timeout=HEADER_TIMEOUT_S + 5)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Never-Ends: ")
        held.append(sock)
    return held


def closed_within(sock: socket.socket, seconds: float) -> bool:
    started = time.monotonic()
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass
    return time.monotonic() - started < seconds


@pytest.mark.parametrize("service", ["scoring", "control"])
def test_slow_clients_are_closed_within_the_header_timeout_and_others_are_served(service: str,
                                                                                 request: pytest.FixtureRequest) -> None:
    base = request.getfixturevalue("scoring").url if service == "scoring" else request.getfixturevalue("control")
    health = f"{base}/" if service == "scoring" else f"{base}/api/health-of-nothing"  # any route: a 401/404 is an answer
    with Bystander(health):
        held = hold_slow_connections(base, 30)
        try:
            assert all(closed_within(sock, HEADER_TIMEOUT_S + 3) for sock in held)
        finally:
            for sock in held:
                sock.close()


def test_connections_over_the_cap_are_refused_and_the_service_recovers(scoring: Service) -> None:
    held = hold_slow_connections(scoring.url, MAX_CONNECTIONS + 10)
    try:
        time.sleep(0.3)
        refused_at_once = [sock for sock in held[MAX_CONNECTIONS:] if closed_within(sock, 0.5)]
        assert len(refused_at_once) >= 5, "connections over the cap were kept open"
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + HEADER_TIMEOUT_S + 5
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{scoring.url}/", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    pytest.fail("the service did not answer once the connections went")
