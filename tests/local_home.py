"""A fresh $BANKOPS_HOME with the real local backend, for module-scoped integration fixtures.

MLflow keeps its store URIs in process-wide state and exports them to the environment; this puts
them back when the module is done, so one module's store never leaks into the next.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pytest

from shared.bootstrap import Backend, bootstrap
from shared.config import Settings, load_settings


@contextmanager
def local_home(tmp: Path) -> Iterator[tuple[Settings, Backend]]:
    home = tmp / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BANKOPS_SETTINGS_FILE", str(tmp / "absent.json"))
        uri = f"sqlite:///{home.resolve()}/mlflow.db"
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("MLFLOW_REGISTRY_URI", uri)
        settings = load_settings(home=home)
        try:
            yield settings, bootstrap(settings)
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run()
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)
