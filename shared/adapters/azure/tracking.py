"""RunTracker on the workspace's MLflow endpoint: the local MlflowTracker, pointed at Azure ML.

An Azure ML workspace is an MLflow tracking server, so nothing is re-implemented here; only
the tracking URI (and its bearer token) comes from the workspace.
"""

from __future__ import annotations

from typing import Any

from shared.adapters.azure.workspace import mlflow_tracking_uri
from shared.adapters.local.tracking import MlflowTracker


def workspace_tracker(ml_client: Any, experiment: str, *, credential: Any = None) -> MlflowTracker:
    return MlflowTracker(mlflow_tracking_uri(ml_client, credential), experiment, None)


def workspace_runs(ml_client: Any, *, credential: Any = None) -> Any:
    """A read-only MlflowClient on the workspace (AutoML runs' tags and metrics)."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(mlflow_tracking_uri(ml_client, credential))
