"""Trainer on Azure ML: a pipeline job of an AutoML classification step and an evaluate step, on a compute cluster.

The evaluate step (`shared/evaluation/azureml_evaluate.py`, in the AutoML model's own
environment) runs the local gate's rule on the dataset version's holdout, challenger against the
champion of submit time, and tags the pipeline run with its decision. `train` submits and returns
at once (model_version None): the workspace's RunCompleted event reaches `on_run_completed`, which
registers the best child's model and reads the decision from the run's tags. Every
submission names one dataset version (`azureml:<name>:<N>`), the newest when the request is
handled. The daily retrain is the function app's `daily_retrain` timer, not an Azure ML
JobSchedule: a schedule's `azureml:<name>@latest` input is resolved to a fixed version when the
schedule is created (`OperationOrchestrator.get_asset_arm_id`; Azure/azure-sdk-for-python#32576),
so it would train that version forever. `publish_pipeline` removes such a schedule left by an
older bankops. With BANKOPS_PIPELINE_REST_URL set, "fire the pipeline" is an authenticated POST
instead (e.g. a v1 published pipeline endpoint of the reference project).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared import schema
from shared.config import Settings
from shared.errors import BackendUnavailable, InvalidInput
from shared.ports import ModelRegistry, TrainingSubmission

if TYPE_CHECKING:
    from shared.ports import TrainingRequest

AUTOML_METRICS = ("AUC_weighted", "accuracy", "average_precision_score_weighted", "norm_macro_recall", "precision_score_weighted")
PIPELINE_NAME = "bankops_training"
SCHEDULE_NAME = "bankops-daily-training"
# the curated environment AutoML trains its classic models in: the one its best model loads in
AUTOML_ENVIRONMENT = "azureml://registries/azureml/environments/AzureML-AutoML/labels/latest"
EVALUATE_MODULE = "shared.evaluation.azureml_evaluate"


def gate_ranges(settings: Settings) -> str:
    """The gate's metric ranges (BANKOPS_METRIC_RANGES, with the recall floor's alias), as the composition root
    gives them to the local gate, written out for the evaluate step's command line."""
    from shared.monitoring.ranges import MetricRanges

    return MetricRanges.from_settings(settings).text


def automl_step(settings: Settings, training_data: Any, *, metric: str, folds: int, dataset_ref: str) -> Any:
    """The AutoML classification job of the pipeline; every setting named in the README is here."""
    from azure.ai.ml import Output, automl

    if metric not in AUTOML_METRICS:
        raise InvalidInput(f"Azure ML AutoML cannot optimise {metric!r}; choose one of: {', '.join(AUTOML_METRICS)}")
    step = automl.classification(
        training_data=training_data, target_column_name=schema.TARGET, primary_metric=metric, n_cross_validations=folds,
        enable_model_explainability=False, outputs={"best_model": Output(type="mlflow_model")},
    )
    step.set_limits(timeout_minutes=settings.automl_timeout_minutes, max_concurrent_trials=settings.azureml_max_nodes,
                    max_nodes=settings.azureml_max_nodes, enable_early_termination=True)
    step.set_featurization(mode="auto")
    step.set_training(enable_onnx_compatible_models=settings.automl_onnx_compatible, enable_stack_ensemble=True,
                      enable_vote_ensemble=True)
    step.tags = {"dataset": dataset_ref, "bankops.kind": "automl"}
    return step


def evaluate_step(settings: Settings, code: Path, *, dataset_ref: str, champion: str | None,
                  ranges: str) -> Any:
    """The command component that runs the local gate on Azure ML (its code: the staged `shared` package)."""
    from azure.ai.ml import Input, Output, command
    from azure.ai.ml.constants import AssetTypes

    args = [f"--dataset-ref {shlex.quote(dataset_ref)}", f"--tolerance {settings.gate_tolerance!r}",
            *([f"--ranges {shlex.quote(ranges)}"] if ranges else [])]
    inputs = {"challenger": Input(type=AssetTypes.MLFLOW_MODEL), "dataset": Input(type=AssetTypes.MLTABLE)}
    if champion:
        args.append(f"--champion ${{{{inputs.champion}}}} --champion-version {shlex.quote(champion)}")
        inputs["champion"] = Input(type=AssetTypes.MLFLOW_MODEL)
    return command(
        name="bankops_evaluate", display_name="gate: challenger vs champion on the holdout",
        description="bankops: the local gate's rule (shared.automation.gate.decide) on the dataset version's holdout",
        command=(f"python -m {EVALUATE_MODULE} --challenger ${{{{inputs.challenger}}}} --dataset ${{{{inputs.dataset}}}} "
                 f"--output ${{{{outputs.evaluation}}}} " + " ".join(args)),
        code=str(code), environment=AUTOML_ENVIRONMENT, inputs=inputs,
        outputs={"evaluation": Output(type=AssetTypes.URI_FOLDER)},
    )


def training_pipeline(settings: Settings, data_path: str, *, dataset_ref: str, code: Path, champion: str | None = None,
                      metric: str | None = None, folds: int | None = None, reason: str = "manual") -> Any:
    """A PipelineJob: AutoML on the MLTable at `data_path` (`azureml:<name>:<version>`), then the evaluate
    step against `champion` (a version of the registered model, or None for the first model)."""
    from azure.ai.ml import Input, dsl
    from azure.ai.ml.constants import AssetTypes

    evaluate = evaluate_step(settings, code, dataset_ref=dataset_ref, champion=champion, ranges=gate_ranges(settings))

    # azure-ai-ml's overloads of dsl.pipeline require `func` even for the @pipeline(...) form the SDK documents
    @dsl.pipeline(name=PIPELINE_NAME,  # type: ignore[call-overload]
                  description="bankops: AutoML classification of the bank marketing data, then the gate",
                  default_compute=settings.azureml_compute)
    def bankops_training(training_data, champion_model=None):  # type: ignore[no-untyped-def]  # dsl reads the signature
        step = automl_step(settings, training_data, metric=metric or settings.primary_metric, folds=folds or settings.cv_folds,
                           dataset_ref=dataset_ref)
        more = {"champion": champion_model} if champion else {}  # (inside dsl every parameter is a PipelineInput)
        gate = evaluate(challenger=step.outputs.best_model, dataset=training_data, **more)
        return {"best_model": step.outputs.best_model, "evaluation": gate.outputs.evaluation}

    champion_input = {"champion_model": Input(type=AssetTypes.MLFLOW_MODEL, path=f"azureml:{settings.model_name}:{champion}")} \
        if champion else {}
    job = bankops_training(training_data=Input(type=AssetTypes.MLTABLE, path=data_path), **champion_input)
    job.experiment_name = settings.experiment_name
    job.display_name = f"bankops training on {dataset_ref}"
    # bankops_job/bankops_dataset: how on_run_completed recognises its own pipeline runs' events (README, Event Grid)
    job.tags = {"dataset": dataset_ref, "reason": reason[:200], "bankops.kind": "pipeline", "bankops_job": "training",
                "bankops_dataset": dataset_ref, "bankops_champion_at_submit": champion or "none"}
    return job


def cron5(ncrontab: str) -> str:
    """The Functions timer's six-field NCRONTAB (with seconds) as the five-field cron of a JobSchedule."""
    fields = ncrontab.split()
    if len(fields) == 6:
        fields = fields[1:]
    if len(fields) != 5:
        raise InvalidInput(f"RETRAIN_SCHEDULE {ncrontab!r} is not a cron expression such as '0 0 2 * * *'")
    return " ".join(fields)


def publish_pipeline(ml_client: Any, settings: Settings, *, newest: str = "") -> dict[str, str]:
    """Make the function app's timer the only daily retrain: delete the JobSchedule an older bankops
    published (it trains a frozen dataset version). Answers what runs, when, and on which data."""
    from azure.core.exceptions import ResourceNotFoundError

    removed = "none"
    try:
        ml_client.schedules.get(SCHEDULE_NAME)
    except ResourceNotFoundError:
        pass
    else:
        ml_client.schedules.begin_delete(SCHEDULE_NAME).result()
        removed = SCHEDULE_NAME
    return {"schedule": "function app timer daily_retrain", "cron": settings.retrain_schedule, "time_zone": "UTC",
            "dataset": f"the newest version of {settings.dataset_name} at each firing" + (f" (now {newest})" if newest else ""),
            "removed_azureml_schedule": removed}


def rest_scope(url: str) -> str:
    """v1 published pipelines take an ARM token; v2 batch endpoints an Azure ML one."""
    from shared.adapters.azure.workspace import MANAGEMENT_SCOPE, ML_SCOPE

    return MANAGEMENT_SCOPE if "/pipelines/v1.0/" in url.lower() or "/pipelineruns" in url.lower() else ML_SCOPE


def fire_rest(url: str, credential: Any, experiment: str, *, http: Any = None) -> str:
    """POST to a pipeline REST URL with an Entra ID bearer token; answers the run id ("Id")."""
    import httpx

    token = credential.get_token(rest_scope(url)).token
    client = http or httpx.Client(timeout=60)
    answer = client.post(url, headers={"Authorization": f"Bearer {token}"}, json={"ExperimentName": experiment})
    if answer.status_code >= 400:
        raise BackendUnavailable(f"the pipeline endpoint answered {answer.status_code}: {answer.text[:300]}")
    body = answer.json() if answer.content else {}
    return str(body.get("Id") or body.get("id") or body.get("name") or "")


class AzureTrainer:
    def __init__(self, ml_client: Any, settings: Settings, *, registry: ModelRegistry | None = None, credential: Any = None,
                 http: Any = None) -> None:
        """`registry`: where the champion alias is read at submit time (the evaluate step's opponent)."""
        self.ml, self.settings, self.registry, self.credential, self.http = ml_client, settings, registry, credential, http

    def champion(self) -> str | None:
        from shared.ports import CHAMPION

        holder = self.registry.alias(CHAMPION) if self.registry is not None else None
        return holder.version if holder else None

    def train(self, request: TrainingRequest) -> TrainingSubmission:
        if request.exclude_columns:
            raise InvalidInput("BANKOPS_EXCLUDE_COLUMNS is not supported by the azure trainer; leave it empty")
        dataset = request.dataset
        if self.settings.pipeline_rest_url:
            from shared.adapters.azure.workspace import credential

            run_id = fire_rest(self.settings.pipeline_rest_url, self.credential or credential(), self.settings.experiment_name,
                               http=self.http)
            return TrainingSubmission(run_id=run_id, dataset=dataset.ref, details={"via": "rest"})
        from shared.adapters.azure.batch import staged_code

        with staged_code() as code:  # uploaded by the SDK on submit, as the evaluate step's code
            job = training_pipeline(self.settings, f"azureml:{dataset.name}:{dataset.version}", dataset_ref=dataset.ref, code=code,
                                    champion=self.champion(), metric=request.metric, folds=request.folds, reason=request.reason)
            submitted = self.ml.jobs.create_or_update(job, experiment_name=self.settings.experiment_name)
        return TrainingSubmission(run_id=submitted.name, dataset=dataset.ref,
                                  details={"via": "sdk", "status": str(submitted.status), "studio_url": str(submitted.studio_url or "")})
