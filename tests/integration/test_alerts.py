"""Alerts on real files: known traffic through a real scoring service (`bankops serve` on loopback)
writes the real request log, the evaluator runs once, and the real control app's GET /api/status,
its /metrics, the event file, the log and `bankops monitor` all show the firing alerts. The drift
rule judges the served version against the holdout range its training run registered."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from shared import schema
from shared.automation.control_app import create_control_app
from shared.automation.handlers import Automation
from shared.bootstrap import build_automation
from shared.config import load_settings
from shared.monitoring.alerts import AlertEvaluator, AlertRules, AlertState, read_events, registry_baselines
from shared.monitoring.metrics import ControlMetrics
from shared.monitoring.request_log import read_entries
from tests import samples
from tests.automation_fakes import FakeDeployer
from tests.integration.scoring_fixtures import Service, endpoint_records, run_cli, start_service, trained_home

pytestmark = pytest.mark.integration
KEY = "function-key-for-the-test"


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    home = tmp_path_factory.mktemp("alerts") / "home"
    shutil.copytree(trained_home(), home, ignore=shutil.ignore_patterns("serving", "keys", "logs", "*.log"))
    service = start_service(home, "--model-version", "1")  # v1: trained by the real pipeline, its range registered
    yield service
    service.stop()


def typed(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row (strings) as the scoring payload wants it (JSON numbers for numeric fields)."""
    kinds = {"integer": int, "float": float, "categorical": str}
    return {f: kinds[schema.kind_of(f)](row[f]) for f in schema.FEATURES}


def scored(svc: Service, n: int) -> list[dict[str, Any]]:
    """Wait until the request log holds `n` /score entries (the line is written as the answer goes out)."""
    logs = load_settings(home=svc.home).paths.logs
    for _ in range(100):
        found = [e for e in read_entries(logs) if e.get("route") == "/score"]
        if len(found) >= n:
            return found
        httpx.get(f"{svc.url}/", timeout=5)  # something to wait on
    raise AssertionError(f"the request log has fewer than {n} /score entries")


def by_rule(states: list[AlertState]) -> dict[str, str]:
    return {s.rule: s.state for s in states}


def test_known_traffic_fires_the_failure_and_drift_alerts_everywhere(svc: Service, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(home=svc.home, alert_min_requests=4, alert_drift_min_records=200)
    auto: Automation = dataclasses.replace(build_automation(settings), deployer=FakeDeployer())
    v1 = auto.registry.get("1").metrics
    assert v1["predicted_yes_share_low"] <= v1["predicted_yes_share"] <= v1["predicted_yes_share_high"] < 0.5
    metrics = ControlMetrics()
    evaluator = AlertEvaluator(AlertRules.from_settings(settings), settings.paths.logs, registry_baselines(auto.registry),
                               interval_s=60, counter=metrics.alerts)
    client = TestClient(create_control_app(auto, key_ok=lambda key: key == KEY, metrics=metrics))

    # clients like the training data: 300 real records in three requests, and the two examples
    rows = [typed(r) for r in samples.stratified_sample(300, seed=11).to_dict(orient="records")]
    said_yes: list[dict[str, Any]] = []
    for start in range(0, 300, 100):
        answer = svc.score({"data": rows[start:start + 100]})
        assert answer.status_code == 200
        said_yes += [row for row, label in zip(rows[start:start + 100], answer.json()["result"], strict=True) if label == "yes"]
    assert svc.score({"data": endpoint_records()}).status_code == 200
    entries = scored(svc, 4)
    assert sum(e["records"] for e in entries) == 302 and all("predicted_yes" in e for e in entries)
    quiet = by_rule(evaluator.run_once())
    assert quiet == {"failure_rate": "ok", "latency_p95": "ok", "availability": "insufficient_data", "prediction_drift": "ok"}
    assert read_events(settings.paths.logs) == []

    # then six callers without a key, and 300 records the model calls "yes" (clients it said yes to above)
    for _ in range(6):
        assert httpx.post(f"{svc.url}/score", json={"data": endpoint_records()}, timeout=10).status_code == 401
    assert said_yes
    yes = (said_yes * 100)[:100]
    for _ in range(3):
        answer = svc.score({"data": yes})
        assert answer.status_code == 200 and set(answer.json()["result"]) == {"yes"}
    scored(svc, 13)
    with caplog.at_level(logging.WARNING, logger="bankops.alerts"):
        states = by_rule(evaluator.run_once())
    assert states == {"failure_rate": "firing", "latency_p95": "ok", "availability": "insufficient_data", "prediction_drift": "firing"}

    # the event file and the log line
    events = {e["rule"]: e for e in read_events(settings.paths.logs)}
    assert set(events) == {"failure_rate", "prediction_drift"} and {e["state"] for e in events.values()} == {"firing"}
    assert events["failure_rate"]["value"] == pytest.approx(6 / 13)
    assert "6 client errors" in events["failure_rate"]["message"]
    assert events["prediction_drift"]["threshold"] == [v1["predicted_yes_share_low"], v1["predicted_yes_share_high"]]
    assert events["prediction_drift"]["value"] > 0.5 and "v1 predicted \"yes\"" in events["prediction_drift"]["message"]
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(line.startswith("alert firing: prediction_drift: v1") for line in lines)
    assert any(line.startswith("alert firing: failure_rate:") for line in lines)

    # GET /api/status of the real control app (with the function key), and its /metrics
    assert client.get("/api/status").status_code == 401
    alerts = client.get("/api/status", headers={"x-functions-key": KEY}).json()["alerts"]
    assert {a["rule"] for a in alerts["firing"]} == {"failure_rate", "prediction_drift"}
    assert [e["state"] for e in alerts["recent"]] == ["firing", "firing"]
    assert {r["rule"]: r["state"] for r in alerts["last_check"]["rules"]} == states
    samples_ = {(s.name, tuple(sorted(s.labels.items()))): s.value
                for f in text_string_to_metric_families(client.get("/metrics").text) for s in f.samples}
    assert samples_[("bankops_alerts_total", (("rule", "prediction_drift"), ("state", "firing")))] == 1
    assert samples_[("bankops_alerts_total", (("rule", "failure_rate"), ("state", "firing")))] == 1

    # `bankops monitor` names them too
    shown = run_cli(svc.home, "monitor", "--window", "15m")
    assert shown.returncode == 0, shown.stderr
    assert "alerts firing 2" in shown.stdout and "prediction_drift:" in shown.stdout
