"""The slow-client limits on a real uvicorn server on loopback (the protocol both services run)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from shared.serving.connection_limits import uvicorn_options

TIMEOUT_S = 0.5
CAP = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    app = Starlette(routes=[Route("/", lambda _request: PlainTextResponse("ok"))])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off",
                                          **uvicorn_options(TIMEOUT_S, CAP)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes; at most 5 s."""
    started, data = time.monotonic(), b""
    while chunk := sock.recv(4096):
        data += chunk
    return data, time.monotonic() - started


def test_a_client_that_never_finishes_its_headers_is_closed_with_408(url: str) -> None:
    sock = connect(url)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    data, waited = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408") and b"did not arrive within 0.5 s" in data
    assert waited < 4  # the socket timeout (5 s) would raise first without the deadline


def test_a_silent_connection_is_closed_and_a_keep_alive_request_that_stalls_too(url: str) -> None:
    silent = connect(url)
    assert read_until_closed(silent)[0].startswith(b"HTTP/1.1 408")
    sock = connect(url)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # the second request stalls in its headers
    assert read_until_closed(sock)[0].startswith(b"HTTP/1.1 408")


def test_a_client_trickling_headers_is_closed_by_the_deadline_not_by_each_byte(url: str) -> None:
    sock = connect(url)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    with pytest.raises(OSError):
        for _ in range(40):  # a byte every 0.1 s: at most 4 s
            sock.sendall(b"X-A: b\r\n")
            time.sleep(0.1)
    assert time.monotonic() - started < 4


def test_headers_over_the_size_cap_get_431(url: str) -> None:
    sock = connect(url)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 70_000)  # then waits, as a slow client does
    data, waited = read_until_closed(sock)
    assert waited < TIMEOUT_S, "refused by size, before the deadline"
    assert data.startswith(b"HTTP/1.1 431")


def test_connections_over_the_cap_are_closed_and_the_service_answers_once_they_go(url: str) -> None:
    held = [connect(url) for _ in range(CAP)]
    time.sleep(0.1)
    extra = connect(url)
    assert read_until_closed(extra)[0] == b""  # closed at once, nothing sent
    for sock in held:
        sock.close()
    time.sleep(0.1)
    assert httpx.get(url, timeout=5).text == "ok"
