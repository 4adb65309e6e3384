"""Alert notifications to a real webhook receiver on loopback: the message a Teams or Slack incoming
webhook takes, retries after failures, a slow or dead receiver that never blocks the caller, a
bounded backlog, and a URL that never reaches the log."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from shared.config import load_settings
from shared.monitoring import notify
from shared.monitoring.alerts import AlertEvaluator, AlertRules
from shared.monitoring.notify import WebhookNotifier, message_text
from shared.monitoring.request_log import RequestLog
from tests.polling import eventually
from tests.webhook_receiver import webhook_receiver

FIRING = {"timestamp": "2026-12-03T07:00:00.000+00:00", "rule": "retrain_failed", "state": "firing", "value": 1,
          "threshold": 0, "message": "the newest training run failed: training job abc: RuntimeError: boom"}
RESOLVED = FIRING | {"state": "resolved", "value": 0, "message": "the newest training run succeeded"}


def test_firing_and_resolved_reach_the_receiver_with_rule_value_threshold_advice_and_link() -> None:
    with webhook_receiver() as receiver:
        notifier = WebhookNotifier(receiver.url, dashboard_url="http://127.0.0.1:7071/dashboard").start()
        try:
            notifier.notify(FIRING)
            notifier.notify(RESOLVED)
            eventually(lambda: len(receiver.messages) == 2, 10, "two messages")
        finally:
            notifier.stop()
    first, second = receiver.texts()
    assert first.startswith("🔴 bankops alert firing: retrain_failed")
    assert "value 1, threshold 0" in first and "RuntimeError: boom" in first
    assert "Dashboard: http://127.0.0.1:7071/dashboard" in first
    assert second.startswith("✅ bankops alert resolved: retrain_failed") and "succeeded" in second
    fields = receiver.messages[0]  # `text` (what both webhooks show) plus the same facts as fields
    assert set(fields) == {"text", "rule", "state", "value", "threshold", "timestamp", "look_at", "dashboard_url"}
    assert (fields["rule"], fields["state"], fields["value"], fields["threshold"]) == ("retrain_failed", "firing", 1, 0)
    assert "RuntimeError: boom" in fields["look_at"] and fields["dashboard_url"] == "http://127.0.0.1:7071/dashboard"
    assert notifier.delivered == 2 and notifier.failed == 0


def test_a_failing_receiver_is_retried_and_its_url_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    with webhook_receiver() as receiver, caplog.at_level(logging.DEBUG):
        receiver.fail_next = 2
        notifier = WebhookNotifier(receiver.url, backoff_s=0.01)
        assert notifier.deliver(FIRING)  # two 500s, then taken
        assert receiver.attempts == 3 and len(receiver.messages) == 1
        receiver.fail_next = 10
        assert not notifier.deliver(RESOLVED)  # four attempts, then given up with a log line
        assert receiver.attempts == 7 and notifier.failed == 1
    assert any("could not deliver retrain_failed resolved" in r.getMessage() for r in caplog.records)
    assert all("secret-token-part" not in r.getMessage() for r in caplog.records)  # httpx logs URLs at INFO: not this one
    assert "secret-token-part" not in repr(notifier)


def test_an_unreachable_receiver_is_retried_without_naming_it(caplog: pytest.LogCaptureFixture) -> None:
    with webhook_receiver() as receiver:
        url = receiver.url
    notifier = WebhookNotifier(url, backoff_s=0.01, attempts=2)  # the server is gone: connection refused
    with caplog.at_level(logging.ERROR):
        assert not notifier.deliver(FIRING)
    assert [r.getMessage() for r in caplog.records] == [
        "alert webhook: could not deliver retrain_failed firing after retries: ConnectError"]


def test_a_slow_receiver_never_blocks_the_caller_and_the_backlog_is_bounded(tmp_path: Path) -> None:
    with webhook_receiver() as receiver:
        receiver.delay_s = 0.5
        notifier = WebhookNotifier(receiver.url, backlog=3).start()
        try:
            started = time.monotonic()
            for i in range(10):
                notifier.notify(FIRING | {"value": i})
            assert time.monotonic() - started < 0.2  # ten hand-offs, not ten deliveries
            assert notifier.pending() <= 3 and notifier.dropped >= 6
            eventually(lambda: notifier.delivered + notifier.dropped == 10, 15, "the backlog to drain")
        finally:
            notifier.stop()
        # the newest messages survive: the oldest were dropped
        assert "value 9," in receiver.texts()[-1]
        assert len(receiver.messages) == 10 - notifier.dropped


def test_the_evaluator_hands_transitions_to_the_notifier_and_goes_on_when_the_receiver_hangs(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    log = RequestLog(logs)
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    for i in range(10):
        log.write({"timestamp": (now - timedelta(seconds=i)).isoformat(timespec="milliseconds"), "route": "/score",
                   "status": 500, "latency_ms": 3.0})
    log.close()
    with webhook_receiver() as receiver:
        receiver.delay_s = 3.0  # slower than the evaluator's whole check
        notifier = WebhookNotifier(receiver.url).start()
        try:
            evaluator = AlertEvaluator(AlertRules(enabled=frozenset({"failure_rate"}), min_requests=10), logs,
                                       lambda _v: None, interval_s=60, notify=notifier.notify)
            started = time.monotonic()
            assert evaluator.run_once(now)[0].transition == "fired"
            assert evaluator.run_once(now + timedelta(hours=1))[0].transition == "resolved"
            assert time.monotonic() - started < 1.5
            eventually(lambda: len(receiver.messages) == 2, 20, "both messages")
        finally:
            notifier.stop()
    assert [t.split(":")[0] for t in receiver.texts()] == ["🔴 bankops alert firing", "✅ bankops alert resolved"]
    assert "100.0% of 10 /score requests failed" in receiver.texts()[0]


def test_the_notifier_comes_from_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert notify.from_settings(load_settings(home=tmp_path)) is None
    monkeypatch.setenv("BANKOPS_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/hook/secret-token-part")
    settings = load_settings(home=tmp_path)
    assert "secret-token-part" not in repr(settings)
    made = notify.from_settings(settings, dashboard_url="http://x/dashboard")
    assert made is not None
    made.stop(1)


def test_message_text_formats_ranges_and_missing_values() -> None:
    text = message_text({"rule": "prediction_drift", "state": "firing", "value": 0.61234, "threshold": [0.08, 0.14],
                         "message": "m"})
    assert "value 0.6123, threshold 0.08 to 0.14" in text and "Dashboard" not in text
