"""Azure ML provisioning states, read the same way for online and batch endpoints and deployments.

Creating or updating one takes minutes, so the adapters never wait: while Azure ML is busy they
raise InProgress, which the work queue turns into a retry later.
"""

from __future__ import annotations

from typing import Any

from shared.errors import BackendUnavailable, InProgress

BUSY = {"creating", "updating", "deleting", "provisioning"}
FAILED = {"failed", "canceled"}


def state(entity: Any) -> str:
    return str(getattr(entity, "provisioning_state", "") or "").lower()


def raise_while_busy(entity: Any, what: str, retry_after_s: float) -> None:
    """InProgress while Azure ML is still creating, updating or deleting `what`."""
    if state(entity) in BUSY:
        raise InProgress(f"{what} is {state(entity)}", retry_after_s=retry_after_s)


def raise_unless_ready(entity: Any, what: str, retry_after_s: float, *, if_failed: str) -> None:
    """InProgress while `what` is being provisioned; BackendUnavailable, saying `if_failed` (what to
    do), when its provisioning failed."""
    raise_while_busy(entity, what, retry_after_s)
    if state(entity) in FAILED:
        raise BackendUnavailable(f"{what} is {entity.provisioning_state}; {if_failed}")
