"""Prometheus metrics of the scoring service and of the control plane.

The scoring service runs several uvicorn worker processes, so its metrics use prometheus_client's
multiprocess mode: `prepare_multiprocess_dir` (called once when the server starts, before any
worker imports prometheus_client) points PROMETHEUS_MULTIPROC_DIR at an empty folder under
`$BANKOPS_HOME/serving/metrics`, and `GET /metrics` aggregates every worker's files. Without that
variable (one process, e.g. an app built in a test) the metrics live in a private registry.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def prepare_multiprocess_dir(serving_folder: Path) -> Path:
    """An empty metrics folder for this server's workers (stale files of a previous run removed)."""
    folder = serving_folder / "metrics"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


class ScoringMetrics:
    """What the scoring middleware counts; `exposition()` is the body of GET /metrics."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = None if self.multiprocess else CollectorRegistry()
        r: Any = {"registry": self.registry}
        self.requests = Counter("bankops_scoring_requests", "Requests by route, method and status code",
                                ["route", "method", "status"], **r)
        self.latency = Histogram("bankops_scoring_request_duration_seconds", "Server response time by route",
                                 ["route"], buckets=LATENCY_BUCKETS, **r)
        self.records = Counter("bankops_scoring_records", "Records scored", **r)
        self.predictions = Counter("bankops_scoring_predictions", "Predictions by class", ["label"], **r)
        self.unseen = Counter("bankops_scoring_unseen_categories", "Category values never seen in training, by field",
                              ["field"], **r)
        gauge_mode: Any = {"multiprocess_mode": "liveall"} if self.multiprocess else {}
        self.model_info = Gauge("bankops_scoring_model_info", "The model version each worker serves (1)", ["version"],
                                **gauge_mode, **r)
        self.model_load = Gauge("bankops_scoring_model_load_seconds", "Time to load, compile and warm the served version",
                                ["version"], **gauge_mode, **r)
        self._version: str | None = None

    def served(self, version: str, load_seconds: float) -> None:
        if self._version is not None and self._version != version:
            self.model_info.labels(self._version).set(0)
        self._version = version
        self.model_info.labels(version).set(1)
        self.model_load.labels(version).set(load_seconds)

    def exposition(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest

        if self.registry is not None:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # prometheus_client: no annotations
        return generate_latest(registry)


class ControlMetrics:
    """The control plane's counters, fed by `Automation.on_event` (one process: a private registry)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry()
        r: Any = {"registry": self.registry}
        self.events = Counter("bankops_control_events", "Automation events by type and outcome", ["type", "outcome"], **r)
        self.pipeline_runs = Counter("bankops_control_pipeline_runs", "Training pipeline runs by status", ["status"], **r)
        self.deploys = Counter("bankops_control_deploys", "Model versions deployed", **r)
        self.rollbacks = Counter("bankops_control_rollbacks", "Rollbacks after a failed smoke test", **r)
        self.gate = Counter("bankops_control_gate_decisions", "Champion/challenger gate decisions", ["decision"], **r)
        self.next_schedule = Gauge("bankops_control_next_retrain_timestamp_seconds",
                                   "Unix time of the next scheduled retrain (0: none)", **r)
        self.alerts = Counter("bankops_alerts", "Alert transitions by rule and state (firing, resolved)", ["rule", "state"], **r)
        self.alert_firing = Gauge("bankops_alert_firing", "1 while an alert rule fires, 0 otherwise (at the last check)",
                                  ["rule"], **r)

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        """The `Automation.on_event` callback (handed to `build_automation`): count each event; never raises
        into a handler."""
        try:
            self._count(kind, data)
        except Exception:  # counting never fails a handler
            logging.getLogger("bankops.monitoring").exception("could not count event %s", kind)

    def _count(self, kind: str, data: dict[str, Any]) -> None:
        outcome = "ok"
        if kind == "pipeline_run":
            outcome = str(data.get("status", "unknown"))
            self.pipeline_runs.labels(outcome).inc()
        elif kind == "deploy":
            self.deploys.inc()
        elif kind == "rollback":
            self.rollbacks.inc()
        elif kind == "gate":
            outcome = "deploy" if data.get("deploy") else "keep"
            self.gate.labels(outcome).inc()
        elif kind == "data_registered":
            outcome = "new" if data.get("created") else "known"
        self.events.labels(kind, outcome).inc()

    def exposition(self, next_schedule_unix: float | None = None) -> bytes:
        from prometheus_client import generate_latest

        self.next_schedule.set(next_schedule_unix or 0)
        return generate_latest(self.registry)
