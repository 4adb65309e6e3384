"""RunTracker on the workspace's MLflow endpoint: the local MlflowTracker, pointed at Azure ML.

An Azure ML workspace is an MLflow tracking server, so nothing is re-implemented here; only
the tracking URI (and its bearer token) comes from the workspace.
"""

from __future__ import annotations

import time
from typing import Any

from shared.adapters.azure.workspace import mlflow_tracking_uri
from shared.adapters.local.tracking import MlflowTracker

TOKEN_REFRESH_S = 40 * 60  # Entra tokens last about an hour


def workspace_tracker(ml_client: Any, experiment: str, *, credential: Any = None) -> MlflowTracker:
    return MlflowTracker(mlflow_tracking_uri(ml_client, credential), experiment, None)


class WorkspaceRuns:
    """Read-only MLflow access to the workspace's runs (AutoML tags and metrics), its token renewed before it expires."""

    def __init__(self, ml_client: Any, credential: Any = None) -> None:
        self.ml, self.credential = ml_client, credential
        self._client: Any = None
        self._fetched = 0.0

    def _fresh(self) -> Any:
        if self._client is None or time.monotonic() - self._fetched > TOKEN_REFRESH_S:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(mlflow_tracking_uri(self.ml, self.credential))  # also renews MLFLOW_TRACKING_TOKEN
            self._fetched = time.monotonic()
        return self._client

    def get_run(self, run_id: str) -> Any:
        return self._fresh().get_run(run_id)


def workspace_runs(ml_client: Any, *, credential: Any = None) -> WorkspaceRuns:
    return WorkspaceRuns(ml_client, credential)
