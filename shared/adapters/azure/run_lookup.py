"""RunLookup on Azure ML: from the pipeline run an Event Grid event names to its AutoML step's best child.

The pipeline job's children come from `jobs.list(parent_job_name=...)`; the AutoML step is the child of
type `automl`; its best child is the MLflow tag `automl_best_child_run_id` of the AutoML run, read
through the workspace's MLflow endpoint (the v2 SDK's Job entities carry no metrics), as are the
child's metrics.
"""

from __future__ import annotations

import math
from typing import Any

from shared.errors import BackendUnavailable, NotFound
from shared.ports import AutoMLResult

BEST_CHILD_TAG = "automl_best_child_run_id"
DATASET_TAGS = ("bankops_dataset", "dataset")
MAX_FAILURE = 300


class AzureRunLookup:
    def __init__(self, ml_client: Any, runs: Any = None) -> None:
        """`runs`: an MlflowClient on the workspace's tracking URI (read only)."""
        self.ml, self.runs = ml_client, runs

    def _job(self, run_id: str) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.ml.jobs.get(run_id)
        except ResourceNotFoundError as exc:
            raise NotFound(f"no Azure ML job named {run_id[:100]!r} in this workspace") from exc

    def best_child(self, pipeline_run: str) -> AutoMLResult:
        job = self._job(pipeline_run)
        automl = job
        if job.type == "pipeline":
            automl = next((j for j in self.ml.jobs.list(parent_job_name=pipeline_run) if j.type == "automl"), None)
            if automl is None:
                raise NotFound(f"pipeline job {pipeline_run} has no AutoML step")
        elif job.type != "automl":
            raise NotFound(f"job {pipeline_run} is a {job.type} job, not a pipeline with an AutoML step")
        if self.runs is None:
            raise BackendUnavailable("reading AutoML results needs the workspace's MLflow endpoint; none was configured")
        best = self.runs.get_run(automl.name).data.tags.get(BEST_CHILD_TAG)
        if not best:
            raise NotFound(f"AutoML job {automl.name} ({automl.status}) has no best child run yet")
        metrics = {k: float(v) for k, v in self.runs.get_run(best).data.metrics.items()
                   if isinstance(v, float | int) and math.isfinite(v)}
        tags = {**(job.tags or {}), **(automl.tags or {})}
        dataset = next((str(tags[k]) for k in DATASET_TAGS if tags.get(k)), "")
        return AutoMLResult(pipeline_run=pipeline_run, automl_run=automl.name, best_child_run=str(best), metrics=metrics,
                            dataset=dataset)

    def failure(self, run_id: str) -> str:
        try:
            job = self._job(run_id)
        except NotFound as exc:
            return str(exc)[:MAX_FAILURE]
        where = getattr(job, "studio_url", None) or f"the job {run_id} in Azure ML studio"
        failed = [c.name for c in self.ml.jobs.list(parent_job_name=run_id) if str(c.status).lower() in ("failed", "canceled")]
        steps = f" (failed steps: {', '.join(failed[:3])})" if failed else ""
        return f"Azure ML pipeline run {run_id} ended {job.status}{steps}; its logs: {where}"[:MAX_FAILURE]
