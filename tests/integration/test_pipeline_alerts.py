"""The pipeline rules end to end on the local host's parts: the real work queue, worker, MLflow
registry, dataset store and training pipeline (a one-second AutoML budget), the real evaluator and a
real webhook receiver on loopback. A trainer that fails, a trainer that does not return, a clock
moved forward and a model outside a range drive every pipeline rule through firing and resolved;
the gate keeps the out-of-range model out, and /api/status, /metrics and the receiver show it all.
Only the deployer is a fake (FakeDeployer: it records the version; serving is tested elsewhere)."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from shared.adapters.local.trainer import LocalTrainer
from shared.automation.control_app import create_control_app
from shared.automation.handlers import Automation, request_training
from shared.automation.work_queue import WorkQueue
from shared.automation.worker import Worker
from shared.bootstrap import build_automation
from shared.config import load_settings
from shared.dataset_registration import register_dataset
from shared.monitoring import dashboard
from shared.monitoring.alerts import PIPELINE_RULES, AlertEvaluator, AlertRules, AlertState, read_events, registry_baselines
from shared.monitoring.metrics import ControlMetrics
from shared.monitoring.notify import WebhookNotifier
from shared.monitoring.pipeline_state import observe_pipeline
from shared.monitoring.ranges import MetricRanges
from shared.ports import CHAMPION, TrainingSubmission
from shared.resources import shipped_data
from shared.training.pipeline import TrainingRequest
from tests.automation_fakes import FakeDeployer
from tests.integration.scoring_fixtures import run_cli
from tests.local_home import local_home
from tests.polling import eventually
from tests.webhook_receiver import Receiver, webhook_receiver

pytestmark = pytest.mark.integration
KEY = "function-key-for-the-test"
TIMES_FIRED = {"retrain_failed": 1, "retrain_stuck": 1, "model_stale": 1, "data_stale": 2, "metric_out_of_range": 1}


class ControlledTrainer:
    """The real local trainer, told to fail (a broken step) or to hang (until released) first."""

    def __init__(self, inner: LocalTrainer) -> None:
        self.inner, self.mode, self.release, self.entered = inner, "train", threading.Event(), threading.Event()

    def train(self, request: TrainingRequest) -> TrainingSubmission:
        if self.mode == "fail":
            raise RuntimeError("the feature step ran out of memory")
        if self.mode == "hang":
            self.entered.set()
            assert self.release.wait(120), "never released"
        return self.inner.train(request)


def rows(seed: int) -> bytes:
    frame = pd.read_csv(shipped_data()).sample(1500, random_state=seed)
    return frame.to_csv(index=False).encode()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as found:
        yield found


def by_rule(states: list[AlertState]) -> dict[str, tuple[str, str | None]]:
    return {s.rule: (s.state, s.transition) for s in states if s.rule in PIPELINE_RULES}


def test_every_pipeline_rule_fires_and_resolves_on_the_local_host(tmp_path: Path, receiver: Receiver,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    with local_home(tmp_path) as (base, backend):
        settings = load_settings(home=base.paths.root, automl_budget_s=1, cv_folds=2, retrain_schedule="0 * * * * *",
                                 metric_ranges="AUC_weighted>=0.999", alert_webhook_url=receiver.url)
        built = build_automation(settings, backend)
        trainer = ControlledTrainer(LocalTrainer(datasets=built.datasets, registry=built.registry, tracker=built.tracker))
        auto: Automation = dataclasses.replace(built, settings=settings, ranges=MetricRanges.from_settings(settings),
                                               deployer=FakeDeployer(), trainer=trainer,
                                               queue=WorkQueue(settings.paths.root / "queue.db", retry_delay_s=0))
        register_dataset(auto.datasets, rows(1), name=settings.dataset_name, seed=settings.seed)
        metrics = ControlMetrics()
        notifier = WebhookNotifier(receiver.url, dashboard_url="http://127.0.0.1:7071/dashboard").start()

        def evaluator(rules: AlertRules) -> AlertEvaluator:
            return AlertEvaluator(rules, settings.paths.logs, registry_baselines(auto.registry), interval_s=60,
                                  counter=metrics.alerts, gauge=metrics.alert_firing, notify=notifier.notify,
                                  pipeline=lambda now: observe_pipeline(auto, now))

        rules = AlertRules.from_settings(settings).model_copy(update={"enabled": frozenset(PIPELINE_RULES)})
        alerts = evaluator(rules)
        worker = Worker(auto)
        client = TestClient(create_control_app(auto, key_ok=lambda key: key == KEY, metrics=metrics))
        try:
            # 1. a trainer that fails: three attempts, then a dead letter -> retrain_failed
            trainer.mode = "fail"
            failed_job, _ = request_training(auto, "test: failing trainer")
            worker.drain(60)
            assert auto.queue.get(failed_job).status == "dead"  # type: ignore[union-attr]
            with caplog.at_level(logging.WARNING, logger="bankops.alerts"):
                states = by_rule(alerts.run_once())
            assert states["retrain_failed"] == ("firing", "fired")
            # the log line Azure Monitor's scheduled query matches, with its customDimensions
            line = next(r for r in caplog.records if r.getMessage().startswith("alert firing: retrain_failed"))
            assert (line.alert_rule, line.alert_state, line.alert_value, line.alert_threshold) == (  # type: ignore[attr-defined]
                "retrain_failed", "firing", 1, 0)
            # `bankops monitor` and the dashboard name it too
            shown = run_cli(settings.paths.root, "monitor", "--window", "15m")
            assert shown.returncode == 0, shown.stderr
            assert "alerts firing 1" in shown.stdout and "retrain_failed:" in shown.stdout and failed_job in shown.stdout
            page = dashboard.build(auto, timedelta(minutes=15))
            assert [a["rule"] for a in page["alerts"]["firing"]] == ["retrain_failed"]
            assert [r["state"] for r in page["trends"]["runs"]] == ["failed"]
            assert states["model_stale"][0] == "insufficient_data" and states["data_stale"] == ("ok", None)
            status = client.get("/api/status", headers={"x-functions-key": KEY}).json()
            assert {a["rule"] for a in status["alerts"]["firing"]} == {"retrain_failed"}
            said = next(a for a in status["alerts"]["firing"] if a["rule"] == "retrain_failed")["message"]
            assert failed_job in said and "out of memory" in said
            live = {r["rule"]: r["state"] for r in status["pipeline_rules"]}
            assert live["retrain_failed"] == "firing" and set(live) == set(PIPELINE_RULES)

            # 2. a trainer that does not return: quiet within its limit, stuck once the clock is past it
            trainer.mode = "hang"
            hung_job, _ = request_training(auto, "test: hanging trainer")
            runner = threading.Thread(target=worker.run_once, args=("training",), daemon=True)
            runner.start()
            assert trainer.entered.wait(30)
            states = by_rule(alerts.run_once())
            assert states["retrain_stuck"] == ("ok", None)
            later = datetime.now(UTC) + timedelta(minutes=10)  # limit: 3 x 1 s + 120 s of usual steps
            states = by_rule(alerts.run_once(later))
            assert states["retrain_stuck"] == ("firing", "fired") and states["data_stale"] == ("firing", "fired")
            stuck = next(e for e in read_events(settings.paths.logs) if e["rule"] == "retrain_stuck")
            assert hung_job in stuck["message"] and stuck["threshold"] == pytest.approx(123)

            # 3. released, the run trains a real model; the gate keeps it out (AUC_weighted below 0.999)
            trainer.mode = "train"
            trainer.release.set()
            runner.join(120)
            assert auto.queue.get(hung_job).status == "done"  # type: ignore[union-attr]
            worker.drain(60)
            gate = next(j for j in auto.queue.recent(20) if j.kind == "RunCompleted")
            assert gate.result["outcome"] == "kept_champion" and gate.result["outside_range"] == ["AUC_weighted"]
            assert "< floor 0.9990" in gate.result["reason"] and auto.registry.alias(CHAMPION) is None
            states = by_rule(alerts.run_once())
            assert states["retrain_stuck"] == ("ok", "resolved") and states["retrain_failed"] == ("ok", "resolved")
            assert states["data_stale"] == ("ok", "resolved") and states["model_stale"] == ("ok", None)
            assert states["metric_out_of_range"] == ("firing", "fired")

            # 4. the clock moved on with no retrain and no data: both stale, said separately
            states = by_rule(alerts.run_once(datetime.now(UTC) + timedelta(minutes=10)))
            assert states["model_stale"] == ("firing", "fired") and states["data_stale"] == ("firing", "fired")

            # 5. new data, ranges the model can meet (a restarted host: it knows what is firing), a retrain
            auto.ranges = MetricRanges.parse("AUC_weighted>=0.5")
            alerts = evaluator(rules.model_copy(update={"ranges": auto.ranges}))
            assert {"metric_out_of_range", "model_stale", "data_stale"} <= alerts.firing
            register_dataset(auto.datasets, rows(2), name=settings.dataset_name, seed=settings.seed)
            request_training(auto, "test: new data")
            worker.drain(120)
            assert auto.registry.alias(CHAMPION) is not None
            states = by_rule(alerts.run_once())
            assert {r: s for r, s in states.items()} == {
                "retrain_failed": ("ok", None), "retrain_stuck": ("ok", None), "model_stale": ("ok", "resolved"),
                "data_stale": ("ok", "resolved"), "metric_out_of_range": ("ok", "resolved")}

            # the Prometheus view: each transition counted (data_stale fired twice), and nothing firing now
            found = {(s.name, tuple(sorted(s.labels.items()))): s.value
                     for f in text_string_to_metric_families(client.get("/metrics").text) for s in f.samples}
            for rule in PIPELINE_RULES:
                times = TIMES_FIRED[rule]
                assert found[("bankops_alerts_total", (("rule", rule), ("state", "firing")))] == times, rule
                assert found[("bankops_alerts_total", (("rule", rule), ("state", "resolved")))] == times, rule
                assert found[("bankops_alert_firing", (("rule", rule),))] == 0, rule

            # the receiver got a firing and a resolved message for every transition
            eventually(lambda: len(receiver.messages) == 2 * sum(TIMES_FIRED.values()), 30, "every webhook message")
        finally:
            trainer.release.set()
            notifier.stop()
        texts = receiver.texts()
        for rule in PIPELINE_RULES:
            assert sum(t.startswith(f"🔴 bankops alert firing: {rule}\n") for t in texts) == TIMES_FIRED[rule], rule
            assert sum(t.startswith(f"✅ bankops alert resolved: {rule}\n") for t in texts) == TIMES_FIRED[rule], rule
        assert all("Dashboard: http://127.0.0.1:7071/dashboard" in t for t in texts)
        assert any("AUC_weighted 0." in t and "< floor 0.9990" in t for t in texts)
