"""The alert rules on in-memory observations: each fires on known input and stays quiet otherwise,
the minimum-data guards, the fired/resolved transitions, and the settings that configure them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from shared.config import load_settings
from shared.errors import ConfigurationError
from shared.monitoring.alerts import (
    SCORING_RULES,
    AlertEvaluator,
    AlertRules,
    AlertState,
    Baseline,
    Observations,
    evaluate,
    observe,
    read_events,
    status_view,
    wilson,
)
from shared.monitoring.request_log import RequestLog
from shared.training.evaluate import predicted_yes_range

RULES_ = AlertRules(enabled=frozenset(SCORING_RULES), min_requests=10, min_probes=3, drift_min_records=100)
BASE = Baseline(share=0.11, low=0.08, high=0.14)
HEALTHY = Observations(window_s=900, requests=100, failed=1, server_errors=0, p95_ms=40.0, probes=30, probes_up=30,
                       model_version="2", records=1000, predicted_yes=110, baseline=BASE)


def by_rule(states: list[AlertState]) -> dict[str, AlertState]:
    return {s.rule: s for s in states}


def test_healthy_traffic_fires_nothing() -> None:
    states = by_rule(evaluate(RULES_, HEALTHY))
    assert set(states) == set(SCORING_RULES)
    assert {s.state for s in states.values()} == {"ok"}
    assert all(s.transition is None for s in states.values())
    assert states["failure_rate"].value == pytest.approx(0.01)
    assert states["prediction_drift"].threshold == (0.08, 0.14)


@pytest.mark.parametrize(("rule", "change", "value"), [
    ("failure_rate", {"failed": 6, "server_errors": 2}, 0.06),
    ("latency_p95", {"p95_ms": 501.0}, 501.0),
    ("availability", {"probes_up": 29}, 29 / 30),
    ("prediction_drift", {"predicted_yes": 1000}, 1.0),
    ("prediction_drift", {"predicted_yes": 0}, 0.0),
])
def test_each_rule_fires_on_known_input_and_only_that_rule(rule: str, change: dict[str, float], value: float) -> None:
    states = by_rule(evaluate(RULES_, HEALTHY.model_copy(update=change)))
    assert states[rule].state == "firing" and states[rule].transition == "fired"
    assert states[rule].value == pytest.approx(value)
    assert {r for r, s in states.items() if s.state == "firing"} == {rule}


def test_thresholds_are_inclusive_on_the_good_side() -> None:
    at_limit = HEALTHY.model_copy(update={"failed": 5, "p95_ms": 500.0, "probes": 100, "probes_up": 99})
    assert {s.state for s in evaluate(RULES_, at_limit)} == {"ok"}


def test_firing_messages_say_what_to_do() -> None:
    bad = HEALTHY.model_copy(update={"failed": 20, "server_errors": 5, "p95_ms": 900.0, "probes_up": 10, "predicted_yes": 900})
    states = by_rule(evaluate(RULES_, bad))
    assert "5 server errors" in states["failure_rate"].message and "15 client errors" in states["failure_rate"].message
    assert "bankops serve --workers" in states["latency_p95"].message
    assert "scoring-service.log" in states["availability"].message
    assert "v2 predicted \"yes\" for 90.0% of 1000 records in the last 15m" in states["prediction_drift"].message
    assert "retrain" in states["prediction_drift"].message


def test_too_little_data_is_not_judged() -> None:
    few = HEALTHY.model_copy(update={"requests": 9, "failed": 9, "server_errors": 9, "p95_ms": 5000.0, "probes": 2,
                                     "probes_up": 0, "records": 99, "predicted_yes": 99})
    states = by_rule(evaluate(RULES_, few))
    assert {s.state for s in states.values()} == {"insufficient_data"}
    assert "BANKOPS_ALERT_MIN_REQUESTS=10" in states["failure_rate"].message
    assert "BANKOPS_ALERT_MIN_PROBES=3" in states["availability"].message
    assert "BANKOPS_ALERT_DRIFT_MIN_RECORDS=100" in states["prediction_drift"].message


def test_drift_needs_a_holdout_range() -> None:
    state = by_rule(evaluate(RULES_, HEALTHY.model_copy(update={"baseline": None, "predicted_yes": 1000})))["prediction_drift"]
    assert state.state == "insufficient_data" and "no holdout range" in state.message


def test_drift_allows_for_the_live_samples_own_noise() -> None:
    # 20 yes of 100 is outside 8-14% as a point, but 100 records cannot tell 20% from 14%: quiet.
    small = HEALTHY.model_copy(update={"records": 100, "predicted_yes": 20})
    assert by_rule(evaluate(RULES_, small))["prediction_drift"].state == "ok"
    # the same share over 5,000 records is a real shift
    large = HEALTHY.model_copy(update={"records": 5000, "predicted_yes": 1000})
    assert by_rule(evaluate(RULES_, large))["prediction_drift"].state == "firing"


def test_wilson_interval() -> None:
    low, high = wilson(0, 50)
    assert low == 0.0 and 0.05 < high < 0.15
    low, high = wilson(50, 50)
    assert 0.85 < low < 0.95 and high == 1.0
    assert wilson(0, 0) == (0.0, 1.0)


def test_transitions_fired_then_resolved_then_quiet() -> None:
    bad = HEALTHY.model_copy(update={"failed": 50})
    first = by_rule(evaluate(RULES_, bad))["failure_rate"]
    assert (first.state, first.transition) == ("firing", "fired")
    again = by_rule(evaluate(RULES_, bad, firing={"failure_rate"}))["failure_rate"]
    assert (again.state, again.transition) == ("firing", None)  # still firing: no new event
    back = by_rule(evaluate(RULES_, HEALTHY, firing={"failure_rate"}))["failure_rate"]
    assert (back.state, back.transition) == ("ok", "resolved")
    gone = by_rule(evaluate(RULES_, HEALTHY.model_copy(update={"requests": 0}), firing={"failure_rate"}))["failure_rate"]
    assert (gone.state, gone.transition) == ("insufficient_data", "resolved")


def test_a_rule_turned_off_while_firing_resolves_and_then_disappears() -> None:
    only = AlertRules(enabled=frozenset({"availability"}))
    states = by_rule(evaluate(only, HEALTHY, firing={"prediction_drift"}))
    assert set(states) == {"availability", "prediction_drift"} and states["prediction_drift"].transition == "resolved"
    assert set(by_rule(evaluate(only, HEALTHY))) == {"availability"}


def test_rules_come_from_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert AlertRules.from_settings(load_settings(home=tmp_path)) == AlertRules()  # defaults agree
    monkeypatch.setenv("BANKOPS_ALERT_RULES", "drift, availability")
    monkeypatch.setenv("BANKOPS_ALERT_WINDOW", "1h")
    monkeypatch.setenv("BANKOPS_ALERT_FAILURE_RATE", "0.2")
    monkeypatch.setenv("BANKOPS_ALERT_P95_MS", "250")
    monkeypatch.setenv("BANKOPS_ALERT_DRIFT_MIN_RECORDS", "50")
    rules = AlertRules.from_settings(load_settings(home=tmp_path))
    assert rules.enabled == {"prediction_drift", "availability"} and rules.window_s == 3600  # the old name still works
    assert (rules.failure_rate, rules.p95_ms, rules.drift_min_records) == (0.2, 250.0, 50)
    monkeypatch.setenv("BANKOPS_ALERT_RULES", "drift,latency")
    with pytest.raises(ConfigurationError, match="latency"):
        AlertRules.from_settings(load_settings(home=tmp_path))
    monkeypatch.setenv("BANKOPS_ALERT_RULES", "drift")
    monkeypatch.setenv("BANKOPS_ALERT_WINDOW", "soon")
    with pytest.raises(ConfigurationError, match="BANKOPS_ALERT_WINDOW"):
        AlertRules.from_settings(load_settings(home=tmp_path))


def test_the_holdout_range_brackets_the_share() -> None:
    p = [0.9] * 11 + [0.1] * 89
    found = predicted_yes_range(p, 0.5, seed=1)
    assert found["predicted_yes_share"] == pytest.approx(0.11) and found["predicted_yes_rows"] == 100
    assert 0.02 < found["predicted_yes_share_low"] < 0.11 < found["predicted_yes_share_high"] < 0.21
    assert Baseline.from_metrics(found) == Baseline(share=0.11, low=found["predicted_yes_share_low"],
                                                    high=found["predicted_yes_share_high"])
    assert Baseline.from_metrics({"AUC_weighted": 0.9}) is None


def test_observe_reads_the_request_log_and_the_served_versions_mix(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    log = RequestLog(logs)
    now = datetime.now(UTC)

    def at(ago: timedelta) -> str:
        return (now - ago).isoformat(timespec="milliseconds")

    log.write({"timestamp": at(timedelta(hours=2)), "route": "/score", "status": 500, "latency_ms": 9000.0})  # outside
    log.write({"timestamp": at(timedelta(minutes=9)), "route": "/score", "status": 200, "latency_ms": 5.0,
               "model_version": "1", "records": 10, "predicted_yes": 10})  # an older version's mix: not judged
    for i in range(8):
        log.write({"timestamp": at(timedelta(minutes=5, seconds=i)), "route": "/score", "status": 200, "latency_ms": 10.0 + i,
                   "model_version": "2", "records": 4, "predicted_yes": 1})
    log.write({"timestamp": at(timedelta(minutes=4)), "route": "/score", "status": 401, "latency_ms": 1.0,
               "model_version": "2", "records": None})
    log.write({"timestamp": at(timedelta(minutes=3)), "route": "/", "status": 503, "latency_ms": 1.0})  # not /score
    log.close()
    asked: list[str] = []

    def baseline_of(version: str) -> Baseline:
        asked.append(version)
        return BASE

    o = observe(logs, timedelta(minutes=15), baseline_of, now)
    assert (o.requests, o.failed, o.server_errors) == (10, 1, 0)
    assert (o.model_version, o.records, o.predicted_yes, o.baseline) == ("2", 32, 8, BASE)
    assert o.p95_ms == 17.0 and asked == ["2"]


def test_the_evaluator_records_each_transition_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    logs = tmp_path / "logs"
    log = RequestLog(logs)
    now = datetime.now(UTC)
    for i in range(10):
        log.write({"timestamp": (now - timedelta(seconds=i)).isoformat(timespec="milliseconds"), "route": "/score",
                   "status": 500 if i < 5 else 200, "latency_ms": 3.0})
    log.close()
    rules = AlertRules(enabled=frozenset({"failure_rate"}), min_requests=10)
    evaluator = AlertEvaluator(rules, logs, lambda _v: None, interval_s=60)
    with caplog.at_level(logging.WARNING, logger="bankops.alerts"):
        assert evaluator.run_once(now)[0].state == "firing"
        evaluator.run_once(now)  # still firing: no second event
    assert [e["state"] for e in read_events(logs)] == ["firing"]
    fired = [r for r in caplog.records if r.getMessage().startswith("alert firing: failure_rate: ")]
    assert len(fired) == 1 and fired[0].alert_rule == "failure_rate" and fired[0].alert_state == "firing"  # type: ignore[attr-defined]
    assert (fired[0].alert_value, fired[0].alert_threshold) == (0.5, 0.05)  # type: ignore[attr-defined]
    view = status_view(logs)
    assert [a["rule"] for a in view["firing"]] == ["failure_rate"] and view["firing"][0]["value"] == 0.5
    assert view["last_check"]["rules"][0]["state"] == "firing"

    # a restarted host knows the alert is firing; once the window has moved on it resolves
    later = AlertEvaluator(rules, logs, lambda _v: None, interval_s=60)
    assert later.firing == {"failure_rate"}
    later.run_once(now + timedelta(hours=1))
    events = read_events(logs)
    assert [e["state"] for e in events] == ["firing", "resolved"]
    assert status_view(logs)["firing"] == [] and status_view(logs)["recent"][0]["state"] == "resolved"
    assert orjson.loads((logs / "alerts-state.json").read_bytes())["rules"][0]["state"] == "insufficient_data"
