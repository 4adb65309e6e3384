"""Azure ML run events of bankops' training pipeline runs: RunCompleted -> register the AutoML step's best model,
gate, deploy, smoke test; RunStatusChanged Failed/Canceled -> the retrain is recorded as failed."""

from __future__ import annotations

import azure.functions as func

from functions.on_data_arrived import _as_dict
from functions.runtime import automation
from shared.automation import control

bp = func.Blueprint()


@bp.event_grid_trigger(arg_name="event")
def on_run_completed(event: func.EventGridEvent) -> None:
    """Fired by the workspace's subscriptions bankops-run-completed (RunCompleted) and bankops-run-failed
    (RunStatusChanged), both filtered to data.runType azureml.PipelineRun; other runs are ignored."""
    control.events(automation(), [_as_dict(event)])
