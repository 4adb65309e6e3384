"""Availability: a probe calls `GET /` of the scoring service every N seconds and records up or down.

Results are JSON lines in `$BANKOPS_HOME/logs/availability.jsonl` (rotated like the request log);
`summary` gives the share of probes that were up over the last hour and day.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

import httpx
import orjson

from shared.monitoring.request_log import now_iso

log = logging.getLogger("bankops.monitoring")
FILE = "availability.jsonl"


def probe_once(url: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """One call to GET `url`/: up when it answers 200 within the timeout."""
    started = time.perf_counter()
    try:
        answer = httpx.get(f"{url}/", timeout=timeout_s)
        up, status, error = answer.status_code == 200, answer.status_code, None
    except httpx.HTTPError as exc:
        up, status, error = False, None, type(exc).__name__
    entry = {"timestamp": now_iso(), "up": up, "status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 3)}
    if error:
        entry["error"] = error
    return entry


class AvailabilityProbe:
    """A daemon thread probing the scoring service every `interval_s` seconds."""

    def __init__(self, url: str | Callable[[], str | None], logs: Path, interval_s: float) -> None:
        """`url` may be a callable answering None while there is no service to probe yet (not counted)."""
        self.url = url if callable(url) else (lambda: url)
        self.interval_s = interval_s
        logs.mkdir(parents=True, exist_ok=True)
        self.path = logs / FILE
        self._handler = RotatingFileHandler(self.path, maxBytes=5 * 1024 * 1024, backupCount=2, encoding="utf-8")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, entry: dict[str, Any]) -> None:
        self._handler.emit(logging.makeLogRecord({"msg": orjson.dumps(entry).decode(), "levelno": logging.INFO}))

    def run_once(self) -> dict[str, Any] | None:
        url = self.url()
        if url is None:
            return None
        entry = probe_once(url, timeout_s=min(5.0, self.interval_s))
        self.record(entry)
        return entry

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="availability-probe", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("availability probe failed")
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        self._handler.close()


def read_probes(logs: Path, since: datetime | None = None) -> list[dict[str, Any]]:
    cutoff = since.isoformat(timespec="milliseconds") if since else ""
    found: list[dict[str, Any]] = []
    for path in sorted(logs.glob(f"{FILE}*")) if logs.is_dir() else []:
        for line in path.read_bytes().splitlines():
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(entry, dict) and str(entry.get("timestamp", "")) >= cutoff:
                found.append(entry)
    found.sort(key=lambda e: str(e["timestamp"]))
    return found


def availability(probes: list[dict[str, Any]]) -> dict[str, Any]:
    up = sum(1 for p in probes if p.get("up"))
    return {"probes": len(probes), "up": up, "availability_pct": round(100.0 * up / len(probes), 2) if probes else None}


def summary(logs: Path, now: datetime | None = None) -> dict[str, Any]:
    """Availability over the last hour and the last day, and the latest probe."""
    now = now or datetime.now(UTC)
    day = read_probes(logs, now - timedelta(days=1))
    hour_cutoff = (now - timedelta(hours=1)).isoformat(timespec="milliseconds")
    hour = [p for p in day if str(p["timestamp"]) >= hour_cutoff]
    return {"last_hour": availability(hour), "last_day": availability(day), "last_probe": day[-1] if day else None}
