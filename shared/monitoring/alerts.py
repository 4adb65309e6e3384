"""Alerts: rules over the request log, the availability probes, the prediction mix and the pipeline.

Four scoring rules, each judged over the last `BANKOPS_ALERT_WINDOW` and only with enough data to judge:

- `failure_rate`: the share of `/score` requests that failed (status >= 400, as Application Insights
  counts them) is above `BANKOPS_ALERT_FAILURE_RATE`, with at least `BANKOPS_ALERT_MIN_REQUESTS`;
- `latency_p95`: the p95 response time of `/score` is above `BANKOPS_ALERT_P95_MS` (same minimum);
- `availability`: the share of probes that found the service up is below `BANKOPS_ALERT_AVAILABILITY`,
  with at least `BANKOPS_ALERT_MIN_PROBES` probes;
- `prediction_drift`: the share of "yes" among the records the served version scored (at least
  `BANKOPS_ALERT_DRIFT_MIN_RECORDS`) is outside the range seen on its holdout (the interval the
  training pipeline registers with the version), beyond the live share's own sampling noise (its
  99% Wilson interval does not overlap the holdout range).

Five pipeline rules, over the training runs, the registry and the datasets (`pipeline_state`):

- `retrain_failed`: the newest finished training run failed or ended as a dead letter;
- `retrain_stuck`: a run in progress for longer than `BANKOPS_ALERT_STUCK_FACTOR` x its AutoML budget
  plus the time its other steps usually take;
- `model_stale` / `data_stale`: no successful retrain / no new dataset version for
  `BANKOPS_ALERT_STALE_FACTOR` x the interval of `RETRAIN_SCHEDULE`;
- `metric_out_of_range`: a holdout metric of the newest registered version is outside its range
  (`BANKOPS_METRIC_RANGES`, the gate's ranges).

`evaluate` is pure (rules + observations -> states); `AlertEvaluator` runs it periodically under
`bankops up` and, when a rule starts or stops firing, appends an event to `logs/alerts.jsonl`, logs
a line `alert firing: <rule>: ...` / `alert resolved: <rule>: ...` on the `bankops.alerts` logger with
the rule, state, value and threshold as `extra` (the control-plane log, and Application Insights'
customDimensions, where the Azure Monitor alert rules match them), counts
`bankops_alerts_total{rule,state}`, sets `bankops_alert_firing{rule}`, and hands the event to the
webhook notifier (which delivers it off this thread). `status_view` is what `/api/status` shows; it reads
the files, so `bankops status` works without the host.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Collection, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from shared.atomic_files import write_atomically
from shared.errors import ConfigurationError, InvalidInput, NotFound
from shared.monitoring import availability
from shared.monitoring.monitor import failed, parse_window, percentile
from shared.monitoring.pipeline_state import PipelineObservations, RunRecord
from shared.monitoring.ranges import MetricRanges
from shared.monitoring.request_log import read_entries

log = logging.getLogger("bankops.alerts")
SCORING_RULES = ("failure_rate", "latency_p95", "availability", "prediction_drift")
PIPELINE_RULES = ("retrain_failed", "retrain_stuck", "model_stale", "data_stale", "metric_out_of_range")
RULES = SCORING_RULES + PIPELINE_RULES
ALIASES = {"p95_latency": "latency_p95", "drift": "prediction_drift"}  # the names before the pipeline rules
EVENTS_FILE = "alerts.jsonl"
STATE_FILE = "alerts-state.json"
SCORE_ROUTE = "/score"
Z_99 = 2.5758  # two-sided 99% normal quantile: the live share's Wilson interval


class AlertRules(BaseModel):
    """Which rules run and their thresholds; defaults are the settings' defaults."""

    model_config = ConfigDict(frozen=True)

    enabled: frozenset[str] = frozenset(RULES)
    window_s: float = Field(900.0, gt=0)
    min_requests: int = Field(20, ge=1)
    failure_rate: float = Field(0.05, ge=0, le=1)
    p95_ms: float = Field(500.0, gt=0)
    availability: float = Field(0.99, ge=0, le=1)
    min_probes: int = Field(3, ge=1)
    drift_min_records: int = Field(200, ge=1)
    stuck_factor: float = Field(3.0, gt=0)
    stale_factor: float = Field(2.0, gt=0)
    ranges: MetricRanges = Field(default_factory=MetricRanges)

    @classmethod
    def from_settings(cls, settings: Any) -> AlertRules:
        """The rules the BANKOPS_ALERT_* settings describe; a wrong name or window says which setting."""
        named = (r.strip() for r in str(settings.alert_rules).split(",") if r.strip())
        enabled = frozenset(ALIASES.get(r, r) for r in named)
        unknown = sorted(enabled - set(RULES))
        if unknown:
            raise ConfigurationError(f"BANKOPS_ALERT_RULES names unknown rules {unknown}; the rules are {', '.join(RULES)}")
        try:
            window = parse_window(settings.alert_window)
        except InvalidInput as exc:
            raise ConfigurationError(f"BANKOPS_ALERT_WINDOW: {exc.message}") from exc
        return cls(enabled=enabled, window_s=window.total_seconds(), min_requests=settings.alert_min_requests,
                   failure_rate=settings.alert_failure_rate, p95_ms=settings.alert_p95_ms,
                   availability=settings.alert_availability, min_probes=settings.alert_min_probes,
                   drift_min_records=settings.alert_drift_min_records, stuck_factor=settings.alert_stuck_factor,
                   stale_factor=settings.alert_stale_factor, ranges=MetricRanges.from_settings(settings))


class Baseline(BaseModel):
    """The share of "yes" a version predicted on its holdout, and the range of that share."""

    share: float
    low: float
    high: float

    @classmethod
    def from_metrics(cls, metrics: Any) -> Baseline | None:
        keys = ("predicted_yes_share", "predicted_yes_share_low", "predicted_yes_share_high")
        if not all(k in metrics for k in keys):
            return None
        return cls(share=float(metrics[keys[0]]), low=float(metrics[keys[1]]), high=float(metrics[keys[2]]))


class Observations(BaseModel):
    """What the rules look at, over one window."""

    window_s: float
    requests: int = 0  # /score requests
    failed: int = 0
    server_errors: int = 0
    p95_ms: float | None = None
    probes: int = 0
    probes_up: int = 0
    model_version: str | None = None  # the version whose prediction mix is judged: the latest to answer /score
    records: int = 0  # records it scored in the window
    predicted_yes: int = 0
    baseline: Baseline | None = None
    pipeline: PipelineObservations | None = None  # None: the pipeline rules are not judged (no pipeline state given)


class AlertState(BaseModel):
    """One rule's verdict: firing, ok or insufficient_data; `transition` says whether it just changed."""

    rule: str
    state: Literal["firing", "ok", "insufficient_data"]
    value: float | None = None
    threshold: float | tuple[float, float] | None = None
    message: str
    transition: Literal["fired", "resolved"] | None = None


def _window(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def wilson(k: int, n: int, z: float = Z_99) -> tuple[float, float]:
    """The Wilson score interval of a share k/n: honest for small n and for shares near 0 or 1."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _too_few_requests(rule: str, threshold: float, rules: AlertRules, o: Observations, span: str) -> AlertState:
    return AlertState(rule=rule, state="insufficient_data", threshold=threshold,
                      message=f"not judged: {o.requests} /score requests in the last {span}, "
                              f"fewer than BANKOPS_ALERT_MIN_REQUESTS={rules.min_requests}")


def _failure_rate(rules: AlertRules, o: Observations, span: str) -> AlertState:
    if o.requests < rules.min_requests:
        return _too_few_requests("failure_rate", rules.failure_rate, rules, o, span)
    rate = o.failed / o.requests
    if rate <= rules.failure_rate:
        return AlertState(rule="failure_rate", state="ok", value=rate, threshold=rules.failure_rate,
                          message=f"{rate:.1%} of {o.requests} /score requests failed in the last {span}")
    client = o.failed - o.server_errors
    return AlertState(rule="failure_rate", state="firing", value=rate, threshold=rules.failure_rate,
                      message=f"{rate:.1%} of {o.requests} /score requests failed in the last {span} (threshold "
                              f"{rules.failure_rate:.1%}): {o.server_errors} server errors (5xx: find their request ids "
                              f"with `bankops monitor` and the tracebacks in logs/scoring-service.log), {client} client "
                              f"errors (4xx: callers with a wrong or old key, invalid records or too large bodies; "
                              f"`bankops logs` shows which)")


def _p95_latency(rules: AlertRules, o: Observations, span: str) -> AlertState:
    if o.requests < rules.min_requests or o.p95_ms is None:
        return _too_few_requests("latency_p95", rules.p95_ms, rules, o, span)
    if o.p95_ms <= rules.p95_ms:
        return AlertState(rule="latency_p95", state="ok", value=o.p95_ms, threshold=rules.p95_ms,
                          message=f"p95 of /score was {o.p95_ms:.1f} ms over {o.requests} requests in the last {span}")
    return AlertState(rule="latency_p95", state="firing", value=o.p95_ms, threshold=rules.p95_ms,
                      message=f"p95 of /score was {o.p95_ms:.1f} ms over {o.requests} requests in the last {span} "
                              f"(threshold {rules.p95_ms:g} ms): check the records per request and the machine's load "
                              f"(`bankops monitor`), and add workers (`bankops serve --workers N`) if it is busy")


def _availability(rules: AlertRules, o: Observations, span: str) -> AlertState:
    if o.probes < rules.min_probes:
        return AlertState(rule="availability", state="insufficient_data", threshold=rules.availability,
                          message=f"not judged: {o.probes} availability probes in the last {span}, "
                                  f"fewer than BANKOPS_ALERT_MIN_PROBES={rules.min_probes}")
    share = o.probes_up / o.probes
    if share >= rules.availability:
        return AlertState(rule="availability", state="ok", value=share, threshold=rules.availability,
                          message=f"the scoring service was up for {share:.1%} of {o.probes} probes in the last {span}")
    return AlertState(rule="availability", state="firing", value=share, threshold=rules.availability,
                      message=f"the scoring service was up for {share:.1%} of {o.probes} probes in the last {span} "
                              f"(threshold {rules.availability:.1%}): see logs/scoring-service.log and "
                              f"logs/availability.jsonl; `bankops status` shows whether a version is served, "
                              f"POST /api/redeploy starts it again")


def _drift(rules: AlertRules, o: Observations, span: str) -> AlertState:
    version = f"v{o.model_version}" if o.model_version else "the served version"
    if o.records < rules.drift_min_records:
        return AlertState(rule="prediction_drift", state="insufficient_data",
                          message=f"not judged: {o.records} records scored by {version} in the last {span}, "
                                  f"fewer than BANKOPS_ALERT_DRIFT_MIN_RECORDS={rules.drift_min_records}")
    b = o.baseline
    if b is None:
        return AlertState(rule="prediction_drift", state="insufficient_data",
                          message=f"not judged: {version} has no holdout range of its share of \"yes\" (registered "
                                  f"before bankops recorded it, or trained elsewhere); retrain to get one")
    share = o.predicted_yes / o.records
    low, high = wilson(o.predicted_yes, o.records)
    seen = f"the holdout saw {b.share:.1%} (range {b.low:.1%} to {b.high:.1%})"
    if low <= b.high and high >= b.low:
        return AlertState(rule="prediction_drift", state="ok", value=share, threshold=(b.low, b.high),
                          message=f"{version} predicted \"yes\" for {share:.1%} of {o.records} records in the last {span}; "
                                  f"{seen}")
    return AlertState(rule="prediction_drift", state="firing", value=share, threshold=(b.low, b.high),
                      message=f"{version} predicted \"yes\" for {share:.1%} of {o.records} records in the last {span}, "
                              f"outside what {seen}: the clients scored now differ from the training data, or a caller "
                              f"sends something else; check the records sent (unseen categories: GET /stats) and "
                              f"retrain on recent data (drop it in incoming/, or POST /api/retrain)")


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _no_pipeline(rule: str) -> AlertState:
    return AlertState(rule=rule, state="insufficient_data", message="not judged: no pipeline state was given to the evaluator")


def _run_name(r: RunRecord) -> str:
    return f"training job {r.job_id}" + (f" (run {r.run_id})" if r.run_id else "")


def _retrain_failed(rules: AlertRules, o: Observations, span: str) -> AlertState:
    p = o.pipeline
    if p is None:
        return _no_pipeline("retrain_failed")
    ended = [r for r in p.runs if r.state in ("succeeded", "failed")]
    if not ended:
        return AlertState(rule="retrain_failed", state="insufficient_data", message="not judged: no training run has ended yet")
    last = ended[0]
    at = last.finished.isoformat(timespec="seconds") if last.finished else "?"
    if last.state == "succeeded":
        return AlertState(rule="retrain_failed", state="ok", value=0,
                          message=f"the newest training run succeeded ({_run_name(last)}, ended {at})")
    return AlertState(rule="retrain_failed", state="firing", value=1, threshold=0,
                      message=f"the newest training run failed: {_run_name(last)}, ended {at}: {(last.error or '')[:300]}. "
                              f"Look at GET /api/runs/{last.job_id} and the control-plane log (the run's MLflow or Azure ML "
                              f"job for the step that failed), fix the cause, then POST /api/retrain")


def _retrain_stuck(rules: AlertRules, o: Observations, span: str) -> AlertState:
    p = o.pipeline
    if p is None:
        return _no_pipeline("retrain_stuck")
    running = [r for r in p.runs if r.state == "running" and r.started]
    if not running:
        return AlertState(rule="retrain_stuck", state="ok", value=0, message="no training run is in progress")
    steps = p.usual_steps_s()
    oldest = min(running, key=lambda r: r.started or p.now)
    budget = oldest.budget_s or p.budget_s
    limit = rules.stuck_factor * budget + steps
    took = (p.now - (oldest.started or p.now)).total_seconds()
    said = (f"{_run_name(oldest)} has been running for {_ago(took)} (limit BANKOPS_ALERT_STUCK_FACTOR={rules.stuck_factor:g} "
            f"x budget {_ago(budget)} + usual steps {_ago(steps)} = {_ago(limit)})")
    if took <= limit:
        return AlertState(rule="retrain_stuck", state="ok", value=took, threshold=limit, message=said)
    return AlertState(rule="retrain_stuck", state="firing", value=took, threshold=limit,
                      message=f"{said}: it is stuck. Look at its progress (GET /api/runs/{oldest.job_id}, the control-plane "
                              f"log, the Azure ML job's status); restart the host (the job is queued again) or cancel the "
                              f"Azure ML job, then POST /api/retrain")


def _stale(rule: str, what: str, last: datetime | None, rules: AlertRules, p: PipelineObservations | None,
           todo: str) -> AlertState:
    if p is None:
        return _no_pipeline(rule)
    if p.schedule_interval_s is None:
        return AlertState(rule=rule, state="insufficient_data", message="not judged: RETRAIN_SCHEDULE never fires twice")
    limit = rules.stale_factor * p.schedule_interval_s
    if last is None:
        return AlertState(rule=rule, state="insufficient_data", threshold=limit, message=f"not judged: no {what} yet")
    age = (p.now - last).total_seconds()
    said = (f"the newest {what} is {_ago(age)} old ({last.isoformat(timespec='seconds')}); limit "
            f"BANKOPS_ALERT_STALE_FACTOR={rules.stale_factor:g} x the RETRAIN_SCHEDULE interval {_ago(p.schedule_interval_s)} "
            f"= {_ago(limit)}")
    if age <= limit:
        return AlertState(rule=rule, state="ok", value=age, threshold=limit, message=said)
    return AlertState(rule=rule, state="firing", value=age, threshold=limit, message=f"{said}: {todo}")


def _model_stale(rules: AlertRules, o: Observations, span: str) -> AlertState:
    p = o.pipeline
    return _stale("model_stale", "successful retrain", p.last_success if p else None, rules, p,
                  "check that the timer fires (`bankops status`: next_retrain) and whether the latest runs failed "
                  "(retrain_failed, GET /api/status recent_jobs), then POST /api/retrain")


def _data_stale(rules: AlertRules, o: Observations, span: str) -> AlertState:
    p = o.pipeline
    return _stale("data_stale", "dataset version", p.last_data if p else None, rules, p,
                  "no new data has been registered: check that files still reach incoming/ (the upstream export, the "
                  "Event Grid subscription bankops-data-arrived) and whether they were quarantined (quarantine/*.reason.txt)")


def _metric_out_of_range(rules: AlertRules, o: Observations, span: str) -> AlertState:
    p = o.pipeline
    if p is None:
        return _no_pipeline("metric_out_of_range")
    if not rules.ranges.ranges:
        return AlertState(rule="metric_out_of_range", state="insufficient_data",
                          message="not judged: BANKOPS_METRIC_RANGES sets no range")
    if p.newest_version is None:
        return AlertState(rule="metric_out_of_range", state="insufficient_data", message="not judged: no registered version yet")
    outside = rules.ranges.outside(p.newest_metrics)
    if not outside:
        return AlertState(rule="metric_out_of_range", state="ok",
                          message=f"every holdout metric of v{p.newest_version} is within its range ({rules.ranges.text})")
    first = outside[0]
    return AlertState(rule="metric_out_of_range", state="firing", value=first.value, threshold=first.bound,
                      message=f"v{p.newest_version} (the newest registered version) has {'; '.join(o.reason for o in outside)} "
                              f"on its holdout (BANKOPS_METRIC_RANGES): the gate keeps it out of service. Compare its run "
                              f"with earlier ones (the dashboard's metric trends, MLflow), check the newest data for a "
                              f"shift or bad rows, and retrain (a longer BANKOPS_AUTOML_BUDGET may help)")


JUDGES: dict[str, Callable[[AlertRules, Observations, str], AlertState]] = {
    "failure_rate": _failure_rate, "latency_p95": _p95_latency, "availability": _availability, "prediction_drift": _drift,
    "retrain_failed": _retrain_failed, "retrain_stuck": _retrain_stuck, "model_stale": _model_stale,
    "data_stale": _data_stale, "metric_out_of_range": _metric_out_of_range,
}


def evaluate(rules: AlertRules, observations: Observations, firing: Collection[str] = ()) -> list[AlertState]:
    """Each enabled rule's state; `firing` (the rules firing before) sets the fired/resolved transitions.

    A rule turned off while firing, or without enough data any more, resolves: an alert stays
    firing only while the data shows the problem.
    """
    span = _window(rules.window_s)
    states: list[AlertState] = []
    for rule in RULES:
        if rule in rules.enabled:
            state = JUDGES[rule](rules, observations, span)
        elif rule in firing:
            state = AlertState(rule=rule, state="ok", message="the rule was turned off (BANKOPS_ALERT_RULES)")
        else:
            continue
        was = rule in firing
        if state.state == "firing" and not was:
            state = state.model_copy(update={"transition": "fired"})
        elif state.state != "firing" and was:
            state = state.model_copy(update={"transition": "resolved"})
        states.append(state)
    return states


def observe(logs: Path, window: timedelta, baseline_of: Callable[[str], Baseline | None],
            now: datetime | None = None) -> Observations:
    """The observations of one window, from the request log files and the probes."""
    since = (now or datetime.now(UTC)) - window
    scored = [e for e in read_entries(logs, since) if e.get("route") == SCORE_ROUTE]
    fails = [e for e in scored if failed(e)]
    probes = availability.read_probes(logs, since)
    mixed = [e for e in scored if e.get("predicted_yes") is not None and e.get("records")]
    version = str(mixed[-1].get("model_version")) if mixed and mixed[-1].get("model_version") else None
    served = [e for e in mixed if version is not None and str(e.get("model_version")) == version]
    return Observations(
        window_s=window.total_seconds(), requests=len(scored), failed=len(fails),
        server_errors=sum(1 for e in fails if int(e.get("status", 500)) >= 500),
        p95_ms=percentile([float(e["latency_ms"]) for e in scored if "latency_ms" in e], 95),
        probes=len(probes), probes_up=sum(1 for p in probes if p.get("up")), model_version=version,
        records=sum(int(e["records"]) for e in served), predicted_yes=sum(int(e["predicted_yes"]) for e in served),
        baseline=baseline_of(version) if version else None,
    )


def registry_baselines(registry: Any) -> Callable[[str], Baseline | None]:
    """Look up each version's holdout range once (registered metrics never change)."""
    cache: dict[str, Baseline | None] = {}

    def baseline_of(version: str) -> Baseline | None:
        if version not in cache:
            try:
                cache[version] = Baseline.from_metrics(registry.get(version).metrics)
            except NotFound:
                cache[version] = None
        return cache[version]

    return baseline_of


def read_events(logs: Path) -> list[dict[str, Any]]:
    """Every alert event, oldest first (a line cut by a crash is skipped)."""
    path = logs / EVENTS_FILE
    if not path.is_file():
        return []
    found: list[dict[str, Any]] = []
    for line in path.read_bytes().splitlines():
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict) and "rule" in event:
            found.append(event)
    return found


def firing_now(events: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The rules whose latest event is `firing`, with that event."""
    latest: dict[str, dict[str, Any]] = {}
    for event in events:
        rule = ALIASES.get(str(event["rule"]), str(event["rule"]))
        latest[rule] = event | {"rule": rule}
    return {rule: e for rule, e in latest.items() if e.get("state") == "firing"}


def status_view(logs: Path, recent: int = 20) -> dict[str, Any]:
    """What GET /api/status shows: the firing alerts, the latest events (newest first), the last check."""
    events = read_events(logs)
    state: dict[str, Any] | None = None
    try:
        state = orjson.loads((logs / STATE_FILE).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        state = None
    return {"firing": list(firing_now(events).values()), "recent": events[::-1][:recent], "last_check": state}


def pipeline_verdicts(auto: Any, now: datetime | None = None) -> list[dict[str, Any]]:
    """The pipeline rules judged now from `auto`'s queue, registry and datasets (GET /api/status shows
    them on either backend, with or without an evaluator running)."""
    from shared.monitoring.pipeline_state import observe_pipeline

    rules = AlertRules.from_settings(auto.settings)
    observed = Observations(window_s=rules.window_s, pipeline=observe_pipeline(auto, now))
    return [s.model_dump(mode="json", exclude={"transition"}) for s in evaluate(rules, observed) if s.rule in PIPELINE_RULES]


class AlertEvaluator:
    """Evaluates the rules every `interval_s` seconds in a daemon thread (like the availability probe)."""

    def __init__(self, rules: AlertRules, logs: Path, baseline_of: Callable[[str], Baseline | None], *,
                 interval_s: float, counter: Any = None, gauge: Any = None,
                 pipeline: Callable[[datetime], PipelineObservations] | None = None,
                 notify: Callable[[dict[str, Any]], None] | None = None) -> None:
        """`counter` is the control plane's `bankops_alerts` Counter (labels rule, state) and `gauge` its
        `bankops_alert_firing` Gauge (label rule), if any; `pipeline` reads the pipeline's state at a
        time (without it the pipeline rules are not judged); `notify` takes each transition event
        (the webhook notifier: it must return at once). Without `pipeline` this evaluator judges the
        scoring rules only."""
        if pipeline is None:
            rules = rules.model_copy(update={"enabled": rules.enabled - set(PIPELINE_RULES)})
        self.rules, self.logs, self.baseline_of, self.interval_s = rules, logs, baseline_of, interval_s
        self.counter, self.gauge, self.pipeline, self.notify = counter, gauge, pipeline, notify
        logs.mkdir(parents=True, exist_ok=True)
        self.firing: set[str] = set(firing_now(read_events(logs)))  # a restart neither repeats nor loses an alert
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: datetime | None = None) -> list[AlertState]:
        """Observe, judge, and record every transition; returns every rule's state."""
        now = now or datetime.now(UTC)
        with self._lock:
            observed = observe(self.logs, timedelta(seconds=self.rules.window_s), self.baseline_of, now)
            if self.pipeline is not None and any(r in self.rules.enabled for r in PIPELINE_RULES):
                observed.pipeline = self.pipeline(now)
            states = evaluate(self.rules, observed, self.firing)
            at = now.isoformat(timespec="milliseconds")
            for state in states:
                if state.transition:
                    self._record(state, at)
            self.firing = {s.rule for s in states if s.state == "firing"}
            if self.gauge is not None:
                for s in states:
                    self.gauge.labels(s.rule).set(1 if s.state == "firing" else 0)
            checked = {"timestamp": at, "window_s": self.rules.window_s,
                       "rules": [s.model_dump(mode="json", exclude={"transition"}) for s in states]}
            write_atomically(self.logs / STATE_FILE, orjson.dumps(checked))
        return states

    def _record(self, state: AlertState, at: str) -> None:
        kind = "firing" if state.transition == "fired" else "resolved"
        event = {"timestamp": at, "rule": state.rule, "state": kind, "value": state.value,
                 "threshold": state.threshold, "message": state.message, "window_s": self.rules.window_s}
        with open(self.logs / EVENTS_FILE, "ab") as fh:
            fh.write(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE))
        extra = {"alert_rule": state.rule, "alert_state": kind, "alert_value": state.value,
                 "alert_threshold": list(state.threshold) if isinstance(state.threshold, tuple) else state.threshold}
        log.warning("alert %s: %s: %s", kind, state.rule, state.message, extra=extra)
        if self.counter is not None:
            self.counter.labels(state.rule, kind).inc()
        if self.notify is not None:
            try:
                self.notify(event)
            except Exception:  # a notifier never stops the evaluator
                log.exception("could not hand alert %s to the notifier", state.rule)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="alert-evaluator", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):  # the first check after one interval: the host has started
            try:
                self.run_once()
            except Exception:
                log.exception("alert evaluation failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
