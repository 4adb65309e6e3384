"""What the pipeline rules look at: the training runs, newest registered version and newest data.

Read from what both backends already keep, so the same rules judge `bankops up` and the function
app: the work queue's job records (local SQLite, or the `bankopsjobs` table on Azure), the model
registry and the dataset store. A training run is a `RequestTraining` job:

- running locally: in progress since its `started_at` (the handler records it with `budget_s`);
- done with outcome `trained`: succeeded; `submitted` (Azure ML): in progress until a job that
  names its `run_id` ends it: a `RunCompleted` job (succeeded; dead: failed with its error), or any
  job whose result has outcome `failed` or `canceled` with that `run_id` (how the RunStatusChanged
  handler records a failed or canceled pipeline run);
- dead: failed, with its error (a dead letter).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel

from shared.automation.schedule import ncrontab_trigger

FAILED_OUTCOMES = ("failed", "canceled", "cancelled")
DEFAULT_STEPS_S = 120.0  # validate, register, evaluate, log: before any run has been timed
RECENT_JOBS = 200


class RunRecord(BaseModel):
    """One training run as the rules and the dashboard's trend see it."""

    job_id: str
    run_id: str | None = None
    state: Literal["queued", "running", "succeeded", "failed"]
    started: datetime | None = None
    finished: datetime | None = None
    budget_s: float | None = None
    trials: int | None = None
    model_version: str | None = None
    reason: str = ""  # why it ran (its trigger)
    error: str | None = None  # why it failed

    @property
    def duration_s(self) -> float | None:
        return (self.finished - self.started).total_seconds() if self.started and self.finished else None


class PipelineObservations(BaseModel):
    """The pipeline's state at `now`."""

    now: datetime
    runs: list[RunRecord]  # newest first
    budget_s: float  # the configured AutoML budget (the run's own when it recorded one)
    schedule_interval_s: float | None  # the time between two RETRAIN_SCHEDULE firings
    last_success: datetime | None = None  # the newest successful retrain (or registered version)
    last_data: datetime | None = None  # the newest dataset version
    newest_version: str | None = None
    newest_metrics: dict[str, float] = {}

    def usual_steps_s(self) -> float:
        """The median time successful runs took beyond their AutoML budget (DEFAULT_STEPS_S before any)."""
        extra = [max(0.0, r.duration_s - (r.budget_s or self.budget_s)) for r in self.runs
                 if r.state == "succeeded" and r.duration_s is not None]
        return statistics.median(extra) if extra else DEFAULT_STEPS_S


def _at(text: Any) -> datetime | None:
    try:
        at = datetime.fromisoformat(str(text))
    except (TypeError, ValueError):
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def schedule_interval(expression: str, now: datetime) -> float | None:
    """Seconds between the next two firings of an NCRONTAB expression (None if it never fires twice)."""
    trigger = ncrontab_trigger(expression)
    first = trigger.get_next_fire_time(None, now)
    second = trigger.get_next_fire_time(first, first + timedelta(seconds=1)) if first else None
    return (second - first).total_seconds() if first and second else None


def training_runs(jobs: Iterable[Any]) -> list[RunRecord]:
    """The training runs among queue jobs (newest first, as `WorkQueue.recent` lists them), newest first.

    Jobs are ordered by `created_at`; jobs of the same second keep the queue's order."""
    ordered = sorted(list(jobs)[::-1], key=lambda j: str(j.created_at))
    ends: dict[str, Any] = {}  # run_id -> the job that ended it
    for job in ordered:
        run_id = job.result.get("run_id") or job.payload.get("run_id")
        if not run_id or job.kind == "RequestTraining":
            continue
        if (job.kind == "RunCompleted" and job.status in ("done", "dead")) or job.result.get("outcome") in FAILED_OUTCOMES:
            ends[str(run_id)] = job
    runs: list[RunRecord] = []
    for job in (j for j in ordered if j.kind == "RequestTraining"):
        r = job.result
        started = _at(r.get("started_at")) or (_at(job.updated_at) if job.status == "running" else None)
        record = RunRecord(job_id=job.job_id, run_id=r.get("run_id"), state="queued", started=started,
                           budget_s=r.get("budget_s"), trials=r.get("trials"), model_version=r.get("model_version"),
                           reason=str(job.payload.get("reason", "")))
        if job.status == "running":
            record.state = "running"
        elif job.status == "dead":
            record.state, record.finished, record.error = "failed", _at(job.updated_at), job.error or "dead letter"
        elif job.status == "done" and r.get("outcome") == "submitted":
            end = ends.get(str(r.get("run_id")))
            if end is None:
                record.state, record.started = "running", record.started or _at(job.updated_at)
            elif end.kind == "RunCompleted" and end.status == "done":
                record.state, record.finished = "succeeded", _at(end.updated_at)
                record.model_version = end.result.get("model_version") or end.payload.get("model_version") or None
            else:
                record.state, record.finished = "failed", _at(end.updated_at)
                record.error = end.error or str(end.result.get("reason") or end.result.get("outcome"))
        elif job.status == "done":
            record.state, record.finished = "succeeded", _at(job.updated_at)
        elif job.status == "queued" and job.error:
            record.error = job.error  # a failed attempt, retried
        runs.append(record)
    return runs[::-1]


def observe_pipeline(auto: Any, now: datetime | None = None) -> PipelineObservations:
    """The pipeline's state from `auto` (an Automation): its queue, registry, datasets and settings."""
    now = now or datetime.now(UTC)
    s = auto.settings
    runs = training_runs(auto.queue.recent(RECENT_JOBS))
    versions: Sequence[Any] = auto.registry.list()
    datasets: Sequence[Any] = auto.datasets.list(s.dataset_name)
    successes = [r.finished for r in runs if r.state == "succeeded" and r.finished]
    successes += [t for t in (_at(v.created_at) for v in versions) if t]  # `bankops train` registers outside the queue
    newest = max(versions, key=lambda v: int(v.version) if str(v.version).isdigit() else 0) if versions else None
    data_times = [t for t in (_at(d.created_at) for d in datasets) if t]
    budget = float(s.automl_budget_s) if s.backend == "local" else float(s.automl_timeout_minutes) * 60
    return PipelineObservations(
        now=now, runs=runs, budget_s=budget, schedule_interval_s=schedule_interval(s.retrain_schedule, now),
        last_success=max(successes) if successes else None, last_data=max(data_times) if data_times else None,
        newest_version=newest.version if newest else None,
        newest_metrics={k: float(v) for k, v in newest.metrics.items()} if newest else {},
    )
