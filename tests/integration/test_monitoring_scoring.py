"""Monitoring of a real scoring service (`bankops serve --workers 2` on loopback): known traffic moves
each Prometheus metric by the expected amount, a failed request shows as failed in the metrics, the
request log and `bankops monitor`, and no log ever holds a key."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.config import load_settings
from shared.monitoring.availability import AvailabilityProbe, summary
from shared.monitoring.request_log import read_entries
from tests.integration.scoring_fixtures import Service, endpoint_records, free_port, run_cli, start_service, trained_home
from tests.polling import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    home = tmp_path_factory.mktemp("monitoring") / "home"  # a copy: the forced failure breaks this service's keys file only
    shutil.copytree(trained_home(), home, ignore=shutil.ignore_patterns("serving", "keys", "logs", "*.log"))
    service = start_service(home, "--model-version", "2", workers=2)
    yield service
    service.stop()


def scrape(svc: Service) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = httpx.get(f"{svc.url}/metrics", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for s in family.samples:
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "pid"))
            samples[(s.name, labels)] = samples.get((s.name, labels), 0.0) + s.value
    return samples


def delta(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def request_log(svc: Service) -> list[dict]:
    return read_entries(load_settings(home=svc.home).paths.logs)


def force_failure(svc: Service) -> httpx.Response:
    """One real 500: the keys file is a folder for one request (a bad but readable file keeps the old keys), then put back."""
    path = svc.home / "keys" / "keys.json"
    original = path.read_bytes()
    headers = svc.headers()
    try:
        path.unlink()
        path.mkdir()
        return httpx.post(f"{svc.url}/score", json={"data": endpoint_records()}, headers=headers, timeout=30)
    finally:
        path.rmdir()
        path.write_bytes(original)
        path.chmod(0o600)


def test_known_traffic_moves_each_metric_by_the_expected_amount_and_the_failure_is_visible_everywhere(svc: Service) -> None:
    records = endpoint_records()
    unseen = [dict(records[0], job="astronaut"), records[1]]
    before = scrape(svc)

    ok = [svc.score({"data": records}) for _ in range(3)] + [svc.score({"data": unseen})]
    assert all(a.status_code == 200 for a in ok), [a.text for a in ok]
    no_key = httpx.post(f"{svc.url}/score", json={"data": records}, timeout=10)
    wrong_key = httpx.post(f"{svc.url}/score", json={"data": records}, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert no_key.status_code == wrong_key.status_code == 401
    invalid = [svc.score({"data": [dict(records[0], age="old")]}), svc.score({"nothing": 1})]
    assert [a.status_code for a in invalid] == [422, 422]
    failed = force_failure(svc)
    assert failed.status_code == 500, failed.text
    failed_id = failed.json()["request_id"]
    assert failed.headers["x-request-id"] == failed_id

    after = scrape(svc)
    requests = "bankops_scoring_requests_total"
    assert delta(before, after, requests, route="/score", method="POST", status="200") == 4
    assert delta(before, after, requests, route="/score", method="POST", status="401") == 2
    assert delta(before, after, requests, route="/score", method="POST", status="422") == 2
    assert delta(before, after, requests, route="/score", method="POST", status="500") == 1
    assert delta(before, after, "bankops_scoring_request_duration_seconds_count", route="/score") == 9
    assert delta(before, after, "bankops_scoring_records_total") == 8
    labels = [label for answer in ok for label in answer.json()["result"]]
    assert delta(before, after, "bankops_scoring_predictions_total", label="yes") == labels.count("yes")
    assert delta(before, after, "bankops_scoring_predictions_total", label="no") == labels.count("no")
    assert delta(before, after, "bankops_scoring_unseen_categories_total", field="job") == 1
    assert after[("bankops_scoring_model_info", (("version", "2"),))] == 2  # one per worker
    assert after[("bankops_scoring_model_load_seconds", (("version", "2"),))] > 0

    # the request log: every request, the failure under the id the client got, which key (never the key)
    entries = eventually(lambda: [e for e in request_log(svc) if e["request_id"] == failed_id], 10, "the failed request's log entry",
                         interval_s=0.1)
    assert entries and entries[0]["status"] == 500 and entries[0]["route"] == "/score"
    score_entries = [e for e in request_log(svc) if e["route"] == "/score"][-9:]
    assert sorted(e["status"] for e in score_entries) == [200, 200, 200, 200, 401, 401, 422, 422, 500]
    assert {e["key"] for e in score_entries if e["status"] == 200} == {"primary"}
    assert {e["key"] for e in score_entries if e["status"] == 401} == {"none", "invalid"}
    assert all(e["records"] == 2 and e["model_version"] == "2" for e in score_entries if e["status"] == 200)
    assert sum(e["predicted_yes"] for e in score_entries if e["status"] == 200) == labels.count("yes")  # the mix drift watches
    assert all(e["latency_ms"] > 0 and e["timestamp"] for e in score_entries)
    assert f"request id {failed_id}" in svc.log.read_text()  # the traceback in the service log, same id

    # bankops monitor: the four views
    shown = run_cli(svc.home, "monitor", "--window", "1h", "--json")
    assert shown.returncode == 0, shown.stderr
    views = json.loads(shown.stdout)
    assert views["failed_requests"]["count"] == 5  # as Application Insights counts them: 2 x 401, 2 x 422, 1 x 500
    assert views["failed_requests"]["server_errors_5xx"] == 1
    assert views["failed_requests"]["latest_server_errors"][0]["request_id"] == failed_id
    assert views["server_requests"]["by_status"]["401"] == 2 and views["server_requests"]["by_status"]["422"] == 2
    assert views["server_requests"]["records_scored"] == 8
    assert views["server_response_time"]["/score"]["count"] == 9
    assert 0 < views["server_response_time"]["all"]["p50_ms"] <= views["server_response_time"]["all"]["p99_ms"]
    table = run_cli(svc.home, "monitor", "--window", "15m")
    assert table.returncode == 0 and "failed requests 5" in table.stdout and "1 server errors (5xx)" in table.stdout
    assert f"request id {failed_id}" in table.stdout and "p95 ms" in table.stdout

    # bankops logs: the latest lines, the failure among them
    logs = run_cli(svc.home, "logs", "--tail", "5")
    assert logs.returncode == 0, logs.stderr
    assert f"id={failed_id}" in logs.stdout and " 500 POST /score" in logs.stdout
    assert len(logs.stdout.strip().splitlines()) == 5


def test_no_log_file_ever_contains_a_key(svc: Service) -> None:
    primary, secondary = svc.key("primary"), svc.key("secondary")
    assert svc.score({"data": endpoint_records()}, key="secondary").status_code == 200
    assert httpx.post(f"{svc.url}/score", json={"data": endpoint_records()}, timeout=10,
                      headers={"Authorization": f"Bearer {primary}x"}).status_code == 401
    force_failure(svc)
    time.sleep(0.3)
    logs = load_settings(home=svc.home).paths.logs
    files = [*logs.rglob("*"), svc.log]
    assert any(p.name.startswith("requests-") for p in files)
    for path in files:
        if path.is_file():
            text = path.read_bytes()
            assert primary.encode() not in text and secondary.encode() not in text, f"a key leaked into {path}"
    assert "secondary" in {e.get("key") for e in request_log(svc)}


def test_the_availability_probe_records_up_and_down(svc: Service, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    up = AvailabilityProbe(svc.url, logs, interval_s=0.2)
    down = AvailabilityProbe(f"http://127.0.0.1:{free_port()}", logs, interval_s=0.2)
    up.start()
    assert eventually(lambda: summary(logs)["last_hour"]["probes"] >= 3, 10, "three availability probes", interval_s=0.1)
    up.stop()
    assert down.run_once()["up"] is False  # type: ignore[index]
    down.stop()
    found = summary(logs)
    n = found["last_hour"]["probes"]
    assert found["last_hour"]["up"] == n - 1
    assert found["last_hour"]["availability_pct"] == pytest.approx(100 * (n - 1) / n, abs=0.01)
    assert found["last_day"] == found["last_hour"]
    assert found["last_probe"]["up"] is False
