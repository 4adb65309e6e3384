"""RunTracker on MLflow: nested runs in the SQLite tracking store under $BANKOPS_HOME.

Each run records the process that runs it (pid and start time), so a run left RUNNING by a process
killed mid-way (kill -9, a power cut) is recognised on the next start and ended as FAILED.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from shared.errors import NotFound
from shared.ports import RunReport, TrialRecord
from shared.processes import still_running, this_process

_MAX_PARAM = 500


def configure_mlflow(tracking_uri: str, experiment: str, artifacts: Path | None) -> str:
    """Point MLflow at the store and make sure the experiment exists; returns its id.

    `artifacts` None: the server chooses where artifacts go (an Azure ML workspace does).
    """
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        location = (artifacts / experiment).as_uri() if artifacts is not None else None
        experiment_id = client.create_experiment(experiment, artifact_location=location)
    else:
        experiment_id = found.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def _clip(params: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v)[:_MAX_PARAM] for k, v in params.items()}


class MlflowTracker:
    """Each `run()` nests under the active one, as the pipeline's steps do."""

    def __init__(self, tracking_uri: str, experiment: str, artifacts: Path | None) -> None:
        self.experiment_id = configure_mlflow(tracking_uri, experiment, artifacts)
        self.client = MlflowClient(tracking_uri)

    @contextmanager
    def run(self, name: str, *, tags: Mapping[str, str] | None = None) -> Iterator[str]:
        nested = mlflow.active_run() is not None
        pid, started = this_process()
        owner = {"bankops.pid": str(pid), "bankops.process_started": repr(started)}
        with mlflow.start_run(run_name=name, nested=nested, tags=dict(tags or {}) | owner, experiment_id=self.experiment_id) as run:
            yield run.info.run_id

    def end_interrupted(self) -> list[str]:
        """End as FAILED every RUNNING run whose process is gone (or unknown); returns their ids."""
        ended = []
        for run in self.client.search_runs([self.experiment_id], "attributes.status = 'RUNNING'", max_results=5000):
            tags = run.data.tags
            try:
                alive = still_running(int(tags["bankops.pid"]), float(tags["bankops.process_started"]))
            except (KeyError, ValueError):
                alive = False
            if not alive:
                self.client.set_tag(run.info.run_id, "bankops.interrupted", "its process ended before the run did")
                self.client.set_terminated(run.info.run_id, "FAILED")
                ended.append(run.info.run_id)
        return ended

    def log_params(self, params: Mapping[str, Any]) -> None:
        mlflow.log_params(_clip(params))

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})

    def log_artifact(self, path: Path) -> None:
        mlflow.log_artifact(str(path))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        mlflow.set_tags(dict(tags))

    def log_child(self, name: str, *, params: Mapping[str, Any], metrics: Mapping[str, float], tags: Mapping[str, str]) -> None:
        parent = mlflow.active_run()
        all_tags = dict(tags) | {"mlflow.runName": name}
        if parent is not None:
            all_tags["mlflow.parentRunId"] = parent.info.run_id
        run = self.client.create_run(self.experiment_id, tags=all_tags, run_name=name)
        from mlflow.entities import Metric, Param

        self.client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, float(v), 0, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in _clip(params).items()],
        )
        self.client.set_terminated(run.info.run_id, "FINISHED")

    def _children(self, run_id: str, kind: str | None = None) -> list[Any]:
        query = f"tags.mlflow.parentRunId = '{run_id}'"
        if kind:
            query += f" and tags.`bankops.kind` = '{kind}'"
        return self.client.search_runs([self.experiment_id], query, max_results=5000)

    def report(self, run_id: str | None = None) -> RunReport:
        if run_id is None:
            found = self.client.search_runs([self.experiment_id], "tags.`bankops.kind` = 'pipeline'",
                                            order_by=["attributes.start_time DESC"], max_results=1)
            if not found:
                raise NotFound("no training run yet; start one with `bankops train`")
            run = found[0]
        else:
            try:
                run = self.client.get_run(run_id)
            except MlflowException as exc:
                raise NotFound(f"no run with id {run_id!r}; `bankops runs` shows the newest") from exc
            while run.data.tags.get("bankops.kind") != "pipeline" and run.data.tags.get("mlflow.parentRunId"):
                run = self.client.get_run(run.data.tags["mlflow.parentRunId"])
        steps = {r.info.run_name: r for r in self._children(run.info.run_id)}
        trials = []
        if "automl" in steps:
            for t in self._children(steps["automl"].info.run_id, "trial"):
                trials.append(TrialRecord(
                    learner=t.data.params.get("learner", "?"), cv_score=t.data.metrics.get("cv_score", float("nan")),
                    train_time_s=t.data.metrics.get("train_time_s", float("nan")),
                    params={k: v for k, v in t.data.params.items() if k != "learner"},
                ))
        holdout = dict(steps["evaluate"].data.metrics) if "evaluate" in steps else {}
        started = datetime.fromtimestamp(run.info.start_time / 1000, UTC).isoformat(timespec="seconds")
        return RunReport(run_id=run.info.run_id, status=run.info.status, started_at=started, params=dict(run.data.params),
                         tags={k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
                         holdout_metrics=holdout, trials=trials)
