"""A real incoming-webhook receiver on loopback (http.server in a thread) for the notification tests.

It stands in for a Teams or Slack incoming webhook: it takes a JSON POST and answers 200, or, as
told, fails (`fail_next` answers 500 that many times) or answers slowly (`delay_s`). It checks what
both services require of the body: a JSON object with a non-empty string `text`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    url: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    fail_next: int = 0
    delay_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def texts(self) -> list[str]:
        with self.lock:
            return [str(m["text"]) for m in self.messages]


@contextmanager
def webhook_receiver(path: str = "/webhook/secret-token-part") -> Iterator[Receiver]:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(min(length, 1 << 20))
            with receiver.lock:
                receiver.attempts += 1
                failing = receiver.fail_next > 0
                receiver.fail_next -= 1 if failing else 0
            time.sleep(receiver.delay_s)
            status = 500 if failing else 200
            if not failing:
                try:
                    message = json.loads(body)
                except ValueError:
                    message = None
                if self.path != path or not isinstance(message, dict) or not isinstance(message.get("text"), str) \
                        or not message["text"]:
                    status = 400
                else:
                    with receiver.lock:
                        receiver.messages.append(message)
            self.send_response(status)
            self.send_header("Content-Length", "1")
            self.end_headers()
            self.wfile.write(b"1")  # Slack and Teams answer "ok" / "1"

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}{path}")
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
