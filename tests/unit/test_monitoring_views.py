"""The computations behind `bankops monitor`, the request log and the label count of the middleware."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from shared.errors import InvalidInput
from shared.monitoring import monitor
from shared.monitoring.request_log import RequestLog, read_entries
from shared.monitoring.scoring import labels_in, route_of

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def entry(minutes_ago: float, status: int, latency_ms: float, route: str = "/score", records: int | None = None) -> dict:
    return {"timestamp": (NOW - timedelta(minutes=minutes_ago)).isoformat(timespec="milliseconds"), "request_id": f"id{minutes_ago}",
            "method": "POST", "route": route, "status": status, "latency_ms": latency_ms, "records": records, "model_version": "2"}


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800), ("1.5h", 5400)])
def test_windows_parse(text: str, seconds: float) -> None:
    assert monitor.parse_window(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "1", "h", "-1h", "0m", "1w"])
def test_bad_windows_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        monitor.parse_window(text)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (monitor.percentile(values, 50), monitor.percentile(values, 95), monitor.percentile(values, 99)) == (50, 95, 99)
    assert monitor.percentile([7.0], 99) == 7.0
    assert monitor.percentile([], 50) is None


def test_the_four_views_of_known_traffic() -> None:
    entries = [entry(1, 200, 2.0, records=2), entry(2, 200, 4.0, records=3), entry(3, 401, 0.5), entry(4, 422, 0.7),
               entry(5, 500, 9.0), entry(6, 200, 1.0, route="/")]
    probes = [{"timestamp": "t", "up": up} for up in (True, True, False, True)]
    views = monitor.views(entries, probes, timedelta(minutes=10))
    failed = views["failed_requests"]
    assert (failed["count"], failed["server_errors_5xx"], failed["client_errors_4xx"]) == (3, 1, 2)
    assert failed["share_pct"] == 50.0
    assert failed["by_route_status"] == {"POST /score 401": 1, "POST /score 422": 1, "POST /score 500": 1}
    assert [e["request_id"] for e in failed["latest_server_errors"]] == ["id5"]
    times = views["server_response_time"]
    assert times["/score"] == {"count": 5, "p50_ms": 2.0, "p95_ms": 9.0, "p99_ms": 9.0}
    assert times["all"]["count"] == 6 and times["/"]["p50_ms"] == 1.0
    requests = views["server_requests"]
    assert requests["count"] == 6 and requests["per_minute"] == 0.6 and requests["records_scored"] == 5
    assert requests["by_status"] == {"200": 3, "401": 1, "422": 1, "500": 1}
    assert requests["by_route"] == {"/": 1, "/score": 5}
    assert views["availability"] == {"probes": 4, "up": 3, "availability_pct": 75.0}


def test_no_traffic_gives_empty_views() -> None:
    views = monitor.views([], [], timedelta(hours=1))
    assert views["failed_requests"]["count"] == 0 and views["failed_requests"]["share_pct"] == 0.0
    assert views["server_response_time"]["all"]["p50_ms"] is None
    assert views["availability"] == {"probes": 0, "up": 0, "availability_pct": None}


@pytest.mark.parametrize("background", [False, True], ids=["written-by-the-caller", "written-by-its-thread"])
def test_the_request_log_rotates_and_reads_back_merged_in_time_order(tmp_path: Path, background: bool) -> None:
    """A scoring worker's log is written by a thread of its own: after close() every entry is there, in order,
    rotated like the caller-written one."""
    log = RequestLog(tmp_path, max_bytes=2000, backups=3, background=background)
    for i in range(40):
        log.write(entry(40 - i, 200, float(i)))
    log.close()
    assert len(list(tmp_path.glob("requests-*.jsonl*"))) > 1  # rotated
    back = read_entries(tmp_path)
    assert [e["latency_ms"] for e in back] == sorted(e["latency_ms"] for e in back)
    since = read_entries(tmp_path, NOW - timedelta(minutes=5))
    assert [e["latency_ms"] for e in since] == [35.0, 36.0, 37.0, 38.0, 39.0]
    (tmp_path / "requests-1.jsonl").write_bytes(b'{"cut in the mid')
    assert len(read_entries(tmp_path)) == len(back)


def test_the_compute_reads_the_window_only(tmp_path: Path) -> None:
    log = RequestLog(tmp_path)
    for e in (entry(90, 500, 1.0), entry(30, 500, 1.0), entry(1, 200, 1.0)):
        log.write(e)
    log.close()
    assert monitor.compute(tmp_path, timedelta(hours=1), now=NOW)["failed_requests"]["count"] == 1
    assert monitor.compute(tmp_path, timedelta(hours=2), now=NOW)["failed_requests"]["count"] == 2


def test_labels_are_counted_on_the_answer_bytes() -> None:
    body = orjson.dumps({"result": ["yes", "no", "no"], "probabilities": [0.9, 0.1, 0.2], "model_version": "12"})
    assert labels_in(body) == (1, 2, "12")
    assert labels_in(orjson.dumps({"result": [], "probabilities": [], "model_version": "3"})) == (0, 0, "3")


def test_routes_have_bounded_labels() -> None:
    assert [route_of(p) for p in ("/", "/score", "/swagger-ui/x.js", "/nope/123")] == ["/", "/score", "/swagger-ui", "other"]
