"""The Azure adapters against the fakes of MLClient operations: the exact entities they build, and the
step-by-step flows (blue/green deploy, RunCompleted -> register best child -> gate -> deploy) as Azure ML
would report them. The shared behaviour is in tests/contract; this is what only Azure has.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from azure.core.exceptions import ResourceNotFoundError

from shared import schema
from shared.adapters.azure.deployer import AzureDeployer, parse_answer
from shared.adapters.azure.registry import AzureModelRegistry
from shared.adapters.azure.trainer import AzureTrainer, cron5, fire_rest, publish_pipeline, rest_scope
from shared.automation import control
from shared.automation.work_queue import WorkQueue
from shared.automation.worker import Worker
from shared.config import Settings, load_settings
from shared.dataset_registration import register_dataset
from shared.errors import BankopsError, InProgress, InvalidInput
from shared.mlflow_model import example_frame
from shared.ports import CHAMPION
from shared.training.pipeline import TrainingRequest
from tests import event_fixtures, samples
from tests.automation_fakes import InMemoryDatastore, make_automation
from tests.azure_fakes import FakeMLClient, mount_dataset, until_settled
from tests.contract.conftest import tiny_model
from tests.fakes import InMemoryDatasetStore, InMemoryRunTracker


class FakeCredential:
    """Stands in for DefaultAzureCredential: hands out a fixed token per scope and records the scopes asked."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, scope: str) -> Any:
        self.scopes.append(scope)
        return type("Token", (), {"token": f"token-for-{scope}"})()


@pytest.fixture
def azure_settings(tmp_path: Path) -> Settings:
    return load_settings(home=tmp_path / "home", azureml_max_nodes=6, automl_timeout_minutes=45, automl_onnx_compatible=True,
                         azureml_compute="cpu-cluster-6")


@pytest.fixture
def code() -> Any:
    """The evaluate step's code folder, as AzureTrainer stages it for a submit."""
    from shared.adapters.azure.batch import staged_code

    with staged_code() as folder:
        yield folder


@pytest.fixture
def frame() -> pd.DataFrame:
    return samples.stratified_sample(400, seed=5)


def _registry_with(fake: FakeMLClient, frame: pd.DataFrame, tmp_path: Path, n: int = 2) -> AzureModelRegistry:
    registry = AzureModelRegistry(fake, "bankmarketing-classifier", runs=fake.runs, cache_dir=tmp_path / "cache")
    example = example_frame(frame.drop(columns=[schema.TARGET]).head(2).to_dict("records"))
    for c in (1.0, 0.05)[:n]:
        registry.register(tiny_model(frame, c), run_id="r", metrics={"AUC_weighted": 0.9}, tags={"dataset": "bankmarketing:1"},
                          input_example=example)
    return registry


def _register_data_asset(fake: FakeMLClient, version: str) -> None:
    from azure.ai.ml.entities import Data

    fake.data.create_or_update(Data(name="bankmarketing", version=version, type="mltable",
                                    path=f"azureml://datastores/bankops/paths/bankmarketing/h{version}/"))


def _frozen_schedule(settings: Settings, code: Path) -> Any:
    from azure.ai.ml.entities import CronTrigger, JobSchedule

    from shared.adapters.azure.trainer import SCHEDULE_NAME, training_pipeline

    return JobSchedule(name=SCHEDULE_NAME, trigger=CronTrigger(expression="0 2 * * *"),
                       create_job=training_pipeline(settings, "azureml:bankmarketing:1", dataset_ref="bankmarketing:1", code=code))


class TestAutoMLPipeline:
    def test_the_submitted_pipeline_holds_the_automl_job_with_every_setting(self, azure_settings: Settings) -> None:
        fake = FakeMLClient()
        dataset = register_dataset(InMemoryDatasetStore(), samples.csv_bytes(samples.stratified_sample(300)), name="bankmarketing").dataset
        submission = AzureTrainer(fake, azure_settings).train(TrainingRequest(dataset=dataset, folds=5, reason="test"))
        assert submission.model_version is None and submission.run_id == "bankops-job-1"
        job = fake.jobs.submitted[0]
        # resolved as JobOperations.create_or_update resolves them before its request: names become ARM ids
        assert job.settings.default_compute.endswith("/computes/cpu-cluster-6") and job.tags["dataset"] == "bankmarketing:1"
        assert job.inputs["training_data"]._data.type == "mltable"
        assert job.inputs["training_data"]._data.path.endswith("/workspaces/bankops-ws/data/bankmarketing/versions/1")
        step = job.jobs["step"] if "step" in job.jobs else next(iter(job.jobs.values()))
        assert str(step.primary_metric).endswith("AUC_WEIGHTED") and step.target_column_name == "y"
        assert step.n_cross_validations == 5
        assert (step.limits.timeout_minutes, step.limits.max_concurrent_trials, step.limits.max_nodes) == (45, 6, 6)
        assert step.limits.enable_early_termination is True
        assert step.featurization.mode == "auto"
        assert step.training.enable_onnx_compatible_models is True
        rest = job._to_rest_object().as_dict()["properties"]
        assert rest["outputs"]["best_model"]["jobOutputType"] == "mlflow_model"  # the best model leaves the pipeline as MLflow

    def test_metrics_automl_cannot_optimise_are_refused(self, azure_settings: Settings) -> None:
        dataset = register_dataset(InMemoryDatasetStore(), samples.csv_bytes(samples.stratified_sample(300)), name="b").dataset
        with pytest.raises(InvalidInput, match="cannot optimise 'log_loss'"):
            AzureTrainer(FakeMLClient(), azure_settings).train(TrainingRequest(dataset=dataset, metric="log_loss"))

    def test_the_fake_refuses_jobs_the_sdk_refuses(self, azure_settings: Settings, code: Path) -> None:
        """The SDK's own checks run on submit: `JobOperations._validate` looks the job's compute up (here in the
        fake workspace, which lacks it), and `@latest` of a data asset with no version cannot be resolved."""
        from azure.ai.ml.exceptions import ValidationException

        from shared.adapters.azure.trainer import training_pipeline

        fake = FakeMLClient()
        job = training_pipeline(azure_settings, "azureml:bankmarketing:1", dataset_ref="bankmarketing:1", code=code)
        job.compute = "no-such-cluster"
        with pytest.raises(ValidationException, match="no-such-cluster"):
            fake.jobs.create_or_update(job)
        with pytest.raises(ResourceNotFoundError, match="bankmarketing"):
            fake.jobs.create_or_update(training_pipeline(azure_settings, "azureml:bankmarketing@latest", dataset_ref="b", code=code))
        assert fake.jobs.submitted == []

    def test_an_azureml_schedule_on_latest_trains_a_frozen_version(self, azure_settings: Settings, code: Path) -> None:
        """Why bankops publishes no JobSchedule: the SDK resolves `@latest` when the schedule is created."""
        from azure.ai.ml.entities import CronTrigger, JobSchedule

        from shared.adapters.azure.trainer import training_pipeline

        fake = FakeMLClient()
        _register_data_asset(fake, "1")
        job = training_pipeline(azure_settings, "azureml:bankmarketing@latest", dataset_ref="bankmarketing", code=code)
        fake.schedules.begin_create_or_update(JobSchedule(name="s", trigger=CronTrigger(expression="0 2 * * *"), create_job=job))
        _register_data_asset(fake, "2")
        fake.schedules.fire("s")
        assert fake.jobs.submitted[-1].inputs["training_data"]._data.path.endswith("/data/azureml:bankmarketing/versions/1")

    def test_the_daily_timer_trains_a_version_registered_after_publishing(self, azure_settings: Settings, tmp_path: Path,
                                                                          code: Path) -> None:
        """Defect 2: the next scheduled run trains the newest version, not the one newest at publish time."""
        from functions.daily_retrain import daily_retrain
        from functions.runtime import use

        fake = FakeMLClient()
        fake.schedules.begin_create_or_update(_frozen_schedule(azure_settings, code))  # left by an older bankops
        datasets = InMemoryDatasetStore()
        register_dataset(datasets, samples.csv_bytes(samples.stratified_sample(300, seed=1)), name="bankmarketing")
        answer = publish_pipeline(fake, azure_settings, newest=datasets.get("bankmarketing").ref)
        assert answer["removed_azureml_schedule"] == "bankops-daily-training" and fake.schedules.schedules == {}
        assert answer["cron"] == "0 0 2 * * *" and "newest version of bankmarketing" in answer["dataset"]
        register_dataset(datasets, samples.csv_bytes(samples.stratified_sample(320, seed=2)), name="bankmarketing")
        auto = make_automation(settings=azure_settings, datasets=datasets, registry=AzureModelRegistry(fake, "m", runs=fake.runs),
                               tracker=InMemoryRunTracker(), datastore=InMemoryDatastore(), deployer=None,  # type: ignore[arg-type]
                               queue=WorkQueue(tmp_path / "queue.db"), trainer=AzureTrainer(fake, azure_settings))
        use(auto)
        from azure.functions.timer import TimerRequest

        daily_retrain.build().get_user_function()(TimerRequest(past_due=False))
        job = Worker(auto).run_once("training")
        assert job is not None and job.result["dataset"] == "bankmarketing:2", job
        submitted = fake.jobs.submitted[-1]
        assert submitted.tags["dataset"] == "bankmarketing:2"
        assert submitted.inputs["training_data"]._data.path.endswith("/data/bankmarketing/versions/2")  # resolved as on submit
        assert cron5("0 30 4 * * 1-5") == "30 4 * * 1-5"
        with pytest.raises(InvalidInput):
            cron5("daily")

    def test_fire_the_pipeline_through_a_rest_url_with_an_entra_token(self, azure_settings: Settings) -> None:
        seen: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json={"Id": "run-77"})

        url = "https://westeurope.api.azureml.ms/pipelines/v1.0/subscriptions/s/resourceGroups/g/providers/x/workspaces/w/PipelineRuns/PipelineSubmit/abc"
        credential = FakeCredential()
        http = httpx.Client(transport=httpx.MockTransport(answer))
        assert fire_rest(url, credential, "bankmarketing", http=http) == "run-77"
        assert seen[0].headers["Authorization"] == "Bearer token-for-https://management.azure.com/.default"
        assert json.loads(seen[0].content) == {"ExperimentName": "bankmarketing"}
        assert rest_scope("https://x.inference.ml.azure.com/jobs") == "https://ml.azure.com/.default"
        settings = load_settings(home=azure_settings.home, pipeline_rest_url=url)
        dataset = register_dataset(InMemoryDatasetStore(), samples.csv_bytes(samples.stratified_sample(300)), name="b").dataset
        submission = AzureTrainer(FakeMLClient(), settings, credential=credential, http=http).train(TrainingRequest(dataset=dataset))
        assert submission.run_id == "run-77" and submission.details == {"via": "rest"}


class TestBlueGreen:
    def test_each_step_builds_the_right_entity_and_traffic_moves_only_after_the_smoke_test(
            self, frame: pd.DataFrame, tmp_path: Path) -> None:
        fake = FakeMLClient()
        deployer = AzureDeployer(fake, _registry_with(fake, frame, tmp_path), endpoint_name="bankops-scoring",
                                 instance_type="Standard_DS3_v2", retry_after_s=7)
        with pytest.raises(InProgress, match="creating endpoint") as step:
            deployer.deploy("1")
        assert step.value.retry_after_s == 7
        endpoint = fake.online_endpoints.created[0]
        assert (endpoint.name, endpoint.auth_mode) == ("bankops-scoring", "key")
        with pytest.raises(InProgress, match="endpoint bankops-scoring is creating"):
            deployer.deploy("1")
        fake.settle()
        with pytest.raises(InProgress, match="creating deployment model-v1"):
            deployer.deploy("1")
        created = fake.online_deployments.created[0]
        assert created.app_insights_enabled is True and created.model == "azureml:bankmarketing-classifier:1"
        assert (created.instance_type, created.instance_count, created.endpoint_name) == ("Standard_DS3_v2", 1, "bankops-scoring")
        assert fake.online_endpoints.get("bankops-scoring").traffic == {}  # 0% while it provisions
        fake.settle()
        deployer.deploy("1")
        _, header, body = fake.online_endpoints.invocations[0]
        assert header == "model-v1" and body["input_data"]["columns"] == list(schema.FEATURES)
        assert fake.online_endpoints.updates == [{"model-v1": 100}]  # the traffic moved after the smoke test

    def test_the_old_deployment_is_retired_after_the_grace_period(self, frame: pd.DataFrame, tmp_path: Path) -> None:
        fake = FakeMLClient()
        now = [datetime(2026, 11, 27, 2, 0).timestamp()]
        deployer = AzureDeployer(fake, _registry_with(fake, frame, tmp_path), endpoint_name="bankops-scoring", grace_minutes=60,
                                 retry_after_s=0, clock=lambda: now[0])
        for version in ("1", "2"):
            until_settled(lambda v=version: deployer.deploy(v), fake.settle)
        endpoint = fake.online_endpoints.get("bankops-scoring")
        assert endpoint.traffic == {"model-v1": 0, "model-v2": 100}
        assert endpoint.tags["retired.model-v1"] == "2026-11-27T02:00:00+00:00"
        now[0] += 59 * 60
        assert deployer.retire_expired() == [] and "model-v1" not in fake.online_deployments.deleted
        now[0] += 2 * 60
        assert deployer.retire_expired() == ["model-v1"]
        assert fake.online_deployments.deleted == ["model-v1"] and deployer.current() == "2"

    def test_a_bad_answer_deletes_the_new_deployment_and_the_old_keeps_serving(self, frame: pd.DataFrame, tmp_path: Path) -> None:
        fake = FakeMLClient()
        deployer = AzureDeployer(fake, _registry_with(fake, frame, tmp_path), endpoint_name="bankops-scoring", retry_after_s=0)
        until_settled(lambda: deployer.deploy("1"), fake.settle)
        fake.online_deployments.answers["model-v2"] = json.dumps(["maybe", "maybe"])
        with pytest.raises(BankopsError) as broken:
            until_settled(lambda: deployer.deploy("2"), fake.settle)
        assert "failed its smoke test before taking traffic" in broken.value.message and "v1 keeps serving" in broken.value.message
        assert deployer.current() == "1" and fake.online_deployments.deleted == ["model-v2"]

    def test_a_failed_provisioning_reports_the_logs(self, frame: pd.DataFrame, tmp_path: Path) -> None:
        fake = FakeMLClient()
        fake.online_deployments.fail.add("model-v1")
        deployer = AzureDeployer(fake, _registry_with(fake, frame, tmp_path, n=1), endpoint_name="bankops-scoring", retry_after_s=0)
        with pytest.raises(BankopsError, match=r"(?s)deployment model-v1 failed.*InferenceServer"):
            until_settled(lambda: deployer.deploy("1"), fake.settle)
        assert deployer.current() is None

    def test_keys_and_logs(self, frame: pd.DataFrame, tmp_path: Path) -> None:
        fake = FakeMLClient()
        deployer = AzureDeployer(fake, _registry_with(fake, frame, tmp_path, n=1), endpoint_name="bankops-scoring", retry_after_s=0)
        until_settled(lambda: deployer.deploy("1"), fake.settle)
        assert deployer.keys() == {"primary": "primary-0", "secondary": "secondary-0"}
        deployer.regenerate_key("secondary")
        assert deployer.keys()["secondary"] == "secondary-1" and deployer.keys()["primary"] == "primary-0"
        assert "model-v1: Succeeded" in deployer.logs("1", 10)
        with pytest.raises(BankopsError):
            deployer.regenerate_key("tertiary")

    def test_answers_of_every_scoring_shape_are_read(self) -> None:
        assert parse_answer('["yes", "no"]') == (["yes", "no"], None)
        assert parse_answer('{"predictions": [{"prediction": "no", "probability_yes": 0.1}]}') == (["no"], [0.1])
        assert parse_answer(json.dumps(json.dumps({"result": ["yes"]}))) == (["yes"], None)


def test_run_completed_registers_the_best_child_then_deploys_step_by_step(frame: pd.DataFrame, tmp_path: Path) -> None:
    """An Azure ML RunCompleted event, end to end through the real queue and worker with the azure adapters."""
    from tests.contract.test_trainer_contract import automl_output

    fake = FakeMLClient()
    datasets = InMemoryDatasetStore()
    dataset = register_dataset(datasets, samples.csv_bytes(samples.stratified_sample(600, seed=2)), name="bankmarketing").dataset
    registry = AzureModelRegistry(fake, "bankmarketing-classifier", runs=fake.runs, cache_dir=tmp_path / "cache")
    settings = load_settings(home=tmp_path / "home")
    auto = make_automation(settings=settings, datasets=datasets, registry=registry, tracker=InMemoryRunTracker(),
                           datastore=InMemoryDatastore(), queue=WorkQueue(tmp_path / "queue.db", retry_delay_s=0),
                           deployer=AzureDeployer(fake, registry, endpoint_name="bankops-scoring", retry_after_s=0),
                           trainer=AzureTrainer(fake, settings, registry=registry))
    control.retrain(auto, None)
    job = Worker(auto).run_once("training")
    assert job is not None and job.result["outcome"] == "submitted"
    frame_600 = pd.read_csv(io.BytesIO(datasets.read(dataset)))
    automl_run = fake.complete_automl(job.result["run_id"], automl_output(frame_600, tmp_path / "out" / "mlflow-model"),
                                      {"AUC_weighted": 0.93, "accuracy": 0.91},
                                      dataset_folder=mount_dataset(datasets, dataset, tmp_path / "mounted"))
    pipeline_run = job.result["run_id"]
    tags = fake.jobs.get(pipeline_run).tags  # what the evaluate step wrote on the pipeline run
    assert tags["bankops_decision"] == "promote" and tags["bankops_champion"] == "none", tags
    assert "is the first model" in tags["bankops_reason"] and 0.5 < float(tags["bankops_metric_AUC_weighted"]) <= 1

    def no_loading(version: str) -> Any:
        raise AssertionError(f"the function app loaded model v{version}: the gate and the smoke test must not need it")

    registry.load = no_loading  # type: ignore[method-assign]
    # the documented events, naming the runs this pipeline made; runTags are the tags the trainer put on the job
    [step] = event_fixtures.load("run_completed_automl_step.eventgrid")
    step["data"] |= {"runId": automl_run, "runTags": step["data"]["runTags"] | {"azureml.pipelinerunid": pipeline_run}}
    [event] = event_fixtures.load("run_completed_pipeline_run.eventgrid")
    event["data"] |= {"runId": pipeline_run, "runTags": fake.jobs.get(pipeline_run).tags}
    assert control.events(auto, [step]) == {"accepted": [], "ignored": [step["id"]]}  # the AutoML step: not the trigger
    assert control.events(auto, [event]) == {"accepted": [event["id"]], "ignored": []}
    assert control.events(auto, [event]) == {"accepted": [], "ignored": [event["id"]]}  # at-least-once delivery
    worker, steps = Worker(auto), 0
    while (result := worker.run_once("control")) is not None and result.status == "queued":
        steps += 1
        assert result.result["progress"].startswith("creating")  # deferred, not failed: no attempt used
        fake.settle()
    assert result is not None and result.status == "done" and result.result["outcome"] == "deployed", result
    assert steps == 2  # endpoint, then deployment
    model = registry.get("1")
    assert model.tags["pipeline_run"] == pipeline_run and model.tags["best_child_run"] == f"{automl_run}_3"
    assert model.tags["automl_run"] == automl_run
    assert model.tags["dataset"] == "bankmarketing:1" and model.metrics["AUC_weighted"] == pytest.approx(0.93)
    assert fake.models.created[0].path == f"azureml://jobs/{automl_run}_3/outputs/artifacts/outputs/mlflow-model/"
    assert registry.alias(CHAMPION).version == "1"  # type: ignore[union-attr]
    assert auto.deployer.current() == "1"
    assert registry.register_from_run(pipeline_run).version == "1"  # asked again: the same version


def test_bootstrap_builds_the_azure_adapters_on_the_given_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from shared.adapters.azure.deployer import AzureDeployer as Deployer
    from shared.adapters.azure.tracking import WorkspaceRuns
    from shared.bootstrap import AzureBackend, bootstrap

    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    fake, credential = FakeMLClient(), FakeCredential()
    backend = bootstrap(load_settings(home=tmp_path / "home", backend="azure", datastore="azure",
                                      endpoint_name="bankops-x"), ml_client=fake, credential=credential)
    assert isinstance(backend, AzureBackend)
    assert isinstance(backend.trainer, AzureTrainer) and isinstance(backend.deployer, Deployer)
    assert backend.deployer.endpoint_name == "bankops-x"
    registry = backend.registry
    assert isinstance(registry, AzureModelRegistry) and isinstance(registry.runs, WorkspaceRuns)
    client = registry.runs._fresh()
    assert client.tracking_uri.startswith("https://westeurope.api.azureml.ms/mlflow/")
    assert os.environ["MLFLOW_TRACKING_TOKEN"] == "token-for-https://management.azure.com/.default"


def test_publish_pipeline_says_the_timer_trains_the_newest_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`bankops azure publish-pipeline` names what retrains daily, on which data, and what it removed."""
    from typer.testing import CliRunner

    from shared.bootstrap import AzureBackend
    from shared.cli import azure_commands
    from shared.cli.main import app

    fake = FakeMLClient(store=tmp_path / "ws")
    settings = load_settings(home=tmp_path / "home", backend="azure", datastore="azurite")
    backend = AzureBackend(settings, ml_client=fake, credential=object())
    backend.datasets = InMemoryDatasetStore()  # type: ignore[misc]
    register_dataset(backend.datasets, samples.csv_bytes(samples.stratified_sample(300, seed=1)), name=settings.dataset_name)
    monkeypatch.setattr(azure_commands, "_azure", lambda home: backend)
    answer = CliRunner().invoke(app, ["azure", "publish-pipeline"])
    assert answer.exit_code == 0, answer.output
    out = json.loads(answer.output)
    assert out["schedule"] == "function app timer daily_retrain" and out["removed_azureml_schedule"] == "none"
    assert out["dataset"] == f"the newest version of {settings.dataset_name} at each firing (now {settings.dataset_name}:1)"
    assert "@latest" not in answer.output
