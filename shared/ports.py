"""The ports: what the handlers need from a backend, as small Protocols.

The local adapters (files, SQLite, MLflow) and the Azure adapters (Blob, Azure ML) both
implement these, and pass the same contract tests; handler tests use in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, runtime_checkable

from shared.training.learners import LEARNERS

if TYPE_CHECKING:
    import numpy as np

    from shared.automation.messages import Message
    from shared.model import BankMarketingModel


CHAMPION, PREVIOUS = "champion", "previous"  # the registry's aliases: the version served, and the one before it


def parse_dataset_ref(ref: str) -> tuple[str, int | None]:
    """NAME or NAME:VERSION (bankmarketing, bankmarketing:2) -> (name, version or None for the newest)."""
    name, _, version = ref.partition(":")
    if not name or (version and not version.isdigit()):
        from shared.errors import InvalidInput

        raise InvalidInput(f"dataset reference {ref[:80]!r} is not NAME or NAME:VERSION (e.g. bankmarketing:2)")
    return name, int(version) if version else None


@dataclass(frozen=True)
class DatasetVersion:
    """One registered, validated version of a dataset; keyed by the hash of its content."""

    name: str
    version: int
    content_hash: str
    rows: int
    positive_share: float
    created_at: str
    uri: str
    source: str = ""

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass(frozen=True)
class TrainingRequest:
    """What a trainer is asked to do: here, beside the Trainer port, because every trainer and caller shares it."""

    dataset: DatasetVersion
    budget_s: float = 60.0
    metric: str = "AUC_weighted"
    exclude_columns: tuple[str, ...] = ()
    folds: int = 5
    seed: int = 42
    learners: tuple[str, ...] = LEARNERS
    reason: str = "manual"
    provisional: bool = False  # a quick first model (tagged so): status and dashboard say it is provisional


@dataclass(frozen=True)
class ModelVersion:
    """One registered model version, with the metrics it was registered with."""

    name: str
    version: str
    run_id: str
    created_at: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrialRecord:
    learner: str
    cv_score: float
    train_time_s: float
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunReport:
    """A pipeline run as a user reviews it: its AutoML leaderboard and holdout metrics."""

    run_id: str
    status: str
    started_at: str
    params: Mapping[str, str]
    tags: Mapping[str, str]
    holdout_metrics: Mapping[str, float]
    trials: list[TrialRecord]


class DatasetStore(Protocol):
    """Versioned, content-addressed storage of validated training data."""

    def find(self, name: str, content_hash: str) -> DatasetVersion | None:
        """The version of `name` with this content hash, or None."""
        ...

    def add(self, name: str, content: bytes, *, content_hash: str, rows: int, positive_share: float,
            holdout: np.ndarray, source: str) -> DatasetVersion:
        """Store content and its holdout row indices as the next version, atomically.

        Returns the existing version when the same content was added concurrently.
        """
        ...

    def get(self, name: str, version: int | None = None) -> DatasetVersion:
        """A version (default: the newest). Raises NotFound."""
        ...

    def list(self, name: str | None = None) -> list[DatasetVersion]:
        """All versions, oldest first."""
        ...

    def read(self, dataset: DatasetVersion) -> bytes:
        """The stored CSV content."""
        ...

    def holdout(self, dataset: DatasetVersion) -> np.ndarray:
        """Row indices (0-based, data rows) of the holdout kept with this version."""
        ...


class ModelLoader(Protocol):
    """Where a version's model is read from: a registry, or the scoring service's reads of one."""

    def load(self, version: str) -> BankMarketingModel: ...


class ModelRegistry(Protocol):
    """Registered model versions of one model name."""

    def register(self, model: BankMarketingModel, *, run_id: str, metrics: Mapping[str, float],
                 tags: Mapping[str, str], input_example: Any) -> ModelVersion:
        """Log `model` in the registry's model format under run `run_id` and register a new version."""
        ...

    def get(self, version: str | None = None) -> ModelVersion:
        """A version (default: the newest). Raises NotFound."""
        ...

    def list(self) -> list[ModelVersion]:
        """All versions, oldest first."""
        ...

    def load(self, version: str) -> BankMarketingModel:
        """The model object of a version, ready to predict."""
        ...

    def set_alias(self, alias: str, version: str) -> None:
        """Point `alias` (e.g. "champion") at `version`."""
        ...

    def alias(self, alias: str) -> ModelVersion | None:
        """The version `alias` points at, or None."""
        ...


def chosen_version(registry: ModelRegistry, requested: str | None = None) -> str:
    """The version a command without one uses: the requested one (checked: NotFound names it), else the one
    deployed (alias CHAMPION), else the newest registered one (NotFound before the first)."""
    if requested:
        return registry.get(str(requested)).version
    champion = registry.alias(CHAMPION)
    return champion.version if champion else registry.get().version


class RunTracker(Protocol):
    """Experiment tracking: nested runs with params, metrics and artifacts."""

    def run(self, name: str, *, tags: Mapping[str, str] | None = None) -> AbstractContextManager[str]:
        """Open a run nested in the current one (if any); yields its id."""
        ...

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float]) -> None: ...

    def log_artifact(self, path: Path) -> None: ...

    def set_tags(self, tags: Mapping[str, str]) -> None: ...

    def log_child(self, name: str, *, params: Mapping[str, Any], metrics: Mapping[str, float],
                  tags: Mapping[str, str]) -> None:
        """Record a finished child run (e.g. one AutoML trial) in one go."""
        ...

    def report(self, run_id: str | None = None) -> RunReport:
        """The given pipeline run (or the newest), with its trials. Raises NotFound."""
        ...


@runtime_checkable
class RegistersRunModels(Protocol):
    """A registry that can register the best model of a finished remote run (Azure ML AutoML) on request."""

    def register_from_run(self, run_id: str) -> ModelVersion:
        """Register the best child's model of run `run_id` (once: a repeat returns the same version). Raises NotFound."""
        ...


@dataclass(frozen=True)
class AutoMLResult:
    """The best child run of the AutoML step of a finished pipeline run, and what it scored."""

    pipeline_run: str
    automl_run: str
    best_child_run: str
    metrics: Mapping[str, float]
    dataset: str = ""  # NAME:VERSION the pipeline trained on, when its tags say


class RunLookup(Protocol):
    """Reads finished remote runs (Azure ML): the event names only the pipeline run, this finds the rest."""

    def best_child(self, pipeline_run: str) -> AutoMLResult:
        """The AutoML step of `pipeline_run` and its best child. Raises NotFound (no such run, no AutoML step,
        no best child yet)."""
        ...

    def failure(self, run_id: str) -> str:
        """A short (at most 300 characters) account of why run `run_id` ended unsuccessfully, naming where to look."""
        ...


@runtime_checkable
class JudgesRunsRemotely(Protocol):
    """A registry whose runs were judged where they ran (the Azure ML pipeline's evaluate step): the
    function app reads that decision instead of loading the model to run the gate itself."""

    def decision_of_run(self, run_id: str, *, challenger: str, champion: str | None) -> RunDecision:
        """The decision recorded on the run that produced `challenger`, checked against the current
        `champion`. Raises NotFound when the run recorded none."""
        ...


@dataclass(frozen=True)
class RunDecision:
    """A gate decision read back from a run: deploy or keep, why, and the challenger's holdout metrics."""

    deploy: bool
    reason: str
    challenger: Mapping[str, float] = field(default_factory=dict)
    outside: tuple[str, ...] = ()  # the metrics outside their range (BANKOPS_METRIC_RANGES), when that kept it out


def iter_ports() -> Iterator[type]:
    yield from (DatasetStore, ModelRegistry, RunTracker)


@dataclass(frozen=True)
class BlobInfo:
    """A stored file: its name in the container, its version tag and size."""

    container: str
    name: str
    etag: str
    size: int


class Datastore(Protocol):
    """Blob containers (incoming, quarantine, processed, batch, predictions): local folders or Azure Blob."""

    def list(self, container: str) -> list[BlobInfo]:
        """Files in a container, oldest first; partial uploads (names starting with '.') are not listed."""
        ...

    def info(self, container: str, name: str) -> BlobInfo | None:
        """The current version of one file, or None when it is gone."""
        ...

    def read(self, container: str, name: str) -> bytes: ...

    def read_head(self, container: str, name: str, max_bytes: int) -> bytes:
        """The first `max_bytes` of a file (a CSV header check without downloading it). Raises NotFound."""
        ...

    def write(self, container: str, name: str, data: bytes) -> BlobInfo:
        """Write a whole file atomically (readers never see part of it)."""
        ...

    def move(self, container: str, name: str, to_container: str, *, etag: str | None = None) -> BlobInfo:
        """Move a file to another container, e.g. into quarantine; returns where it landed.

        The name is kept (plus `.1`, `.2`... rather than overwrite; an odd name becomes a plain one).
        With `etag`, only that version moves: a file changed since it was read raises Conflict and stays.
        """
        ...


@runtime_checkable
class StreamingDatastore(Protocol):
    """A Datastore that can also stream a file in and out (batch scoring of files larger than memory)."""

    def open_read(self, container: str, name: str) -> BinaryIO:
        """The file as a readable binary stream. Raises NotFound."""
        ...

    def write_from(self, container: str, name: str, source: BinaryIO) -> BlobInfo:
        """Write a whole file from a stream, atomically (readers never see part of it)."""
        ...


@dataclass(frozen=True)
class SmokeResult:
    ok: bool
    detail: str


class Deployer(Protocol):
    """The real-time endpoint: which model version it serves, and swapping it without downtime."""

    def deploy(self, version: str) -> object:
        """Serve `version`; returns once the endpoint answers with it. Raises on failure.

        What it answers is the adapter's own (the local one: whether a service was running to swap);
        the handlers do not read it.

        A deployer on a remote service (Azure ML) raises InProgress while the service works, rather
        than waiting: call again later, and it goes on from where the service is.
        """
        ...

    def current(self) -> str | None:
        """The version the endpoint serves now, or None before the first deploy."""
        ...

    def smoke_test(self, version: str) -> SmokeResult:
        """Score the fixture records through the endpoint and compare with the registered model."""
        ...


@dataclass(frozen=True)
class TrainingSubmission:
    """A training run started by a Trainer: finished here (local) or still running elsewhere (Azure ML)."""

    run_id: str
    dataset: str
    model_version: str | None = None  # set when the run already registered its model
    details: Mapping[str, Any] = field(default_factory=dict)


class Trainer(Protocol):
    """Where the training pipeline runs: in this process, or as an Azure ML pipeline job."""

    def train(self, request: TrainingRequest) -> TrainingSubmission:
        """Run or submit the pipeline for `request`.

        A local trainer returns once the model is registered (`model_version` set); a remote one
        returns once the job is submitted, and a RunCompleted event follows when it ends.
        """
        ...


@dataclass(frozen=True)
class BatchRunStatus:
    """Where a batch scoring run stands: state is "running", "completed" or "failed"."""

    run_id: str
    state: str
    input: str
    output: str  # where the predictions land, e.g. "predictions/clients.predictions.csv"
    model_version: str
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.state in ("completed", "failed")


@dataclass(frozen=True)
class BatchSubmission:
    """What `BatchRunner.submit` did: scored the file before answering (in this process) or submitted a remote run."""

    run_id: str
    scored: bool
    details: Mapping[str, Any] = field(default_factory=dict)  # scored: input, output, rejects and the row counts


class BatchRunner(Protocol):
    """Where the batch step runs: in this process (local), or as an Azure ML batch endpoint or pipeline job.

    The same step either way: each input row, then prediction, probability_yes and model_version,
    into `predictions/<name>.predictions.csv` (rejects beside it).
    """

    def submit(self, input_uri: str, model_version: str, output_name: str | None = None, *, key: str = "") -> BatchSubmission:
        """Score `input_uri` ("batch/clients.csv", or a remote URI) with `model_version`; answers the run.

        `output_name` defaults to "<input stem>.predictions.csv". A local runner returns once the
        file is written (`scored`); a remote one once the job is submitted (it may raise InProgress while
        the service prepares the model's deployment). A datastore file whose columns do not fit raises
        InvalidDataset before anything is written or submitted. `key` (e.g. blob + eTag) makes a repeat
        submit answer the same run instead of starting another.
        """
        ...

    def status(self, run_id: str) -> BatchRunStatus:
        """The run's state and output. Raises NotFound."""
        ...

    def prepare(self, model_version: str) -> dict[str, Any]:
        """Get `model_version` ready to score, so the first file after a new champion does not wait:
        locally its boosters compiled to native code; on an Azure ML batch endpoint its deployment
        created and made the default (raises InProgress until it is ready). Answers what was done."""
        ...


@dataclass(frozen=True)
class Job:
    """One queued command or event and what became of it (the record a status page shows)."""

    job_id: str
    lane: str
    kind: str
    status: str  # queued | running | done | dead
    attempts: int
    created_at: str
    updated_at: str
    error: str
    result: dict[str, Any]
    payload: dict[str, Any]

    @property
    def message(self) -> Message:
        from shared.automation.messages import from_dict

        return from_dict(self.payload)


class WorkQueue(Protocol):
    """The durable work queue and the event ledger: triggers put and return fast, workers take jobs later.

    `accept` takes a batch of (message, event key) whole: a key seen before is ignored, a new one is
    queued, and no key is ever recorded without its job. `put(dedupe=...)` collapses into a job still
    queued under that key (training requests). A job that keeps failing ends `dead` with its reason.
    """

    def accept(self, items: Sequence[tuple[Message, str]]) -> list[bool]: ...
    def release_event(self, event_key: str) -> None: ...  # forget a key: the same event may be taken again
    def put(self, message: Message, *, dedupe: str | None = None) -> tuple[Job, bool]: ...
    def claim(self, lane: str) -> Job | None: ...
    def start(self, job_id: str) -> Job | None: ...
    def complete(self, job_id: str, result: dict[str, Any] | None = None) -> None: ...
    def annotate(self, job_id: str, result: dict[str, Any]) -> None: ...
    def fail(self, job_id: str, error: str, *, retry: bool = True) -> Job: ...
    def defer(self, job_id: str, delay_s: float, note: str) -> Job: ...
    def recover(self) -> list[Job]: ...
    def get(self, job_id: str) -> Job | None: ...
    def recent(self, limit: int = 10, kind: str | None = None) -> list[Job]: ...
    def dead_letters(self, limit: int = 20) -> tuple[list[Job], int]: ...
    def counts(self) -> dict[str, int]: ...
    def pending(self) -> int: ...
