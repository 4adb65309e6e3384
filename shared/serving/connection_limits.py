"""Slow and greedy clients are cut off: a header deadline, a header size cap and a connection cap.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) but gives a connection that
never finishes its request headers all the time it wants, and accepts every connection: a few
hundred such connections hold as many open files until the client goes. This protocol (uvicorn's
httptools one, which `uvicorn[standard]` selects) answers 408 and closes a connection whose
headers are not complete `header_timeout_s` after it opened or after its request began, 431 when
the headers grow past `max_header_bytes`, and closes at once a connection over `max_connections`
of this process. Both services use it (`uvicorn_options`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

log = logging.getLogger("bankops.http")
MAX_HEADER_BYTES = 64 * 1024


def _close_with(transport: asyncio.Transport, status: bytes, message: str) -> None:
    body = message.encode()
    transport.write(b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
                    b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    transport.close()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size cap on request headers, and a connection cap."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None, *, header_timeout_s: float, max_connections: int,
                 max_header_bytes: int = MAX_HEADER_BYTES) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout_s, self.max_connections, self.max_header_bytes = header_timeout_s, max_connections, max_header_bytes
        self._header_timer: asyncio.TimerHandle | None = None
        self._awaiting_headers = True
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning("refused a connection: %d open, the cap is %d", len(self.connections) - 1, self.max_connections)
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # the parser ends the headers (on_headers_complete) inside this call when they are whole
        if self._awaiting_headers and not self.transport.is_closing():
            # still no end of headers: these bytes were all request line and headers (a body that arrives with its
            # headers in one read never counts, so a large POST is judged by the body limit, not this one)
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                self._disarm()
                _close_with(self.transport, b"431 Request Header Fields Too Large",
                            f"the request line and headers are over {self.max_header_bytes:,} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_headers = True
        self._arm()

    def on_headers_complete(self) -> None:
        self._awaiting_headers, self._header_bytes = False, 0
        self._disarm()
        super().on_headers_complete()

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._awaiting_headers and not self.transport.is_closing():
            _close_with(self.transport, b"408 Request Timeout",
                        f"the request headers did not arrive within {self.header_timeout_s:g} s")


def uvicorn_options(header_timeout_s: float, max_connections: int) -> dict[str, Any]:
    """The keyword arguments of `uvicorn.run` / `uvicorn.Config` that put these limits on a server."""
    protocol = functools.partial(GuardedHttpToolsProtocol, header_timeout_s=header_timeout_s, max_connections=max_connections)
    return {"http": protocol, "timeout_keep_alive": 5}
