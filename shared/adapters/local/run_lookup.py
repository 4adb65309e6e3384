"""RunLookup on the local tracker: local pipeline runs finish in this process and register their model
themselves, so no event ever needs this to find one; it answers from the tracking store all the same."""

from __future__ import annotations

import math

from shared.errors import NotFound
from shared.ports import AutoMLResult, RunTracker

MAX_FAILURE = 300


class LocalRunLookup:
    def __init__(self, tracker: RunTracker) -> None:
        self.tracker = tracker

    def best_child(self, pipeline_run: str) -> AutoMLResult:
        """The best trial of the run's AutoML step; the trials are recorded under the pipeline run, which names them."""
        report = self.tracker.report(pipeline_run)
        scored = [t for t in report.trials if not math.isnan(t.cv_score)]
        if not scored:
            raise NotFound(f"run {pipeline_run} has no AutoML trial (it failed or is still running: `bankops runs {pipeline_run}`)")
        best = max(scored, key=lambda t: t.cv_score)
        metrics = dict(report.holdout_metrics) or {"cv_score": best.cv_score}
        return AutoMLResult(pipeline_run=report.run_id, automl_run=report.run_id, best_child_run=report.run_id,
                            metrics=metrics, dataset=report.params.get("dataset", ""))

    def failure(self, run_id: str) -> str:
        try:
            report = self.tracker.report(run_id)
        except NotFound as exc:
            return str(exc)[:MAX_FAILURE]
        return (f"local pipeline run {report.run_id} ended {report.status}; its steps: `bankops runs {report.run_id}`, "
                "the host's log: logs/control-plane.log")[:MAX_FAILURE]
