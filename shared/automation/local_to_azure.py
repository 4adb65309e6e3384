"""A model trained here, rolled out on Azure: registered in the workspace, then deployed by the
same handler (and so the same blue/green steps, smoke test and champion alias) as a version the
Azure ML pipeline trained.

The MLflow model carries its code and pinned requirements (shared/mlflow_model.py), so the
workspace's copy is the same model a managed online deployment can load. Registering is done
once per local version: the workspace version is found again by its `bankops_local_*` tags.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shared.automation.handlers import Automation, on_deploy
from shared.automation.messages import Deploy
from shared.errors import InProgress
from shared.mlflow_model import example_frame
from shared.ports import ModelRegistry, ModelVersion
from shared.serving.contract import EXAMPLE_RECORDS

SOURCE_TAG, LOCAL_VERSION_TAG, LOCAL_RUN_TAG = "bankops_source", "bankops_local_version", "bankops_local_run"


def register_local_version(local: ModelRegistry, workspace: ModelRegistry, version: str) -> tuple[ModelVersion, bool]:
    """The workspace version of local `version` (registered now unless it already is); and whether it was new."""
    source = local.get(str(version))
    for found in workspace.list():
        if found.tags.get(SOURCE_TAG) == "local" and found.tags.get(LOCAL_RUN_TAG) == source.run_id \
                and found.tags.get(LOCAL_VERSION_TAG) == source.version:
            return found, False
    tags = {**source.tags, SOURCE_TAG: "local", LOCAL_VERSION_TAG: source.version, LOCAL_RUN_TAG: source.run_id}
    registered = workspace.register(local.load(source.version), run_id=source.run_id, metrics=source.metrics, tags=tags,
                                    input_example=example_frame(EXAMPLE_RECORDS))
    return registered, True


def deploy_local_version(local: ModelRegistry, auto: Automation, version: str, *, wait_s: float,
                         sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Register local `version` in the workspace of `auto` and deploy it there as `/api/redeploy` would.

    Azure ML provisions for minutes: each step that is not done yet (InProgress) is retried after
    its `retry_after_s` until `wait_s` have passed; then InProgress says to run the command again
    (every step is idempotent, so a second run continues where this one stopped)."""
    registered, created = register_local_version(local, auto.registry, version)
    deadline = clock() + wait_s
    while True:
        try:
            result = on_deploy(auto, Deploy(model_version=registered.version, reason=f"local v{version} deployed from the CLI"))
            return {"local_version": str(version), "workspace_version": registered.version, "registered_now": created, **result}
        except InProgress as step:
            if clock() + step.retry_after_s > deadline:
                raise InProgress(f"workspace v{registered.version} (local v{version}): {step.message}; still in progress after "
                                 f"{wait_s:.0f}s: run the same command again to continue", retry_after_s=step.retry_after_s) from None
            sleep(step.retry_after_s)
