"""Alert notifications: each firing and resolved event POSTed to `BANKOPS_ALERT_WEBHOOK_URL`.

The body is `{"text": ..., "rule": ..., ...}`, one shape both a Microsoft Teams and a Slack incoming
webhook accept: they show `text` (Markdown-ish: rule, state, value, threshold, what to look at, a
dashboard link) and ignore the other keys, which repeat those facts as fields (`rule`, `state`,
`value`, `threshold`, `timestamp`, `look_at`, `dashboard_url`) for a receiver that routes on them.
Delivery runs in its own daemon thread from a bounded backlog: the evaluator only enqueues, so a
slow or failing receiver never blocks it; when the backlog is full the oldest message is dropped
(and counted). Each message is retried with backoff (tenacity) on connection errors, 429 and 5xx.
The URL is a secret (it carries the webhook's token): it is never logged or put in an error, httpx's
own request log line for it is dropped, and the POST is not traced by OpenTelemetry (Application
Insights would keep its URL as a dependency).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from tenacity import RetryError, retry, retry_if_exception_type, stop_after_attempt, wait_exponential

log = logging.getLogger("bankops.alerts.notify")
BACKLOG = 100
RETRIED_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class _HideUrl(logging.Filter):
    """Drops httpx's `HTTP Request: POST <url> ...` lines for the webhook's URL."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def filter(self, record: logging.LogRecord) -> bool:
        return self.url not in record.getMessage()


@contextlib.contextmanager
def _untraced() -> Iterator[None]:
    try:
        from opentelemetry.instrumentation.utils import suppress_instrumentation
    except ImportError:  # no OpenTelemetry: nothing traces the call
        yield
        return
    with suppress_instrumentation():
        yield


class _Retryable(Exception):
    """A delivery worth trying again; its text names the failure, never the URL."""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return " to ".join(_fmt(v) for v in value)
    return "–" if value is None else str(value)


def message_text(event: dict[str, Any], dashboard_url: str | None = None) -> str:
    """The notification's text: what changed, the numbers, what to look at, where to see more."""
    firing = event.get("state") == "firing"
    head = f"{'🔴 bankops alert firing' if firing else '✅ bankops alert resolved'}: {event.get('rule')}"
    lines = [head, f"value {_fmt(event.get('value'))}, threshold {_fmt(event.get('threshold'))} "
                    f"(at {event.get('timestamp', '?')})", str(event.get("message", ""))[:1500]]
    if dashboard_url:
        lines.append(f"Dashboard: {dashboard_url}")
    return "\n\n".join(lines)


def message_body(event: dict[str, Any], dashboard_url: str | None = None) -> dict[str, Any]:
    """`text` (what Teams and Slack show) plus the same facts as fields, for a receiver that routes on them
    (both webhooks ignore keys they do not know)."""
    return {"text": message_text(event, dashboard_url), "rule": event.get("rule"), "state": event.get("state"),
            "value": event.get("value"), "threshold": event.get("threshold"), "timestamp": event.get("timestamp"),
            "look_at": str(event.get("message", ""))[:1500], "dashboard_url": dashboard_url}


class WebhookNotifier:
    """Deliver alert events to one incoming webhook, off the caller's thread."""

    def __init__(self, url: str, *, dashboard_url: str | None = None, backlog: int = BACKLOG, attempts: int = 4,
                 timeout_s: float = 10.0, backoff_s: float = 0.5, client: httpx.Client | None = None) -> None:
        self._url = url
        self.dashboard_url = dashboard_url
        self._backlog: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=backlog)
        self._client = client or httpx.Client(timeout=timeout_s, follow_redirects=False)
        self._hide = _HideUrl(url)
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).addFilter(self._hide)
        self.delivered = self.failed = self.dropped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._send: Callable[[dict[str, Any]], None] = retry(
            reraise=False, stop=stop_after_attempt(attempts), retry=retry_if_exception_type(_Retryable),
            wait=wait_exponential(multiplier=backoff_s, max=30))(self._post)

    def __repr__(self) -> str:  # never the URL
        return f"WebhookNotifier(dashboard_url={self.dashboard_url!r})"

    def notify(self, event: dict[str, Any]) -> None:
        """Queue one event; returns at once. A full backlog drops its oldest message."""
        while True:
            try:
                self._backlog.put_nowait(event)
                return
            except queue.Full:
                try:
                    self._backlog.get_nowait()
                    self.dropped += 1
                    log.warning("alert webhook backlog full: dropped the oldest message (%d dropped so far)", self.dropped)
                except queue.Empty:
                    pass

    def _post(self, body: dict[str, Any]) -> None:
        try:
            with _untraced():
                answer = self._client.post(self._url, json=body)
        except httpx.HTTPError as exc:  # the exception's text can hold the URL: keep only its kind
            raise _Retryable(type(exc).__name__) from None
        if answer.status_code in RETRIED_STATUS:
            raise _Retryable(f"HTTP {answer.status_code}")
        if answer.status_code >= 400:
            raise ValueError(f"HTTP {answer.status_code}")

    def deliver(self, event: dict[str, Any]) -> bool:
        """Send one event now, with retries; True when the receiver took it."""
        body = message_body(event, self.dashboard_url)
        try:
            self._send(body)
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            self.failed += 1
            log.error("alert webhook: could not deliver %s %s after retries: %s", event.get("rule"), event.get("state"), cause)
            return False
        except ValueError as exc:
            self.failed += 1
            log.error("alert webhook refused %s %s: %s (check the webhook URL setting)", event.get("rule"),
                      event.get("state"), exc)
            return False
        self.delivered += 1
        return True

    def _run(self) -> None:
        while True:
            event = self._backlog.get()
            if event is None:
                return
            try:
                self.deliver(event)
            except Exception:  # keep the thread alive whatever a delivery does
                log.exception("alert webhook delivery raised")

    def start(self) -> WebhookNotifier:
        self._thread = threading.Thread(target=self._run, name="alert-webhook", daemon=True)
        self._thread.start()
        return self

    def pending(self) -> int:
        return self._backlog.qsize()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (within `timeout_s`), then end the thread."""
        if self._thread is not None:
            with contextlib.suppress(queue.Full):
                self._backlog.put(None, timeout=timeout_s)
            self._thread.join(timeout_s)
        self._client.close()
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).removeFilter(self._hide)


def from_settings(settings: Any, dashboard_url: str | None = None) -> WebhookNotifier | None:
    """The notifier for `BANKOPS_ALERT_WEBHOOK_URL`, started; None when the setting is empty."""
    url = settings.alert_webhook_url.get_secret_value().strip() if settings.alert_webhook_url else ""
    return WebhookNotifier(url, dashboard_url=dashboard_url).start() if url else None
