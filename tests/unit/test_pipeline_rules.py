"""The pipeline rules on known state: metric ranges as the setting writes them, training runs read
from queue job records as either backend leaves them, and each rule firing, staying quiet and
resolving. The end-to-end version (real queue, worker, registry, trainer, webhook) is
tests/integration/test_pipeline_alerts.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.automation.work_queue import Job
from shared.config import load_settings
from shared.errors import ConfigurationError
from shared.monitoring.alerts import PIPELINE_RULES, AlertRules, AlertState, Observations, evaluate
from shared.monitoring.pipeline_state import DEFAULT_STEPS_S, PipelineObservations, RunRecord, schedule_interval, training_runs
from shared.monitoring.ranges import METRICS, MetricRanges
from shared.training.evaluate import holdout_metrics

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
DAY = 86400.0


def iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def job(job_id: str, kind: str, status: str, at: datetime, *, result: dict[str, Any] | None = None,
        payload: dict[str, Any] | None = None, error: str = "") -> Job:
    return Job(job_id=job_id, lane="training" if kind == "RequestTraining" else "control", kind=kind, status=status,
               attempts=1, created_at=iso(at), updated_at=iso(at), error=error, result=result or {},
               payload={"kind": kind, **(payload or {})})


# --- metric ranges ----------------------------------------------------------------------------------
def test_ranges_parse_floors_and_ceilings_and_name_what_is_outside() -> None:
    ranges = MetricRanges.parse("AUC_weighted>=0.93, recall_yes>=0.45,log_loss<=0.30,accuracy>=0.8,accuracy<=0.99")
    assert ranges.bands() == {"AUC_weighted": [0.93, None], "recall_yes": [0.45, None], "log_loss": [None, 0.30],
                              "accuracy": [0.8, 0.99]}
    good = {"AUC_weighted": 0.94, "recall_yes": 0.5, "log_loss": 0.2, "accuracy": 0.9}
    assert ranges.outside(good) == []
    bad = ranges.outside(good | {"AUC_weighted": 0.92, "log_loss": 0.31, "accuracy": 0.995})
    assert [(o.metric, o.value, o.bound) for o in bad] == [("AUC_weighted", 0.92, 0.93), ("log_loss", 0.31, 0.30),
                                                          ("accuracy", 0.995, 0.99)]
    assert bad[0].reason == "AUC_weighted 0.9200 < floor 0.9300" and bad[1].reason == "log_loss 0.3100 > ceiling 0.3000"
    missing = ranges.outside({"AUC_weighted": 0.95})
    assert {o.metric for o in missing} == {"recall_yes", "log_loss", "accuracy"} and "not recorded" in missing[0].reason


def test_every_metric_the_evaluate_step_records_can_have_a_range() -> None:
    import numpy as np

    recorded = holdout_metrics(np.array([0, 1, 0, 1]), np.array([0.1, 0.8, 0.6, 0.4]))
    assert set(recorded) <= set(METRICS)
    assert "cv_score" in METRICS
    MetricRanges.parse(",".join(f"{m}>=0" for m in recorded))


@pytest.mark.parametrize(("text", "says"), [
    ("AUC>=0.9", "unknown metric 'AUC'"),
    ("AUC_weighted>0.9", "METRIC>=NUMBER"),
    ("AUC_weighted>=high", "METRIC>=NUMBER"),
    ("accuracy>=0.9,accuracy<=0.8", "floor 0.9 above its ceiling 0.8"),
])
def test_a_wrong_range_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match="BANKOPS_METRIC_RANGES") as found:
        MetricRanges.parse(text)
    assert says in found.value.message


def test_the_old_recall_floor_is_an_alias_and_the_stricter_floor_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANKOPS_GATE_MIN_RECALL_YES", "0.5")
    assert MetricRanges.from_settings(load_settings(home=tmp_path)).bands() == {"recall_yes": [0.5, None]}
    monkeypatch.setenv("BANKOPS_METRIC_RANGES", "recall_yes>=0.6,AUC_weighted>=0.9")
    assert MetricRanges.from_settings(load_settings(home=tmp_path)).bands() == {"recall_yes": [0.6, None],
                                                                                  "AUC_weighted": [0.9, None]}
    monkeypatch.setenv("BANKOPS_METRIC_RANGES", "recall_yes>=0.3")
    assert MetricRanges.from_settings(load_settings(home=tmp_path)).bands() == {"recall_yes": [0.5, None]}


# --- the run history from job records ---------------------------------------------------------------
def test_local_runs_from_their_training_jobs() -> None:
    t = NOW - timedelta(hours=3)
    runs = training_runs([  # oldest first here: the order comes from created_at
        job("a", "RequestTraining", "done", t, result={"outcome": "trained", "started_at": iso(t - timedelta(minutes=2)),
                                                       "budget_s": 60, "trials": 40, "model_version": "1"}),
        job("b", "RequestTraining", "dead", t + timedelta(hours=1), error="RuntimeError: the trainer broke"),
        job("c", "RequestTraining", "running", t + timedelta(hours=2), result={"started_at": iso(t + timedelta(hours=2))}),
    ])
    assert [(r.job_id, r.state) for r in runs] == [("c", "running"), ("b", "failed"), ("a", "succeeded")]
    assert runs[2].duration_s == 120 and runs[2].trials == 40 and runs[2].budget_s == 60
    assert runs[1].error == "RuntimeError: the trainer broke"


def test_azure_runs_end_with_the_job_that_names_their_run_id() -> None:
    """A submitted Azure ML run is in progress until RunCompleted (or a failed/canceled RunStatusChanged record)."""
    t = NOW - timedelta(hours=5)
    submitted = {"outcome": "submitted", "started_at": iso(t), "budget_s": 1800}
    runs = training_runs([
        job("s1", "RequestTraining", "done", t, result={**submitted, "run_id": "r1"}),
        job("e1", "RunCompleted", "done", t + timedelta(minutes=40), payload={"run_id": "r1", "model_version": ""},
            result={"outcome": "deployed", "model_version": "4"}),
        job("s2", "RequestTraining", "done", t + timedelta(hours=1), result={**submitted, "run_id": "r2"}),
        job("e2", "RunStatusChanged", "done", t + timedelta(hours=1, minutes=5),
            result={"outcome": "failed", "run_id": "r2", "reason": "step train: OutOfMemory"}),
        job("s3", "RequestTraining", "done", t + timedelta(hours=2), result={**submitted, "run_id": "r3"}),
        job("s4", "RequestTraining", "done", t + timedelta(hours=3), result={**submitted, "run_id": "r4"}),
        job("e4", "RunCompleted", "dead", t + timedelta(hours=3, minutes=30), payload={"run_id": "r4", "model_version": ""},
            error="NotFound: no registered model comes from run r4"),
    ])
    by_id = {r.run_id: r for r in runs}
    assert [r.run_id for r in runs] == ["r4", "r3", "r2", "r1"]
    assert (by_id["r1"].state, by_id["r1"].duration_s, by_id["r1"].model_version) == ("succeeded", 2400, "4")
    assert (by_id["r2"].state, by_id["r2"].error) == ("failed", "step train: OutOfMemory")
    assert by_id["r3"].state == "running" and by_id["r3"].budget_s == 1800
    assert (by_id["r4"].state, by_id["r4"].error) == ("failed", "NotFound: no registered model comes from run r4")


def test_the_schedule_interval_comes_from_the_ncrontab_expression() -> None:
    assert schedule_interval("0 0 2 * * *", NOW) == DAY
    assert schedule_interval("0 */5 * * * *", NOW) == 300
    assert schedule_interval("0 0 2 * * 1", NOW) == 7 * DAY


# --- the rules ----------------------------------------------------------------------------------------
RULES = AlertRules(enabled=frozenset(PIPELINE_RULES), ranges=MetricRanges.parse("AUC_weighted>=0.93,recall_yes>=0.45"))
GOOD = {"AUC_weighted": 0.95, "recall_yes": 0.5}


def state(runs: list[RunRecord], *, now: datetime = NOW, last_success: datetime | None = NOW - timedelta(hours=10),
          last_data: datetime | None = NOW - timedelta(hours=10), metrics: dict[str, float] | None = None) -> Observations:
    p = PipelineObservations(now=now, runs=runs, budget_s=60, schedule_interval_s=DAY, last_success=last_success,
                             last_data=last_data, newest_version="3", newest_metrics=GOOD if metrics is None else metrics)
    return Observations(window_s=900, pipeline=p)


def by_rule(states: list[AlertState]) -> dict[str, AlertState]:
    return {s.rule: s for s in states}


OK_RUN = RunRecord(job_id="j1", state="succeeded", started=NOW - timedelta(hours=10, minutes=3),
                   finished=NOW - timedelta(hours=10), budget_s=60)


def test_a_healthy_pipeline_fires_nothing() -> None:
    states = by_rule(evaluate(RULES, state([OK_RUN])))
    assert set(states) == set(PIPELINE_RULES) and {s.state for s in states.values()} == {"ok"}


def test_a_failed_newest_run_fires_with_its_reason_and_job_and_a_later_success_resolves_it() -> None:
    failed = RunRecord(job_id="j2", run_id="r2", state="failed", finished=NOW - timedelta(hours=1), error="RuntimeError: boom")
    fired = by_rule(evaluate(RULES, state([failed, OK_RUN])))["retrain_failed"]
    assert (fired.state, fired.transition) == ("firing", "fired")
    assert "RuntimeError: boom" in fired.message and "j2" in fired.message and "r2" in fired.message
    # a run in progress does not hide the failure; a newer success resolves it
    running = RunRecord(job_id="j3", state="running", started=NOW)
    assert by_rule(evaluate(RULES, state([running, failed, OK_RUN]), {"retrain_failed"}))["retrain_failed"].transition is None
    fixed = OK_RUN.model_copy(update={"job_id": "j4", "finished": NOW})
    back = by_rule(evaluate(RULES, state([fixed, failed, OK_RUN]), {"retrain_failed"}))["retrain_failed"]
    assert (back.state, back.transition) == ("ok", "resolved")


def test_a_run_is_stuck_after_factor_times_budget_plus_its_usual_steps() -> None:
    # the successful run took 180 s on a 60 s budget: its steps usually take 120 s; limit 3 x 60 + 120 = 300 s
    started = NOW - timedelta(seconds=300)
    at_limit = by_rule(evaluate(RULES, state([RunRecord(job_id="j5", state="running", started=started), OK_RUN])))
    assert at_limit["retrain_stuck"].state == "ok" and at_limit["retrain_stuck"].threshold == 300
    late = RunRecord(job_id="j5", state="running", started=started - timedelta(seconds=1))
    fired = by_rule(evaluate(RULES, state([late, OK_RUN])))["retrain_stuck"]
    assert (fired.state, fired.value, fired.threshold) == ("firing", 301, 300) and "j5" in fired.message
    # without a timed run the steps are assumed to take DEFAULT_STEPS_S
    assert by_rule(evaluate(RULES, state([late])))["retrain_stuck"].threshold == 3 * 60 + DEFAULT_STEPS_S


def test_no_retrain_and_no_data_for_stale_factor_schedule_intervals_are_said_separately() -> None:
    old = NOW - timedelta(days=2, seconds=1)
    states = by_rule(evaluate(RULES, state([OK_RUN], last_success=old)))
    assert states["model_stale"].state == "firing" and states["data_stale"].state == "ok"
    assert "successful retrain" in states["model_stale"].message and states["model_stale"].threshold == 2 * DAY
    states = by_rule(evaluate(RULES, state([OK_RUN], last_data=old)))
    assert states["data_stale"].state == "firing" and states["model_stale"].state == "ok"
    assert "incoming/" in states["data_stale"].message
    # the same state, judged with the clock two days on
    later = by_rule(evaluate(RULES, state([OK_RUN], now=NOW + timedelta(days=2))))
    assert later["model_stale"].state == later["data_stale"].state == "firing"


def test_a_newest_version_outside_a_range_fires_naming_the_metric() -> None:
    fired = by_rule(evaluate(RULES, state([OK_RUN], metrics=GOOD | {"recall_yes": 0.40})))["metric_out_of_range"]
    assert (fired.state, fired.value, fired.threshold) == ("firing", 0.40, 0.45)
    assert "v3" in fired.message and "recall_yes 0.4000 < floor 0.4500" in fired.message
    back = by_rule(evaluate(RULES, state([OK_RUN]), {"metric_out_of_range"}))["metric_out_of_range"]
    assert (back.state, back.transition) == ("ok", "resolved")
    unset = by_rule(evaluate(RULES.model_copy(update={"ranges": MetricRanges()}), state([OK_RUN])))["metric_out_of_range"]
    assert unset.state == "insufficient_data" and "BANKOPS_METRIC_RANGES" in unset.message


def test_without_history_the_pipeline_rules_are_not_judged() -> None:
    states = by_rule(evaluate(RULES, state([], last_success=None, last_data=None)))
    assert {r: s.state for r, s in states.items()} == {
        "retrain_failed": "insufficient_data", "retrain_stuck": "ok", "model_stale": "insufficient_data",
        "data_stale": "insufficient_data", "metric_out_of_range": "ok"}
    assert {s.state for s in evaluate(RULES, Observations(window_s=900))} == {"insufficient_data"}
