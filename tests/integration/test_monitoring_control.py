"""The control plane's Prometheus metrics, fed by the real event handlers through `Automation.on_event`,
and the availability that `bankops status` shows."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from shared.automation import control
from shared.automation.control_app import create_control_app
from shared.automation.handlers import Automation, on_deploy, on_run_completed
from shared.automation.messages import Deploy, RunCompleted
from shared.bootstrap import build_automation
from shared.config import load_settings
from shared.monitoring.availability import AvailabilityProbe
from shared.monitoring.metrics import ControlMetrics
from tests.automation_fakes import FakeDeployer
from tests.integration.scoring_fixtures import trained_home

pytestmark = pytest.mark.integration
NEXT = datetime(2030, 1, 2, 2, 0, tzinfo=UTC)


@pytest.fixture
def metrics() -> ControlMetrics:
    return ControlMetrics()


@pytest.fixture
def auto(tmp_path_factory: pytest.TempPathFactory, metrics: ControlMetrics) -> Iterator[Automation]:
    home = tmp_path_factory.mktemp("control-monitoring") / "home"
    shutil.copytree(trained_home(), home, ignore=shutil.ignore_patterns("serving", "keys", "logs", "*.log"))
    yield build_automation(load_settings(home=home), deployer=FakeDeployer(), on_event=metrics.on_event)


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = client.get("/metrics")  # no function key: Prometheus scrapes it on loopback
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def test_events_of_the_real_handlers_move_the_control_plane_metrics(auto: Automation, metrics: ControlMetrics) -> None:
    client = TestClient(create_control_app(auto, key_ok=lambda _key: False, next_schedule=NEXT.isoformat, metrics=metrics))
    assert client.post("/api/rollback").status_code == 401  # the /api routes still want the key

    on_deploy(auto, Deploy(model_version="1", reason="test"))
    assert isinstance(auto.deployer, FakeDeployer)
    auto.deployer.broken_versions.add("2")
    on_deploy(auto, Deploy(model_version="2", reason="test"))  # its smoke test fails: rolled back to 1
    decision = on_run_completed(auto, RunCompleted(run_id="r", model_version="2", dataset="bankmarketing:1"))

    found = scrape(client)
    gate = "deploy" if decision["outcome"] != "kept_champion" else "keep"
    rollbacks = 1 + (gate == "deploy")  # a challenger the gate lets through is v2 again: its smoke test fails again
    assert found[("bankops_control_deploys_total", ())] == 1
    assert found[("bankops_control_rollbacks_total", ())] == rollbacks
    assert found[("bankops_control_gate_decisions_total", (("decision", gate),))] == 1
    assert found[("bankops_control_events_total", (("outcome", "ok"), ("type", "deploy")))] == 1
    assert found[("bankops_control_events_total", (("outcome", "ok"), ("type", "rollback")))] == rollbacks
    assert found[("bankops_control_events_total", (("outcome", gate), ("type", "gate")))] == 1
    assert found[("bankops_control_next_retrain_timestamp_seconds", ())] == NEXT.timestamp()

    metrics.on_event("pipeline_run", {"status": "completed", "model_version": "3"})
    assert scrape(client)[("bankops_control_pipeline_runs_total", (("status", "completed"),))] == 1


def test_status_shows_availability_over_the_last_hour_and_day(auto: Automation) -> None:
    logs = auto.settings.paths.logs
    probe = AvailabilityProbe("http://127.0.0.1:9", logs, interval_s=30)
    now = datetime.now(UTC)
    for ago, up in ((timedelta(hours=5), False), (timedelta(minutes=30), True), (timedelta(minutes=1), True)):
        probe.record({"timestamp": (now - ago).isoformat(timespec="milliseconds"), "up": up, "status": 200 if up else None})
    probe.stop()
    shown = control.status(auto)["endpoint"]["availability"]
    assert shown["last_hour"] == {"probes": 2, "up": 2, "availability_pct": 100.0}
    assert shown["last_day"] == {"probes": 3, "up": 2, "availability_pct": 66.67}
    assert shown["last_probe"]["up"] is True
