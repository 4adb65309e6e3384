"""Commands (imperative) and events (past tense) that flow between triggers and handlers.

Every message carries an id: Event Grid delivers at least once and may reorder, so handlers
record ids in a ledger and do the work once. `to_dict`/`from_dict` let the durable queue store
them as JSON.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Message:
    kind: ClassVar[str] = "message"
    message_id: str = field(default_factory=new_id, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class DataArrived(Message):
    """A file landed in the `incoming` area (Storage BlobCreated, or the local watcher)."""

    kind: ClassVar[str] = "DataArrived"
    blob: str  # container-relative name, e.g. "incoming/new.csv"
    etag: str  # changes with every write of the blob; with `blob` it keys one arrival
    sequencer: str = ""  # Event Grid's per-blob order; newer sorts after older
    api: str = "PutBlob"


@dataclass(frozen=True)
class BatchArrived(Message):
    """A client list landed in the `batch` area: score it with the champion into `predictions`."""

    kind: ClassVar[str] = "BatchArrived"
    blob: str  # e.g. "batch/clients.csv"
    etag: str
    sequencer: str = ""
    api: str = "PutBlob"


@dataclass(frozen=True)
class RequestTraining(Message):
    """Train on a dataset version (default: the newest). Concurrent requests collapse into one run."""

    kind: ClassVar[str] = "RequestTraining"
    reason: str = "manual"
    dataset: str = ""  # NAME[:VERSION]
    experiment: str = ""
    budget_s: float = 0.0  # 0: BANKOPS_AUTOML_BUDGET; a quick first model asks for a few seconds
    provisional: bool = False  # a quick first model: served until a full-budget one replaces it through the gate
    after_quick: bool = False  # the first start's full run: waits (deferred, no attempt used) until the quick model is served


@dataclass(frozen=True)
class RunCompleted(Message):
    """A training run finished and registered a model version: gate it, maybe deploy it."""

    kind: ClassVar[str] = "RunCompleted"
    run_id: str
    model_version: str
    dataset: str


@dataclass(frozen=True)
class RunFailed(Message):
    """A training pipeline run on Azure ML ended Failed or Canceled (RunStatusChanged): record the retrain as failed."""

    kind: ClassVar[str] = "RunFailed"
    run_id: str
    status: str  # "failed" | "canceled"
    dataset: str = ""


@dataclass(frozen=True)
class Deploy(Message):
    """Serve a model version (default: the champion)."""

    kind: ClassVar[str] = "Deploy"
    model_version: str = ""
    reason: str = "manual"


@dataclass(frozen=True)
class Rollback(Message):
    """Serve the version that was deployed before the current one."""

    kind: ClassVar[str] = "Rollback"
    reason: str = "manual"


@dataclass(frozen=True)
class PrepareBatch(Message):
    """A version became the champion: get batch scoring ready for it before the next client list arrives."""

    kind: ClassVar[str] = "PrepareBatch"
    model_version: str


MESSAGES: dict[str, type[Message]] = {
    cls.kind: cls for cls in (DataArrived, BatchArrived, RequestTraining, RunCompleted, RunFailed, Deploy, Rollback,
                              PrepareBatch)
}


def from_dict(data: dict[str, Any]) -> Message:
    """Rebuild a message stored by `to_dict`; unknown kinds are an error naming the known ones."""
    values = dict(data)
    kind = values.pop("kind", None)
    if kind not in MESSAGES:
        raise ValueError(f"unknown message kind {kind!r}; known: {', '.join(MESSAGES)}")
    return MESSAGES[kind](**values)


LANE_OF_KIND = {"RequestTraining": "training", "BatchArrived": "batch", "PrepareBatch": "batch"}
DEFAULT_LANE = "control"


def lane_of(kind: str) -> str:
    """The worker lane a message kind runs in: training alone, batch files alone, the rest (deploys, data) together."""
    return LANE_OF_KIND.get(kind, DEFAULT_LANE)
