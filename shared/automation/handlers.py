"""What happens for each command and event; triggers only build the message and queue it.

Every handler is idempotent: a repeated event changes nothing (ledger keys and content hashes),
and training requests collapse into at most one queued run.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from shared.automation.eventgrid import normalize_etag
from shared.automation.messages import (
    BatchArrived,
    DataArrived,
    Deploy,
    Message,
    PrepareBatch,
    RequestTraining,
    Rollback,
    RunCompleted,
    RunFailed,
)
from shared.batch.files import output_names
from shared.config import Settings, split_columns
from shared.data_validation import ReadLimits, size_problem, validate_csv
from shared.dataset_registration import content_hash, load_frame, register_dataset
from shared.errors import BankopsError, Conflict, InProgress, InvalidDataset, NotFound
from shared.monitoring.ranges import MetricRanges
from shared.ports import (
    CHAMPION,
    PREVIOUS,
    BatchRunner,
    DatasetStore,
    Datastore,
    Deployer,
    JudgesRunsRemotely,
    ModelRegistry,
    RegistersRunModels,
    RunDecision,
    RunLookup,
    RunTracker,
    Trainer,
    TrainingRequest,
    WorkQueue,
    parse_dataset_ref,
)
from shared.untrusted_text import REASON_LIMIT, clip, escape, for_log, safe_file_name, shown

if TYPE_CHECKING:
    from shared.automation.gate import GateDecision

log = logging.getLogger("bankops.automation")
TRAINING_KEY = "training"


@dataclass
class Automation:
    """The ports and settings every handler needs (the composition root builds it)."""

    settings: Settings
    datasets: DatasetStore
    registry: ModelRegistry
    tracker: RunTracker
    datastore: Datastore
    deployer: Deployer
    queue: WorkQueue
    trainer: Trainer  # local: the pipeline in this process; azure: an Azure ML pipeline job
    batch_runner: BatchRunner  # local: batch files scored in this process; azure: an Azure ML batch job
    run_lookup: RunLookup  # reads finished runs (why one failed)
    ranges: MetricRanges = field(default_factory=MetricRanges)  # BANKOPS_METRIC_RANGES: the gate's floors and ceilings
    on_event: Callable[[str, dict[str, Any]], None] = lambda _kind, _data: None


# --- requests from triggers: record and return fast ----------------------------------------
def request_training(auto: Automation, reason: str, experiment: str = "") -> tuple[str, bool]:
    """Queue a training run (collapsing into an already queued one); returns (job id, newly queued)."""
    job, created = auto.queue.put(RequestTraining(reason=reason, dataset=auto.settings.dataset_name, experiment=experiment),
                                  dedupe=TRAINING_KEY)
    return job.job_id, created


def accept_event(auto: Automation, message: Message, event_key: str) -> bool:
    """Queue an event unless its key was seen before (Event Grid delivers at least once).

    The ledger entry and the job are one transaction: a crash between them cannot lose the event.
    """
    if not auto.queue.accept([(message, event_key)])[0]:
        log.info("duplicate event ignored: %s", for_log(event_key))
        return False
    return True


# --- handlers ------------------------------------------------------------------------------
def arrival_key(blob: str, digest: str) -> str:
    """The ledger key of a file found in `incoming/`: its content, so a file put back is a new arrival once
    the last one was judged (the handler releases the key when it is done)."""
    return f"blob:{blob}:sha256:{digest}"


UNFINISHED_SUFFIXES = (".tmp", ".part")


def unfinished(name: str) -> bool:
    """A name a writer uses until the file is whole: it is ignored until renamed (the rename is the arrival)."""
    return name.startswith(".") or name.lower().endswith(UNFINISHED_SUFFIXES)


def unread_arrival_key(blob: str, etag: str) -> str:
    """The ledger key of a file judged without reading it (over the size cap): its version."""
    return f"blob:{blob}:{etag}"


def _merge_with_previous(auto: Automation, content: bytes, new: pd.DataFrame) -> tuple[bytes, pd.DataFrame] | None:
    """Append mode: the newest version's rows plus the new ones (`new`, already typed), exact duplicates dropped.

    None when the file adds no row the newest version does not already have.
    """
    name = auto.settings.dataset_name
    if auto.settings.data_arrival_mode == "replace" or not auto.datasets.list(name):
        return content, new
    previous = load_frame(auto.datasets, auto.datasets.get(name))
    merged = pd.concat([previous, new[previous.columns]], ignore_index=True).drop_duplicates(ignore_index=True)
    if len(merged) == len(previous):
        return None
    buffer = io.StringIO()
    merged.to_csv(buffer, index=False)
    return buffer.getvalue().encode(), merged


def _name_problem(name: str) -> str | None:
    """Why a dropped file's name is refused: names that break tools and logs (the file is kept, renamed)."""
    if escape(name) != name:
        return f"the file name {shown(name, 80)} holds control characters (a newline?): rename it to a plain name"
    if "\\" in name:
        return f"the file name {shown(name, 80)} holds a backslash: rename it to a plain name such as new-data.csv"
    return None


def _quarantine(auto: Automation, event: DataArrived, container: str, name: str, error: BankopsError) -> dict[str, Any]:
    try:
        moved = auto.datastore.move(container, name, "quarantine", etag=event.etag)
    except Conflict:  # written to since it was read: judge the new version, not this one
        return {"outcome": "changed", "reason": f"{for_log(event.blob)} changed while it was judged; it is judged again"}
    blob = for_log(event.blob)
    renamed = f" (renamed {moved.name})" if moved.name != name else ""
    reason = clip(f"{blob} was not registered{renamed}.\n\n{error}\n\nFix the file and drop it into incoming/ again.\n",
                  REASON_LIMIT)
    auto.datastore.write("quarantine", f"{safe_file_name(moved.name)}.reason.txt", reason.encode())
    log.warning("quarantined %s: %s", blob, clip(escape(error.message), 300))
    auto.on_event("data_quarantined", {"blob": clip(event.blob, 300)})
    return {"outcome": "quarantined", "file": f"quarantine/{moved.name}", "reason": clip(str(error), REASON_LIMIT // 2)}


def on_data_arrived(auto: Automation, event: DataArrived, job_id: str = "") -> dict[str, Any]:
    """Judge a dropped file once, whole: register exactly the bytes read, move exactly those, else judge it again."""
    event = replace(event, etag=normalize_etag(event.etag))  # as the datastores report it, for every comparison below
    container, _, name = event.blob.partition("/")
    blob = for_log(event.blob)
    if unfinished(name):  # a BlobCreated event of a temporary name: its final name's event follows
        return {"outcome": "ignored", "reason": f"{blob} has a temporary name; it is judged once renamed"}
    current = auto.datastore.info(container, name)
    if current is None:
        return {"outcome": "ignored", "reason": f"{blob} is gone (moved or deleted since the event)"}
    if current.etag != event.etag:
        return {"outcome": "ignored", "reason": f"{blob} changed since this event; the newer event handles it"}
    s = auto.settings
    limits = ReadLimits(max_bytes=int(s.max_data_mb * 2**20))
    if problem := _name_problem(name) or size_problem(current.size, limits):  # judged without reading it
        try:
            return _quarantine(auto, event, container, name, InvalidDataset(problem))
        finally:
            auto.queue.release_event(unread_arrival_key(event.blob, event.etag))
    content = auto.datastore.read(container, name)
    digest = content_hash(content)
    try:
        if len(content) != current.size or auto.datastore.info(container, name) != current:
            return {"outcome": "changed", "reason": f"{blob} was being written while read; it is judged again once stable"}
        try:
            return _judge(auto, event, container, name, content, limits)
        except InvalidDataset as error:
            return _quarantine(auto, event, container, name, error)
    finally:
        auto.queue.release_event(arrival_key(event.blob, digest))


def _parse(content: bytes, limits: ReadLimits, blob: str) -> pd.DataFrame:
    """The file's typed frame; a file the parser fails on in a way no check foresaw is still an answer, never a stuck job."""
    try:
        return validate_csv(content, min_rows=1, min_rows_per_class=0, limits=limits).frame
    except InvalidDataset:
        raise
    except (MemoryError, RecursionError, ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        log.exception("could not judge %s", blob)
        raise InvalidDataset(f"bankops could not judge this file ({type(exc).__name__}): check that it is a bank "
                             "marketing CSV (UTF-8, comma-separated, the schema's header); if it is, report this") from exc


def _unchanged(auto: Automation, event: DataArrived, container: str, name: str) -> bool:
    now = auto.datastore.info(container, name)
    return now is not None and now.etag == event.etag


def _judge(auto: Automation, event: DataArrived, container: str, name: str, content: bytes,
           limits: ReadLimits) -> dict[str, Any]:
    """Validate (one parse), merge, register, move; `content` is the file as read once, before this."""
    s = auto.settings
    blob = for_log(event.blob)
    again = {"outcome": "changed", "reason": f"{blob} changed while it was judged; its new content is judged again"}
    merged = _merge_with_previous(auto, content, _parse(content, limits, blob))
    if not _unchanged(auto, event, container, name):
        return again
    if merged is None:
        try:
            auto.datastore.move(container, name, "processed", etag=event.etag)
        except Conflict:
            return again
        return {"outcome": "unchanged", "reason": f"{blob} adds no new rows to {auto.datasets.get(s.dataset_name).ref}"}
    reg = register_dataset(auto.datasets, merged[0], name=s.dataset_name, holdout_fraction=s.holdout_fraction, seed=s.seed,
                           min_rows=s.min_rows, min_rows_per_class=s.min_rows_per_class, source_name=clip(event.blob, 300),
                           typed=merged[1])
    result: dict[str, Any] = {"outcome": "registered" if reg.created else "unchanged", "dataset": reg.dataset.ref}
    try:
        auto.datastore.move(container, name, "processed", etag=event.etag)
    except Conflict:  # rewritten in the instant after the check: the new bytes are judged again (new rows merged then)
        log.warning("%s changed after %s was registered from it; it is judged again", blob, reg.dataset.ref)
        result["note"] = f"{blob} changed after it was read; its new content is judged again"
    auto.on_event("data_registered", {"dataset": reg.dataset.ref, "created": reg.created})
    if reg.created:
        result["training_job"], _ = request_training(auto, clip(f"data arrived: {event.blob}", 300))
    return result


def _wait_for_quick_model(auto: Automation, retry_after_s: float = 3.0) -> None:
    """The first start's full run (shared/automation/first_model.py) waits, deferred, while the quick model's run or
    gate and deploy are still to finish: on two cores a run beside the scoring service's start-up would delay the
    first prediction by about as long again. Once it is served, or its run or deploy failed, the full run goes."""
    if auto.registry.alias(CHAMPION) is not None:
        return
    quick = [j for j in auto.queue.recent(50, kind=RequestTraining.kind) if j.payload.get("provisional")]
    if (quick and quick[0].status in ("queued", "running")) or any(
            j.status in ("queued", "running") for j in auto.queue.recent(50, kind=RunCompleted.kind)):
        raise InProgress("the full-budget run starts once the quick first model is served", retry_after_s=retry_after_s)


def on_request_training(auto: Automation, command: RequestTraining, job_id: str = "") -> dict[str, Any]:
    from shared.resources import shipped_data

    if command.after_quick:
        _wait_for_quick_model(auto)
    s = auto.settings
    name, version = parse_dataset_ref(command.dataset or s.dataset_name)
    if not auto.datasets.list(name) and name == s.dataset_name:
        register_dataset(auto.datasets, shipped_data(), name=name, holdout_fraction=s.holdout_fraction, seed=s.seed,
                         source_name="shipped")
    dataset = auto.datasets.get(name, version)
    budget_s = command.budget_s or s.automl_budget_s
    request = TrainingRequest(dataset=dataset, budget_s=budget_s, metric=s.primary_metric,
                              exclude_columns=tuple(split_columns(s.exclude_columns)), folds=s.cv_folds, seed=s.seed,
                              reason=command.reason, provisional=command.provisional)
    # started_at and budget_s: what the retrain_stuck rule and the dashboard's run durations read
    timing = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "budget_s": budget_s if s.backend == "local" else s.automl_timeout_minutes * 60.0}
    if job_id:
        auto.queue.annotate(job_id, {"dataset": dataset.ref, **timing})
    run = auto.trainer.train(request)
    if run.model_version is None:  # runs elsewhere (Azure ML): its RunCompleted event comes later
        auto.on_event("pipeline_run", {"status": "submitted"})
        return {"outcome": "submitted", "run_id": run.run_id, "dataset": run.dataset, **timing}
    auto.queue.put(RunCompleted(run_id=run.run_id, model_version=run.model_version, dataset=run.dataset))
    auto.on_event("pipeline_run", {"status": "completed", "model_version": run.model_version})
    return {"outcome": "trained", "run_id": run.run_id, "model_version": run.model_version, "dataset": run.dataset, **timing,
            **run.details}


def _deploy_with_smoke_test(auto: Automation, version: str, reason: str) -> dict[str, Any]:
    """Deploy, smoke-test, and restore the previous version if the test fails."""
    before = auto.deployer.current()
    auto.deployer.deploy(version)
    smoke = auto.deployer.smoke_test(version)
    if smoke.ok:
        if before and before != version:
            auto.registry.set_alias(PREVIOUS, before)
        auto.registry.set_alias(CHAMPION, version)
        auto.queue.put(PrepareBatch(model_version=version))  # in the batch lane: the deploy does not wait for it
        auto.on_event("deploy", {"version": version, "reason": reason})
        return {"outcome": "deployed", "model_version": version, "smoke_test": smoke.detail, "reason": reason}
    if before:
        auto.deployer.deploy(before)
    auto.on_event("rollback", {"version": before or "", "reason": f"smoke test of v{version} failed"})
    return {"outcome": "rolled_back", "model_version": before, "failed_version": version, "smoke_test": smoke.detail}


def _model_of_run(auto: Automation, event: RunCompleted) -> tuple[str, str]:
    """(model version, dataset ref) of a finished run; an Azure ML event names only the run."""
    if event.model_version:
        return event.model_version, event.dataset
    found = [v for v in auto.registry.list() if event.run_id in (v.run_id, v.tags.get("pipeline_run"))]
    if not found and isinstance(auto.registry, RegistersRunModels):  # Azure ML: register the run's best model now
        found = [auto.registry.register_from_run(event.run_id)]
    if not found:
        raise NotFound(f"no registered model comes from run {event.run_id}; register its best model first")
    return found[-1].version, found[-1].tags.get("dataset", auto.settings.dataset_name)


def on_run_completed(auto: Automation, event: RunCompleted, job_id: str = "") -> dict[str, Any]:
    champion = auto.registry.alias(CHAMPION)
    challenger, dataset_ref = _model_of_run(auto, event)
    decision: GateDecision | RunDecision
    if not event.model_version and isinstance(auto.registry, JudgesRunsRemotely):  # judged in Azure ML's evaluate step
        decision = auto.registry.decision_of_run(event.run_id, challenger=challenger, champion=champion.version if champion else None)
    else:  # the local gate scores both models here (scikit-learn's metrics: not in the function app's package)
        from shared.automation.gate import decide

        dataset = auto.datasets.get(*parse_dataset_ref(dataset_ref))
        decision = decide(challenger=challenger, champion=champion.version if champion else None, dataset=dataset,
                          datasets=auto.datasets, registry=auto.registry, tolerance=auto.settings.gate_tolerance, ranges=auto.ranges)
    auto.on_event("gate", {"deploy": decision.deploy})
    log.info("gate: %s", decision.reason)
    if not decision.deploy:
        return {"outcome": "kept_champion", "reason": decision.reason, "model_version": challenger,
                **({"outside_range": list(decision.outside)} if decision.outside else {})}
    return _deploy_with_smoke_test(auto, challenger, decision.reason) | {"gate": decision.reason}


def on_run_failed(auto: Automation, event: RunFailed, job_id: str = "") -> dict[str, Any]:
    """A training pipeline run ended Failed or Canceled on Azure ML: the retrain is recorded as failed, the champion stays."""
    error = f"Azure ML pipeline run {event.run_id} ended {event.status}"
    try:
        error = auto.run_lookup.failure(event.run_id)
    except BankopsError as exc:  # the event alone still says it failed
        log.warning("could not read why run %s failed: %s", event.run_id, exc.message)
    log.warning("retrain %s: %s", event.status, error)
    auto.on_event("pipeline_run", {"status": event.status})
    return {"outcome": event.status, "run_id": event.run_id, "dataset": event.dataset, "error": error[:300],
            "reason": error[:300]}


def on_deploy(auto: Automation, command: Deploy, job_id: str = "") -> dict[str, Any]:
    if command.model_version:
        version = auto.registry.get(command.model_version).version
    else:
        champion = auto.registry.alias(CHAMPION)
        if champion is None:
            raise NotFound("there is no champion yet; name a model_version, or train one first")
        version = champion.version
    return _deploy_with_smoke_test(auto, version, command.reason)


def on_rollback(auto: Automation, command: Rollback, job_id: str = "") -> dict[str, Any]:
    previous = auto.registry.alias(PREVIOUS)
    current = auto.deployer.current()
    if previous is None or previous.version == current:
        raise Conflict("there is no previous version to roll back to")
    result = _deploy_with_smoke_test(auto, previous.version, f"rollback: {command.reason}")
    if current and result["outcome"] == "deployed":
        auto.registry.set_alias(PREVIOUS, current)
    return result


def on_batch_arrived(auto: Automation, event: BatchArrived, job_id: str = "") -> dict[str, Any]:
    """Score a client list dropped into `batch` with the champion; a file with the wrong columns is quarantined."""
    container, _, name = event.blob.partition("/")
    current = auto.datastore.info(container, name)
    event = replace(event, etag=normalize_etag(event.etag))  # as the datastores report it
    if current is None or current.etag != event.etag:
        return {"outcome": "ignored", "reason": f"{event.blob} is gone or changed since this event"}
    champion = auto.registry.alias(CHAMPION)
    if champion is None:
        raise NotFound(f"there is no champion to score {event.blob} with yet; train one, then drop the file again")
    try:  # the blob + eTag key makes a retried job the same remote run; a file with the wrong columns is quarantined
        submission = auto.batch_runner.submit(event.blob, champion.version, key=f"{event.blob}:{event.etag}")
    except InvalidDataset as error:
        return _quarantine_batch(auto, event.blob, container, name, error)
    if submission.scored:  # in this process: the predictions are written
        auto.on_event("batch_scored", {"blob": event.blob, "rows": submission.details.get("rows_scored", 0)})
        return {"outcome": "scored", **submission.details}
    auto.on_event("batch_submitted", {"blob": event.blob, "run_id": submission.run_id})
    return {"outcome": "submitted", "run_id": submission.run_id, "input": event.blob, "model_version": champion.version,
            "output": f"predictions/{output_names(name)[0]}"}


def on_prepare_batch(auto: Automation, command: PrepareBatch, job_id: str = "") -> dict[str, Any]:
    """Ready the champion for batch scoring (native trees locally; the Azure ML batch deployment);
    a version that is no longer the champion is skipped."""
    champion = auto.registry.alias(CHAMPION)
    if champion is None or champion.version != command.model_version:
        return {"outcome": "skipped", "reason": f"v{command.model_version} is no longer the champion"}
    return {"outcome": "prepared", **auto.batch_runner.prepare(command.model_version)}


def _quarantine_batch(auto: Automation, blob: str, container: str, name: str, error: InvalidDataset) -> dict[str, Any]:
    moved = auto.datastore.move(container, name, "quarantine")
    reason = f"{blob} was not scored.\n\n{error}\n\nFix the file and drop it into batch/ again.\n"
    auto.datastore.write("quarantine", f"{moved.name}.reason.txt", reason.encode())
    return {"outcome": "quarantined", "reason": str(error)}


HANDLERS: dict[str, Callable[..., dict[str, Any]]] = {
    DataArrived.kind: on_data_arrived,
    BatchArrived.kind: on_batch_arrived,
    RequestTraining.kind: on_request_training,
    RunCompleted.kind: on_run_completed,
    RunFailed.kind: on_run_failed,
    Deploy.kind: on_deploy,
    Rollback.kind: on_rollback,
    PrepareBatch.kind: on_prepare_batch,
}
