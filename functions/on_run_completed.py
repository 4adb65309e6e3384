"""Azure ML RunCompleted (AutoML parent runs) -> register the best model, gate, deploy, smoke test."""

from __future__ import annotations

import azure.functions as func

from functions.on_data_arrived import _as_dict
from functions.runtime import automation
from shared.automation import control

bp = func.Blueprint()


@bp.event_grid_trigger(arg_name="event")
def on_run_completed(event: func.EventGridEvent) -> None:
    """Fired by the workspace's Event Grid subscription on Microsoft.MachineLearningServices.RunCompleted."""
    control.events(automation(), [_as_dict(event)])
