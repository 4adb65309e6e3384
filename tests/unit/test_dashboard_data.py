"""The dashboard's data document: time buckets, the series of the request log and probes, deploy and
rollback events from the work queue, pipeline runs joined with the registry, and the routes that serve
the page (no key, same-origin assets only) and the data (behind the function key)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.automation.control_app import create_control_app
from shared.automation.handlers import Automation
from shared.automation.messages import Deploy, RequestTraining, Rollback, RunCompleted
from shared.automation.work_queue import Job, WorkQueue
from shared.automation.worker import Worker
from shared.config import load_settings
from shared.errors import InvalidInput
from shared.monitoring import dashboard
from shared.monitoring.availability import AvailabilityProbe
from shared.monitoring.dashboard import Grid
from shared.monitoring.dashboard_page import ASSETS, asset
from shared.monitoring.request_log import RequestLog
from shared.ports import ModelVersion
from tests.automation_fakes import FakeDeployer, InMemoryDatastore, make_automation
from tests.fakes import InMemoryDatasetStore, InMemoryModelRegistry, InMemoryRunTracker

NOW = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
KEY = "test-function-key"


def at(seconds_ago: float, now: datetime = NOW) -> str:
    return (now - timedelta(seconds=seconds_ago)).isoformat(timespec="milliseconds")


def request(seconds_ago: float, status: int = 200, latency_ms: float = 10.0, route: str = "/score", records: int | None = None,
            yes: int | None = None, version: str | None = "2", now: datetime = NOW) -> dict[str, Any]:
    entry: dict[str, Any] = {"timestamp": at(seconds_ago, now), "request_id": "r", "method": "POST", "route": route, "status": status,
                             "latency_ms": latency_ms, "model_version": version, "records": records}
    if yes is not None:
        entry["predicted_yes"] = yes
    return entry


def job(kind: str, status: str, result: dict[str, Any], updated: str, payload: dict[str, Any] | None = None, error: str = "") -> Job:
    return Job(job_id=f"{kind}-{updated}", lane="control", kind=kind, status=status, attempts=1, created_at=updated,
               updated_at=updated, error=error, result=result, payload={"kind": kind, **(payload or {})})


def version(number: str, created: str, **metrics: float) -> ModelVersion:
    return ModelVersion(name="m", version=number, run_id=f"run{number}", created_at=created, metrics=metrics,
                        tags={"dataset": "bankmarketing:1"})


def test_the_grid_has_round_buckets_ending_at_a_boundary_after_now() -> None:
    grid = Grid.over(timedelta(hours=1), NOW)
    assert (grid.step_s, grid.count) == (60, 60)
    assert grid.end == datetime(2026, 3, 1, 12, 1, tzinfo=UTC)
    assert grid.index(at(0)) == 59 and grid.index(at(31)) == 58
    assert grid.index(at(3600)) is None and grid.index("not a time") is None
    assert Grid.over(timedelta(minutes=15), NOW).step_s == 15
    assert Grid.over(timedelta(days=1), NOW).step_s == 1800
    times = grid.times_ms()
    assert len(times) == 60 and times[1] - times[0] == 60_000 and times[0] == int(grid.start.timestamp() * 1000)


def test_series_count_outcomes_and_measure_score_latency_mix_availability_and_version_per_bucket() -> None:
    grid = Grid.over(timedelta(minutes=10), NOW, target=10)  # 60 s buckets; NOW is 30 s into the last one
    entries = [
        request(5, latency_ms=10, records=4, yes=1), request(6, latency_ms=20, records=2, yes=2),
        request(7, status=422, latency_ms=1), request(8, status=401, latency_ms=2), request(9, status=500, latency_ms=3),
        request(10, route="/", latency_ms=500, version="2"),  # the probe's health check: counted, not in /score latency
        request(70, latency_ms=40, records=3, version="1"),  # the bucket before, served by v1 (an old line without predicted_yes)
    ]
    probes = [{"timestamp": at(3), "up": True}, {"timestamp": at(4), "up": False}, {"timestamp": at(65), "up": True}]
    s = dashboard.traffic_series(entries, probes, grid)
    assert (s["requests_ok"][-1], s["client_errors"][-1], s["server_errors"][-1]) == (3, 2, 1)
    assert (s["requests_ok"][-2], s["client_errors"][-2], s["server_errors"][-2]) == (1, 0, 0)
    assert s["requests_ok"][:-2] == [0] * 8 and s["p50_ms"][:-2] == [None] * 8
    assert (s["p50_ms"][-1], s["p95_ms"][-1], s["p99_ms"][-1]) == (3, 20, 20)  # /score only: 1, 2, 3, 10, 20
    assert (s["yes"][-1], s["no"][-1]) == (3, 3)
    assert (s["yes"][-2], s["no"][-2]) == (0, 0)  # no predicted_yes recorded: left out, not guessed
    assert (s["availability_pct"][-1], s["availability_pct"][-2], s["availability_pct"][0]) == (50.0, 100.0, None)
    assert (s["served_version"][-1], s["served_version"][-2], s["served_version"][0]) == ("2", "1", None)


def test_the_prediction_mix_carries_the_holdout_range_of_the_served_version() -> None:
    served = version("2", at(900), predicted_yes_share_low=0.08, predicted_yes_share_high=0.14)
    mix = dashboard.prediction_mix([request(1, records=10, yes=1), request(2, records=10, yes=3), request(3, route="/stats")], served)
    assert mix == {"yes": 4, "no": 16, "yes_share": 0.2, "holdout_range": [0.08, 0.14], "holdout_version": "2"}
    assert dashboard.prediction_mix([], None) == {"yes": 0, "no": 0, "yes_share": None, "holdout_range": None, "holdout_version": None}


def test_deploys_and_rollbacks_come_from_the_queue_newest_first() -> None:
    jobs = [
        job("RunCompleted", "done", {"outcome": "deployed", "model_version": "2", "reason": "AUC better"}, "2026-03-01T11:00:00+00:00"),
        job("RunCompleted", "done", {"outcome": "kept_champion", "model_version": "3"}, "2026-03-01T11:10:00+00:00"),
        job("Deploy", "done", {"outcome": "rolled_back", "model_version": "2", "failed_version": "4"}, "2026-03-01T11:20:00+00:00"),
        job("Rollback", "done", {"outcome": "deployed", "model_version": "1", "reason": "rollback: http"}, "2026-03-01T11:30:00+00:00"),
        job("Rollback", "dead", {}, "2026-03-01T11:40:00+00:00", error="there is no previous version to roll back to"),
        job("DataArrived", "done", {"outcome": "registered"}, "2026-03-01T11:50:00+00:00"),
    ]
    events = dashboard.deploy_events(jobs)
    assert [(e["kind"], e["ok"], e["model_version"]) for e in events] == [
        ("rollback", False, None), ("rollback", True, "1"), ("rollback", True, "2"), ("deploy", True, "2")]
    assert events[2]["failed_version"] == "4" and events[3]["reason"] == "AUC better"
    assert events[0]["error"] == "there is no previous version to roll back to"
    assert events[3]["at_ms"] == int(datetime(2026, 3, 1, 11, tzinfo=UTC).timestamp() * 1000)


def test_pipeline_runs_join_training_jobs_with_registry_metrics_and_gate_decisions() -> None:
    versions = [version("1", "2026-03-01T09:00:00+00:00", AUC_weighted=0.93, accuracy=0.9),
                version("2", "2026-03-01T10:05:00+00:00", AUC_weighted=0.94, recall_yes=0.5, predicted_yes_share=0.1)]
    jobs = [
        job("RequestTraining", "done", {"outcome": "trained", "model_version": "2", "run_id": "p2", "dataset": "bankmarketing:2",
                                        "trials": 17}, "2026-03-01T10:00:00+00:00", {"reason": "timer"}),
        job("RunCompleted", "done", {"outcome": "deployed", "model_version": "2", "gate": "first model"}, "2026-03-01T10:06:00+00:00"),
        job("RequestTraining", "dead", {}, "2026-03-01T11:00:00+00:00", {"reason": "http: /api/retrain"}, error="MemoryError"),
    ]
    runs = dashboard.pipeline_runs(jobs, versions)
    assert [(r["status"], r["model_version"], r["reason"]) for r in runs] == [
        ("dead", None, "http: /api/retrain"), ("done", "2", "timer"), ("registered", "1", "registered outside the host")]
    assert runs[0]["error"] == "MemoryError" and runs[0]["metrics"] == {}
    assert runs[1]["metrics"] == {"AUC_weighted": 0.94, "recall_yes": 0.5}  # the headline metrics only
    assert runs[1]["gate"] == {"outcome": "deployed", "reason": "first model"}
    assert (runs[1]["trials"], runs[1]["dataset"], runs[1]["run_id"]) == (17, "bankmarketing:2", "p2")
    assert runs[2]["metrics"] == {"AUC_weighted": 0.93, "accuracy": 0.9} and runs[2]["gate"] is None
    assert len(dashboard.pipeline_runs(jobs, versions, limit=1)) == 1
    same_second = [version("1", "2026-03-01T09:00:00+00:00"), version("2", "2026-03-01T09:00:00+00:00")]
    assert [r["model_version"] for r in dashboard.pipeline_runs([], same_second)] == ["2", "1"]  # newest version first


@pytest.fixture
def auto(tmp_path: Path) -> Automation:
    registry = InMemoryModelRegistry()
    for auc in (0.93, 0.94):
        registry.register("model", run_id="r", metrics={"AUC_weighted": auc, "predicted_yes_share_low": 0.05,  # type: ignore[arg-type]
                                                         "predicted_yes_share_high": 0.2}, tags={"dataset": "bankmarketing:1"},
                          input_example=None)
    return make_automation(settings=load_settings(home=tmp_path / "home"), datasets=InMemoryDatasetStore(), registry=registry,
                           tracker=InMemoryRunTracker(), datastore=InMemoryDatastore(), deployer=FakeDeployer(),
                           queue=WorkQueue(tmp_path / "queue.db", retry_delay_s=0))


def with_history(auto: Automation, now: datetime) -> None:
    """Deploys through the real handlers and worker, a training job, request log lines and probes."""
    assert isinstance(auto.deployer, FakeDeployer)
    auto.queue.put(Deploy(model_version="1", reason="test"))
    auto.queue.put(Deploy(model_version="2", reason="test"))
    auto.queue.put(Rollback(reason="test"))
    Worker(auto, lanes=("control",)).drain(10)
    training, _ = auto.queue.put(RequestTraining(reason="timer"))
    auto.queue.claim("training")
    auto.queue.complete(training.job_id, {"outcome": "trained", "model_version": "2", "run_id": "p"})
    auto.queue.put(RunCompleted(run_id="p", model_version="2", dataset="bankmarketing:1"))
    logs = auto.settings.paths.logs
    log = RequestLog(logs)
    for entry in (request(5, records=2, yes=1, version="1", now=now), request(6, status=401, now=now), request(7, status=422, now=now)):
        log.write(entry)
    log.close()
    probe = AvailabilityProbe("http://127.0.0.1:9", logs, interval_s=30)
    probe.record({"timestamp": at(4, now), "up": True, "status": 200})
    probe.stop()


def test_the_document_brings_every_part_together(auto: Automation) -> None:
    now = datetime.now(UTC)
    with_history(auto, now)
    doc = dashboard.build(auto, timedelta(hours=1), now=now, next_schedule="2030-01-01T02:00:00+00:00")
    assert doc["problems"] == []
    assert doc["summary"]["requests"] == 3 and doc["summary"]["failed"] == 2 and doc["summary"]["records"] == 2
    assert sum(doc["series"]["requests_ok"]) == 1 and sum(doc["series"]["client_errors"]) == 2
    assert len(doc["series"]["t"]) == len(doc["series"]["p95_ms"]) == 60
    assert doc["prediction_mix"]["yes"] == 1 and doc["prediction_mix"]["holdout_range"] == [0.05, 0.2]
    assert doc["serving_version"] == "1" and doc["champion"] == "1"  # deployed 1, then 2, then rolled back to 1
    assert [(e["kind"], e["model_version"]) for e in doc["events"]] == [("rollback", "1"), ("deploy", "2"), ("deploy", "1")]
    assert [r["status"] for r in doc["runs"]] == ["done", "registered"]
    assert doc["availability"]["last_hour"]["probes"] == 1 and doc["next_retrain"] == "2030-01-01T02:00:00+00:00"
    assert [(v["version"], v["aliases"]) for v in doc["versions"]] == [("2", ["previous"]), ("1", ["champion"])]
    with pytest.raises(InvalidInput):
        dashboard.build(auto, timedelta(days=8))


def test_a_part_that_cannot_be_read_is_reported_not_fatal(auto: Automation) -> None:
    def broken() -> list[ModelVersion]:
        raise OSError("registry unreachable")

    auto.registry.list = broken  # type: ignore[method-assign]
    doc = dashboard.build(auto, timedelta(minutes=15))
    # the status part reads the registry too (the pipeline rules): each part says what it could not read
    assert "model registry: OSError: registry unreachable" in doc["problems"] and doc["runs"] == []
    assert all(p.endswith("OSError: registry unreachable") for p in doc["problems"]), doc["problems"]


def test_the_page_needs_no_key_the_data_does(auto: Automation) -> None:
    with_history(auto, datetime.now(UTC))
    client = TestClient(create_control_app(auto, key_ok=lambda key: key == KEY))
    page = client.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert client.get("/dashboard/dashboard.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/dashboard/dashboard.css").status_code == 200
    assert client.get("/dashboard/secrets.json").status_code == 404
    assert client.get("/api/dashboard").status_code == 401
    answer = client.get("/api/dashboard", params={"window": "15m", "code": KEY})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    assert answer.json()["window_s"] == 900 and answer.json()["summary"]["requests"] == 3
    assert client.get("/api/dashboard", params={"window": "soon"}, headers={"x-functions-key": KEY}).status_code == 422


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_the_assets_load_nothing_from_elsewhere(name: str) -> None:
    """No CDN: every URL in the page and its assets is on this origin (the SVG namespace is a name, not a load)."""
    text = asset(name).decode()
    assert re.findall(r"(?:https?:)?//[\w.-]+\.\w+", text.replace("http://www.w3.org/2000/svg", "")) == []
    assert "@import" not in text and "fonts.googleapis" not in text


def test_trends_show_each_metric_across_versions_with_its_range_and_the_runs_over_time(tmp_path: Path) -> None:
    from shared.monitoring.ranges import MetricRanges
    from shared.monitoring.trend_plot import save_trends

    versions = [version("1", "2026-03-01T09:00:00+00:00", AUC_weighted=0.95, recall_yes=0.50, log_loss=0.2),
                version("2", "2026-03-02T09:00:00+00:00", AUC_weighted=0.94, recall_yes=0.46, log_loss=0.25),
                version("3", "2026-03-03T09:00:00+00:00", AUC_weighted=0.93, recall_yes=0.44, log_loss=0.31)]
    ranges = MetricRanges.parse("AUC_weighted>=0.93,recall_yes>=0.45,log_loss<=0.30,cv_score>=0.9")
    trends = {t["metric"]: t for t in dashboard.metric_trends(versions, ranges)}
    assert [p["value"] for p in trends["recall_yes"]["points"]] == [0.50, 0.46, 0.44]  # oldest first: the decay shows
    assert (trends["recall_yes"]["low"], trends["log_loss"]["high"]) == (0.45, 0.30)
    assert trends["cv_score"] == {"metric": "cv_score", "low": 0.9, "high": None, "points": []}  # a range with no value yet
    assert "accuracy" not in trends  # no version recorded it and no range names it
    assert [p["version"] for p in dashboard.metric_trends(versions, ranges, limit=2)[0]["points"]] == ["2", "3"]

    started = "2026-03-01T09:58:00+00:00"
    jobs = [  # newest first, as WorkQueue.recent lists them
        job("RequestTraining", "dead", {}, "2026-03-02T10:00:00+00:00", {"reason": "timer"}, error="RuntimeError: out of memory"),
        job("RequestTraining", "done", {"outcome": "trained", "started_at": started, "trials": 17, "model_version": "1"},
            "2026-03-01T10:00:00+00:00", {"reason": "timer"}),
    ]
    runs = dashboard.run_trend(jobs, versions[:1])  # v1 is the trained run: not counted twice
    assert [(r["state"], r["duration_s"], r["trials"]) for r in runs] == [("succeeded", 120.0, 17), ("failed", None, None)]
    assert runs[0]["at_ms"] < runs[1]["at_ms"] and "out of memory" in runs[1]["error"]

    picture = save_trends({"metrics": list(trends.values()), "runs": runs}, tmp_path / "out" / "trends.png")
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 10_000
