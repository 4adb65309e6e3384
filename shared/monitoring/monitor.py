"""The four views of `bankops monitor`, computed from the request log and the availability probes:
failed requests, server response time (p50/p95/p99), server requests, availability.

A request failed when its response code is 400 or more, as Application Insights marks request
telemetry unsuccessful (a 401 or 422 is a failed request there too); the view splits the client's
errors (4xx) from the service's (5xx).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.errors import InvalidInput
from shared.monitoring import availability
from shared.monitoring.request_log import read_entries

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window(text: str) -> timedelta:
    """'90s', '15m', '1h', '2d' -> a timedelta."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text or "")
    if not found or float(found.group(1)) <= 0:
        raise InvalidInput(f"window {text!r}: give a number and a unit s, m, h or d, such as 15m or 1h")
    return timedelta(seconds=float(found.group(1)) * UNITS[found.group(2)])


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile (q in 0..100) of `values`."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def failed(entry: dict[str, Any]) -> bool:
    return int(entry.get("status", 500)) >= 400


def views(entries: list[dict[str, Any]], probes: list[dict[str, Any]], window: timedelta) -> dict[str, Any]:
    """The four views over `entries` (request log lines) and `probes` (availability results)."""
    total = len(entries)
    fails = [e for e in entries if failed(e)]
    server_errors = sum(1 for e in fails if int(e.get("status", 500)) >= 500)
    by_route: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_route.setdefault(str(e.get("route")), []).append(e)

    def times(items: list[dict[str, Any]]) -> dict[str, Any]:
        latencies = [float(e["latency_ms"]) for e in items if "latency_ms" in e]
        return {"count": len(latencies), "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
                "p99_ms": percentile(latencies, 99)}

    minutes = window.total_seconds() / 60
    return {
        "window_s": window.total_seconds(),
        "failed_requests": {
            "count": len(fails), "share_pct": round(100 * len(fails) / total, 2) if total else 0.0,
            "server_errors_5xx": server_errors, "client_errors_4xx": len(fails) - server_errors,
            "by_route_status": dict(Counter(f"{e.get('method', '')} {e.get('route')} {e.get('status')}" for e in fails)),
            "latest_server_errors": [{k: e.get(k) for k in ("timestamp", "request_id", "route", "status", "model_version")}
                                     for e in fails if int(e.get("status", 500)) >= 500][-5:],
        },
        "server_response_time": {"all": times(entries), **{route: times(items) for route, items in sorted(by_route.items())}},
        "server_requests": {
            "count": total, "per_minute": round(total / minutes, 3) if minutes else None,
            "by_route": {route: len(items) for route, items in sorted(by_route.items())},
            "by_status": dict(sorted(Counter(str(e.get("status")) for e in entries).items())),
            "records_scored": sum(int(e.get("records") or 0) for e in entries),
        },
        "availability": availability.availability(probes),
    }


def compute(logs: Path, window: timedelta, now: datetime | None = None) -> dict[str, Any]:
    since = (now or datetime.now(UTC)) - window
    return views(read_entries(logs, since), availability.read_probes(logs, since), window)
