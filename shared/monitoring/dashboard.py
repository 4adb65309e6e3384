"""The data document behind the dashboard page (`GET /api/dashboard`): one JSON answer per refresh.

Everything comes from what the host already keeps, so the page needs no store of its own: the
request log (requests, failures, latency, prediction mix and served version per time bucket), the
availability probes, the work queue (deploy and rollback events, training runs), the registry
(versions and their holdout metrics) and `control.status` (champion, availability, alerts).
Series are columnar (one list per measure, aligned with `t`, the bucket starts in epoch ms), so
the page draws them without reshaping; a bucket without data holds 0 for counts and None for
measures that need data (percentiles, availability).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from shared.automation import control
from shared.errors import InvalidInput
from shared.monitoring import availability
from shared.monitoring.monitor import failed, percentile
from shared.monitoring.pipeline_state import training_runs
from shared.monitoring.ranges import MetricRanges
from shared.monitoring.request_log import read_entries
from shared.ports import CHAMPION, PREVIOUS, ModelVersion

if TYPE_CHECKING:
    from shared.automation.handlers import Automation
    from shared.automation.work_queue import Job

STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
MAX_WINDOW = timedelta(days=7)
SCORE_ROUTE = "/score"
RUN_METRICS = ("AUC_weighted", "accuracy", "recall_yes", "precision_yes", "f1_score_weighted", "log_loss", "cv_score")
DEPLOY_KINDS = ("Deploy", "Rollback", "RunCompleted")
T = TypeVar("T")


@dataclass(frozen=True)
class Grid:
    """`count` buckets of `step_s` seconds ending at a step boundary at or after now."""

    start: datetime
    step_s: int
    count: int

    @classmethod
    def over(cls, window: timedelta, now: datetime, target: int = 60) -> Grid:
        """About `target` buckets of a round size (1 s .. 1 d) covering `window` up to `now`."""
        wanted = window.total_seconds() / target
        step = next((s for s in STEPS_S if s >= wanted), STEPS_S[-1])
        end = math.ceil(now.timestamp() / step) * step
        count = max(1, math.ceil(window.total_seconds() / step))
        return cls(datetime.fromtimestamp(end - count * step, UTC), step, count)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.step_s * self.count)

    def index(self, timestamp: str) -> int | None:
        """The bucket of an ISO timestamp, None outside the grid or unreadable."""
        try:
            at = datetime.fromisoformat(timestamp)
        except (TypeError, ValueError):
            return None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        i = math.floor((at - self.start).total_seconds() / self.step_s)
        return i if 0 <= i < self.count else None

    def times_ms(self) -> list[int]:
        first = int(self.start.timestamp() * 1000)
        return [first + i * self.step_s * 1000 for i in range(self.count)]


def _buckets(grid: Grid, items: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    found: list[list[dict[str, Any]]] = [[] for _ in range(grid.count)]
    for item in items:
        i = grid.index(str(item.get("timestamp", "")))
        if i is not None:
            found[i].append(item)
    return found


def traffic_series(entries: Sequence[dict[str, Any]], probes: Sequence[dict[str, Any]], grid: Grid) -> dict[str, list[Any]]:
    """Per bucket: requests by outcome, /score latency percentiles, predicted yes/no, availability, served version."""
    series: dict[str, list[Any]] = {k: [] for k in ("requests_ok", "client_errors", "server_errors", "p50_ms", "p95_ms", "p99_ms",
                                                     "yes", "no", "availability_pct", "served_version")}
    for bucket, checks in zip(_buckets(grid, entries), _buckets(grid, probes), strict=True):
        statuses = [int(e.get("status", 500)) for e in bucket]
        series["requests_ok"].append(sum(1 for s in statuses if s < 400))
        series["server_errors"].append(sum(1 for s in statuses if s >= 500))
        series["client_errors"].append(sum(1 for s in statuses if 400 <= s < 500))
        scores = [e for e in bucket if e.get("route") == SCORE_ROUTE]
        latencies = [float(e["latency_ms"]) for e in scores if e.get("latency_ms") is not None]
        for q in (50, 95, 99):
            series[f"p{q}_ms"].append(percentile(latencies, q))
        yes, no = _mix(scores)
        series["yes"].append(yes)
        series["no"].append(no)
        series["availability_pct"].append(availability.availability(list(checks))["availability_pct"])
        answered = [str(e["model_version"]) for e in scores if e.get("model_version") and not failed(e)]
        series["served_version"].append(answered[-1] if answered else None)
    return series


def _mix(entries: Iterable[dict[str, Any]]) -> tuple[int, int]:
    """(yes, no) records; entries written before the log had `predicted_yes` are left out."""
    yes = no = 0
    for e in entries:
        if e.get("predicted_yes") is None or e.get("records") is None:
            continue
        yes += int(e["predicted_yes"])
        no += int(e["records"]) - int(e["predicted_yes"])
    return yes, no


def prediction_mix(entries: Sequence[dict[str, Any]], served: ModelVersion | None) -> dict[str, Any]:
    """Totals of the window and, when the served version has one, the yes-share range seen on its holdout."""
    yes, no = _mix(e for e in entries if e.get("route") == SCORE_ROUTE)
    metrics = dict(served.metrics) if served else {}
    low, high = metrics.get("predicted_yes_share_low"), metrics.get("predicted_yes_share_high")
    return {"yes": yes, "no": no, "yes_share": round(yes / (yes + no), 4) if yes + no else None,
            "holdout_range": [low, high] if low is not None and high is not None else None,
            "holdout_version": served.version if served and low is not None else None}


def deploy_events(jobs: Iterable[Job]) -> list[dict[str, Any]]:
    """Deploys and rollbacks from the queue's jobs, newest first; a failed deploy or rollback job is an event too."""
    events: list[dict[str, Any]] = []
    for job in jobs:
        if job.kind not in DEPLOY_KINDS:
            continue
        outcome = job.result.get("outcome")
        if job.status == "dead" and job.kind != "RunCompleted":
            kind, version = ("rollback" if job.kind == "Rollback" else "deploy"), job.payload.get("model_version") or None
        elif job.status == "done" and outcome in ("deployed", "rolled_back"):
            kind = "rollback" if job.kind == "Rollback" or outcome == "rolled_back" else "deploy"
            version = job.result.get("model_version")
        else:
            continue
        events.append({"at": job.updated_at, "at_ms": _ms(job.updated_at), "kind": kind, "ok": job.status == "done",
                       "model_version": str(version) if version else None, "failed_version": job.result.get("failed_version"),
                       "reason": job.result.get("reason") or job.payload.get("reason") or "", "error": job.error or None,
                       "job_id": job.job_id, "trigger": job.kind})
    return sorted(events, key=lambda e: e["at"], reverse=True)


def pipeline_runs(jobs: Sequence[Job], versions: Sequence[ModelVersion], limit: int = 10) -> list[dict[str, Any]]:
    """The latest training runs, newest first: the queue's training jobs (with their gate decision) joined
    with the registry's versions and metrics; a version registered outside the queue (`bankops train`) is a run too."""
    by_version = {v.version: v for v in versions}
    gates: dict[str, dict[str, Any]] = {}
    for job in sorted((j for j in jobs if j.kind == "RunCompleted" and j.status == "done"), key=lambda j: j.updated_at):
        challenger = job.result.get("failed_version") or job.result.get("model_version") or job.payload.get("model_version")
        if challenger:
            gates[str(challenger)] = {"outcome": job.result.get("outcome"), "reason": job.result.get("gate") or job.result.get("reason")}
    runs: list[dict[str, Any]] = []
    linked: set[str] = set()
    for job in (j for j in jobs if j.kind == "RequestTraining"):
        version = str(job.result["model_version"]) if job.result.get("model_version") else None
        if version:
            linked.add(version)
        runs.append(_run(by_version.get(version) if version else None, gates.get(version or ""), started=job.created_at,
                         status=job.status, reason=str(job.payload.get("reason", "")), job=job))
    for v in versions:
        if v.version not in linked:
            runs.append(_run(v, gates.get(v.version), started=v.created_at, status="registered", reason="registered outside the host"))
    runs.sort(key=lambda r: (r["started"], int(r["model_version"]) if str(r["model_version"]).isdigit() else 0), reverse=True)
    return runs[:limit]


def _run(mv: ModelVersion | None, gate: dict[str, Any] | None, *, started: str, status: str, reason: str,
         job: Job | None = None) -> dict[str, Any]:
    result = job.result if job else {}
    return {"started": started, "finished": job.updated_at if job and job.status in ("done", "dead") else None,
            "status": status, "outcome": result.get("outcome"), "reason": reason, "job_id": job.job_id if job else None,
            "model_version": mv.version if mv else result.get("model_version"),
            "run_id": result.get("run_id") or (mv.run_id if mv else None),
            "dataset": result.get("dataset") or (mv.tags.get("dataset") if mv else None), "trials": result.get("trials"),
            "metrics": {k: mv.metrics[k] for k in RUN_METRICS if mv and k in mv.metrics}, "gate": gate,
            "error": (job.error or None) if job else None}


TREND_METRICS = ("AUC_weighted", "accuracy", "recall_yes", "precision_yes", "f1_score_weighted", "log_loss")


def metric_trends(versions: Sequence[ModelVersion], ranges: MetricRanges, limit: int = 30) -> list[dict[str, Any]]:
    """Each holdout metric across the newest `limit` versions (oldest first) with its configured range, so a
    slow decay shows before `metric_out_of_range` fires. The shown metrics, plus any metric given a range."""
    shown = list(versions)[-limit:]
    names = list(TREND_METRICS) + [m for m in ranges.ranges if m not in TREND_METRICS]
    trends = []
    for name in names:
        points = [{"version": v.version, "at_ms": _ms(v.created_at), "value": float(v.metrics[name])}
                  for v in shown if name in v.metrics]
        bound = ranges.ranges.get(name)
        if points or bound:
            trends.append({"metric": name, "low": bound.low if bound else None, "high": bound.high if bound else None,
                           "points": points})
    return trends


def run_trend(jobs: Sequence[Job], versions: Sequence[ModelVersion] = (), limit: int = 50) -> list[dict[str, Any]]:
    """Pipeline runs over time, oldest first: when each started, how long it took, how it ended, its trials.
    A version registered outside the queue (`bankops train`) is a run too, at its registration time."""
    found: list[dict[str, Any]] = [{"job_id": r.job_id, "at_ms": int(at.timestamp() * 1000), "duration_s": r.duration_s, "state": r.state,
              "trials": r.trials, "model_version": r.model_version, "error": r.error}
             for r in training_runs(jobs) if (at := r.started or r.finished) is not None]
    linked = {str(r["model_version"]) for r in found if r["model_version"]}
    found += [{"job_id": None, "at_ms": _ms(v.created_at), "duration_s": None, "state": "registered", "trials": None,
               "model_version": v.version, "error": None} for v in versions if v.version not in linked and _ms(v.created_at)]
    found.sort(key=lambda r: r["at_ms"])
    return found[-limit:]


def version_rows(versions: Sequence[ModelVersion], aliases: dict[str, str | None], limit: int = 10) -> list[dict[str, Any]]:
    """The newest versions first; `aliases` (alias -> version) fills in what a registry listing leaves out (MLflow's search does)."""
    rows = []
    for v in list(versions)[::-1][:limit]:
        named = set(v.aliases) | {alias for alias, target in aliases.items() if target == v.version}
        rows.append({"version": v.version, "created_at": v.created_at, "dataset": v.tags.get("dataset"),
                     "AUC_weighted": v.metrics.get("AUC_weighted"), "aliases": sorted(named),
                     "provisional": v.tags.get("provisional") == "true"})
    return rows


def _ms(timestamp: str) -> int | None:
    try:
        at = datetime.fromisoformat(timestamp)
    except (TypeError, ValueError):
        return None
    return int((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() * 1000)


def _guarded(problems: list[str], what: str, read: Callable[[], T], default: T) -> T:
    """A part that cannot be read is reported on the page instead of failing the whole document."""
    try:
        return read()
    except Exception as exc:
        problems.append(f"{what}: {type(exc).__name__}: {exc}")
        return default


def build(auto: Automation, window: timedelta, *, now: datetime | None = None, next_schedule: str | None = None,
          buckets: int = 60) -> dict[str, Any]:
    """The whole document for a window ending now."""
    if window > MAX_WINDOW:
        raise InvalidInput(f"the dashboard shows at most {MAX_WINDOW.days} days; ask for a shorter window")
    now = now or datetime.now(UTC)
    grid = Grid.over(window, now, buckets)
    logs = auto.settings.paths.logs
    problems: list[str] = []
    entries: list[dict[str, Any]] = _guarded(problems, "request log", lambda: read_entries(logs, grid.start), [])
    probes: list[dict[str, Any]] = _guarded(problems, "availability probes", lambda: availability.read_probes(logs, grid.start), [])
    status: dict[str, Any] = _guarded(problems, "status", lambda: control.status(auto, next_schedule), {})
    jobs: list[Job] = _guarded(problems, "work queue", lambda: auto.queue.recent(500), [])
    versions: list[ModelVersion] = _guarded(problems, "model registry", auto.registry.list, [])
    previous = _guarded(problems, "model registry", lambda: auto.registry.alias(PREVIOUS), None)
    champion = (status.get("champion") or {}).get("model_version")
    endpoint = status.get("endpoint") or {}
    serving = endpoint.get("serving_version")
    served = next((v for v in versions if v.version == str(serving)), None)
    scores = [e for e in entries if e.get("route") == SCORE_ROUTE]
    score_latency = [float(e["latency_ms"]) for e in scores if e.get("latency_ms") is not None]
    fails = sum(1 for e in entries if failed(e))
    return {
        "generated_at": now.isoformat(timespec="seconds"),
        "window_s": window.total_seconds(), "bucket_s": grid.step_s,
        "start_ms": int(grid.start.timestamp() * 1000), "end_ms": int(grid.end.timestamp() * 1000),
        "summary": {
            "requests": len(entries), "failed": fails, "failed_pct": round(100 * fails / len(entries), 2) if entries else None,
            "by_status": dict(sorted(Counter(str(e.get("status")) for e in entries).items())),
            "score_requests": len(scores), "score_failed": sum(1 for e in scores if failed(e)),
            "p50_ms": percentile(score_latency, 50), "p95_ms": percentile(score_latency, 95), "p99_ms": percentile(score_latency, 99),
            "records": sum(int(e.get("records") or 0) for e in scores),
        },
        "series": {"t": grid.times_ms(), **traffic_series(entries, probes, grid)},
        "prediction_mix": prediction_mix(entries, served),
        "availability": endpoint.get("availability"),
        "champion": champion,
        "champion_provisional": bool((status.get("champion") or {}).get("provisional")),
        "serving_version": serving,
        "next_retrain": status.get("next_retrain"),
        "versions": version_rows(versions, {CHAMPION: champion, PREVIOUS: previous.version if previous else None}),
        "events": deploy_events(jobs)[:20],
        "runs": pipeline_runs(jobs, versions),
        "trends": {"metrics": metric_trends(versions, auto.ranges),
                   "runs": _guarded(problems, "run history", lambda: run_trend(jobs, versions), list[dict[str, Any]]())},
        "alerts": status.get("alerts"),
        "dead_letters": status.get("dead_letters", []),
        "problems": problems,
    }
