"""What happens for each command and event; triggers only build the message and queue it.

Every handler is idempotent: a repeated event changes nothing (ledger keys and content hashes),
and training requests collapse into at most one queued run.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from shared.adapters.local.trainer import LocalTrainer
from shared.automation.gate import decide
from shared.automation.messages import (
    BatchArrived,
    DataArrived,
    Deploy,
    Message,
    PrepareBatch,
    RequestTraining,
    Rollback,
    RunCompleted,
)
from shared.automation.work_queue import WorkQueue
from shared.batch.blob import output_names, score_blob
from shared.batch.scorer import BatchModel
from shared.batch.scorer import prepare as prepare_batch_model
from shared.batch.source import HEADER_BYTES, check_header_bytes
from shared.config import Settings, split_columns
from shared.data_validation import validate_csv
from shared.dataset_registration import load_frame, register_dataset
from shared.errors import BankopsError, Conflict, InvalidDataset, NotFound
from shared.monitoring.ranges import MetricRanges
from shared.ports import (
    BatchRunner,
    DatasetStore,
    Datastore,
    Deployer,
    ModelRegistry,
    RegistersRunModels,
    RunTracker,
    Trainer,
)
from shared.training.pipeline import TrainingProgress, TrainingRequest

log = logging.getLogger("bankops.automation")
CHAMPION, PREVIOUS = "champion", "previous"
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
    progress: TrainingProgress | None = None
    trainer: Trainer | None = None  # default: the pipeline in this process
    batch_runner: BatchRunner | None = None  # default: batch files scored in this process (azure: an Azure ML batch job)
    ranges: MetricRanges = field(default_factory=MetricRanges)  # BANKOPS_METRIC_RANGES: the gate's floors and ceilings
    on_event: Callable[[str, dict[str, Any]], None] = lambda _kind, _data: None


# --- requests from triggers: record and return fast ----------------------------------------
def request_training(auto: Automation, reason: str, experiment: str = "") -> tuple[str, bool]:
    """Queue a training run (collapsing into an already queued one); returns (job id, newly queued)."""
    job, created = auto.queue.put(RequestTraining(reason=reason, dataset=auto.settings.dataset_name, experiment=experiment),
                                  dedupe=TRAINING_KEY)
    return job.job_id, created


def accept_event(auto: Automation, message: Message, event_key: str) -> bool:
    """Queue an event unless its key was seen before (Event Grid delivers at least once)."""
    if not auto.queue.claim_event(event_key):
        log.info("duplicate event ignored: %s", event_key)
        return False
    auto.queue.put(message)
    return True


# --- handlers ------------------------------------------------------------------------------
def _merge_with_previous(auto: Automation, content: bytes) -> bytes | None:
    """Append mode: the newest version's rows plus the new ones, exact duplicates dropped.

    None when the file adds no row the newest version does not already have.
    """
    name = auto.settings.dataset_name
    if auto.settings.data_arrival_mode == "replace" or not auto.datasets.list(name):
        return content
    previous = load_frame(auto.datasets, auto.datasets.get(name))
    new = validate_csv(content, min_rows=1, min_rows_per_class=0).frame
    merged = pd.concat([previous, new[previous.columns]], ignore_index=True).drop_duplicates(ignore_index=True)
    if len(merged) == len(previous):
        return None
    buffer = io.StringIO()
    merged.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def _quarantine(auto: Automation, event: DataArrived, container: str, name: str, error: BankopsError) -> dict[str, Any]:
    moved = auto.datastore.move(container, name, "quarantine")
    reason = f"{event.blob} was not registered.\n\n{error}\n\nFix the file and drop it into incoming/ again.\n"
    auto.datastore.write("quarantine", f"{moved.name}.reason.txt", reason.encode())
    log.warning("quarantined %s: %s", event.blob, error.message)
    auto.on_event("data_quarantined", {"blob": event.blob})
    return {"outcome": "quarantined", "reason": str(error)}


def on_data_arrived(auto: Automation, event: DataArrived) -> dict[str, Any]:
    container, _, name = event.blob.partition("/")
    current = auto.datastore.info(container, name)
    if current is None:
        return {"outcome": "ignored", "reason": f"{event.blob} is gone (moved or deleted since the event)"}
    if current.etag != event.etag:
        return {"outcome": "ignored", "reason": f"{event.blob} changed since this event; the newer event handles it"}
    content = auto.datastore.read(container, name)
    s = auto.settings
    try:
        validate_csv(content, min_rows=1, min_rows_per_class=0)
        merged = _merge_with_previous(auto, content)
        if merged is None:
            auto.datastore.move(container, name, "processed")
            return {"outcome": "unchanged", "reason": f"{event.blob} adds no new rows to {auto.datasets.get(s.dataset_name).ref}"}
        reg = register_dataset(auto.datasets, merged, name=s.dataset_name, holdout_fraction=s.holdout_fraction, seed=s.seed,
                               min_rows=s.min_rows, min_rows_per_class=s.min_rows_per_class, source_name=event.blob)
    except InvalidDataset as error:
        return _quarantine(auto, event, container, name, error)
    auto.datastore.move(container, name, "processed")
    auto.on_event("data_registered", {"dataset": reg.dataset.ref, "created": reg.created})
    if not reg.created:
        return {"outcome": "unchanged", "dataset": reg.dataset.ref}
    job_id, _ = request_training(auto, f"data arrived: {event.blob}")
    return {"outcome": "registered", "dataset": reg.dataset.ref, "training_job": job_id}


def on_request_training(auto: Automation, command: RequestTraining, job_id: str = "") -> dict[str, Any]:
    from shared.bootstrap import shipped_data

    s = auto.settings
    name, _, version = (command.dataset or s.dataset_name).partition(":")
    if not auto.datasets.list(name) and name == s.dataset_name:
        register_dataset(auto.datasets, shipped_data(), name=name, holdout_fraction=s.holdout_fraction, seed=s.seed,
                         source_name="shipped")
    dataset = auto.datasets.get(name, int(version) if version else None)
    request = TrainingRequest(dataset=dataset, budget_s=s.automl_budget_s, metric=s.primary_metric,
                              exclude_columns=tuple(split_columns(s.exclude_columns)), folds=s.cv_folds, seed=s.seed,
                              reason=command.reason)
    trainer = auto.trainer or LocalTrainer(datasets=auto.datasets, registry=auto.registry, tracker=auto.tracker,
                                           progress=auto.progress)
    # started_at and budget_s: what the retrain_stuck rule and the dashboard's run durations read
    timing = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "budget_s": s.automl_budget_s if s.backend == "local" else s.automl_timeout_minutes * 60.0}
    if job_id:
        auto.queue.annotate(job_id, {"dataset": dataset.ref, **timing})
    run = trainer.train(request)
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


def on_run_completed(auto: Automation, event: RunCompleted) -> dict[str, Any]:
    champion = auto.registry.alias(CHAMPION)
    challenger, dataset_ref = _model_of_run(auto, event)
    name, _, version = dataset_ref.partition(":")
    dataset = auto.datasets.get(name, int(version) if version else None)
    decision = decide(challenger=challenger, champion=champion.version if champion else None, dataset=dataset,
                      datasets=auto.datasets, registry=auto.registry, tolerance=auto.settings.gate_tolerance, ranges=auto.ranges)
    auto.on_event("gate", {"deploy": decision.deploy})
    log.info("gate: %s", decision.reason)
    if not decision.deploy:
        return {"outcome": "kept_champion", "reason": decision.reason, "model_version": challenger,
                **({"outside_range": list(decision.outside)} if decision.outside else {})}
    return _deploy_with_smoke_test(auto, challenger, decision.reason) | {"gate": decision.reason}


def on_deploy(auto: Automation, command: Deploy) -> dict[str, Any]:
    if command.model_version:
        version = auto.registry.get(command.model_version).version
    else:
        champion = auto.registry.alias(CHAMPION)
        if champion is None:
            raise NotFound("there is no champion yet; name a model_version, or train one first")
        version = champion.version
    return _deploy_with_smoke_test(auto, version, command.reason)


def on_rollback(auto: Automation, command: Rollback) -> dict[str, Any]:
    previous = auto.registry.alias(PREVIOUS)
    current = auto.deployer.current()
    if previous is None or previous.version == current:
        raise Conflict("there is no previous version to roll back to")
    result = _deploy_with_smoke_test(auto, previous.version, f"rollback: {command.reason}")
    if current and result["outcome"] == "deployed":
        auto.registry.set_alias(PREVIOUS, current)
    return result


def on_batch_arrived(auto: Automation, event: BatchArrived) -> dict[str, Any]:
    """Score a client list dropped into `batch` with the champion; a file with the wrong columns is quarantined."""
    container, _, name = event.blob.partition("/")
    current = auto.datastore.info(container, name)
    if current is None or current.etag != event.etag:
        return {"outcome": "ignored", "reason": f"{event.blob} is gone or changed since this event"}
    champion = auto.registry.alias(CHAMPION)
    if champion is None:
        raise NotFound(f"there is no champion to score {event.blob} with yet; train one, then drop the file again")
    if auto.batch_runner is not None:  # the step runs on Azure ML; the blob + eTag key makes a retried job the same run
        try:  # a wrong header is quarantined here, as locally, rather than failing the remote job
            check_header_bytes(auto.datastore.read_head(container, name, HEADER_BYTES))
        except InvalidDataset as error:
            return _quarantine_batch(auto, event.blob, container, name, error)
        run_id = auto.batch_runner.submit(event.blob, champion.version, key=f"{event.blob}:{event.etag}")
        auto.on_event("batch_submitted", {"blob": event.blob, "run_id": run_id})
        return {"outcome": "submitted", "run_id": run_id, "input": event.blob, "model_version": champion.version,
                "output": f"predictions/{output_names(name)[0]}"}
    try:
        run = score_blob(auto.datastore, auto.tracker, BatchModel.load(auto.registry, champion.version), container, name)
    except InvalidDataset as error:
        return _quarantine_batch(auto, event.blob, container, name, error)
    auto.on_event("batch_scored", {"blob": event.blob, "rows": run.summary.rows_scored})
    return {"outcome": "scored", **run.as_dict()}


def on_prepare_batch(auto: Automation, command: PrepareBatch) -> dict[str, Any]:
    """Ready the champion for batch scoring (native trees locally; the Azure ML batch deployment);
    a version that is no longer the champion is skipped."""
    champion = auto.registry.alias(CHAMPION)
    if champion is None or champion.version != command.model_version:
        return {"outcome": "skipped", "reason": f"v{command.model_version} is no longer the champion"}
    if auto.batch_runner is not None:
        done = auto.batch_runner.prepare(command.model_version)
    else:
        done = prepare_batch_model(auto.registry, command.model_version)
    return {"outcome": "prepared", **done}


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
    Deploy.kind: on_deploy,
    Rollback.kind: on_rollback,
    PrepareBatch.kind: on_prepare_batch,
}
