"""`bankops azure ...`: the Azure ML side from the terminal (publish the pipeline and schedule, fire it, endpoint ops)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any

import typer

from shared.cli.app import HomeOpt, app, console, friendly_errors, load_settings

azure_app = typer.Typer(help="Azure ML: pipeline, schedule, endpoint logs and keys (BANKOPS_BACKEND=azure settings).",
                        no_args_is_help=True)
app.add_typer(azure_app, name="azure")


def _azure(home: Any) -> Any:
    """The azure backend from settings, whatever BANKOPS_BACKEND says (these commands are about Azure)."""
    from shared.bootstrap import bootstrap

    return bootstrap(load_settings(home=home, backend="azure"))


def _print(answer: Any) -> None:
    console.print_json(json.dumps(answer))


@azure_app.command("publish-pipeline")
@friendly_errors
def publish_pipeline(home: HomeOpt = None) -> None:
    """The daily retrain is the function app's timer (RETRAIN_SCHEDULE, UTC) on the newest dataset version; removes an
    Azure ML JobSchedule published by an older bankops (it trained a frozen version)."""
    from shared.adapters.azure.trainer import publish_pipeline as publish
    from shared.errors import NotFound

    backend = _azure(home)
    try:
        newest = backend.datasets.get(backend.settings.dataset_name).ref
    except NotFound:
        newest = ""
    _print(publish(backend.ml_client, backend.settings, newest=newest))


@azure_app.command("fire-pipeline")
@friendly_errors
def fire_pipeline(
    dataset: Annotated[str | None, typer.Option(help="NAME[:VERSION] of a registered data asset (default: the newest).")] = None,
    home: HomeOpt = None,
) -> None:
    """Run the training pipeline now: an Azure ML pipeline job, or a POST to BANKOPS_PIPELINE_REST_URL when set."""
    from shared.ports import TrainingRequest

    backend = _azure(home)
    s = backend.settings
    if s.pipeline_rest_url:
        from shared.adapters.azure.trainer import fire_rest

        _print({"run_id": fire_rest(s.pipeline_rest_url, backend.credential, s.experiment_name), "via": "rest"})
        return
    from shared.ports import parse_dataset_ref

    found = backend.datasets.get(*parse_dataset_ref(dataset or s.dataset_name))
    submission = backend.trainer.train(TrainingRequest(dataset=found, metric=s.primary_metric, folds=s.cv_folds, reason="cli"))
    _print({"run_id": submission.run_id, "dataset": submission.dataset, **submission.details})


@azure_app.command("logs")
@friendly_errors
def logs(
    model_version: Annotated[str, typer.Argument(help="The model version whose deployment to read.")],
    lines: Annotated[int, typer.Option(help="How many lines.")] = 100,
    container: Annotated[str | None, typer.Option(help="InferenceServer (default) or StorageInitializer.")] = None,
    home: HomeOpt = None,
) -> None:
    """The last log lines of a deployment's container."""
    console.print(_azure(home).deployer.logs(model_version, lines, container), highlight=False, markup=False)


@azure_app.command("keys")
@friendly_errors
def keys(
    regenerate: Annotated[str | None, typer.Option(help="Regenerate this key first: primary or secondary.")] = None,
    home: HomeOpt = None,
) -> None:
    """Show the endpoint's scoring URI and keys (regenerate one without downtime: clients use the other meanwhile)."""
    deployer = _azure(home).deployer
    if regenerate:
        deployer.regenerate_key(regenerate)
    _print({"scoring_uri": deployer.scoring_uri(), **deployer.keys()})


@azure_app.command("retire")
@friendly_errors
def retire(home: HomeOpt = None) -> None:
    """Delete deployments that have had no traffic for BANKOPS_DEPLOY_GRACE_MINUTES."""
    _print({"deleted": _azure(home).deployer.retire_expired()})


@azure_app.command("batch-deploy")
@friendly_errors
def batch_deploy(
    model_version: Annotated[str | None, typer.Option(help="The version to deploy (default: the champion).")] = None,
    home: HomeOpt = None,
) -> None:
    """Create or update the batch endpoint and the model's batch deployment, and make it the default (run again until ready)."""
    from shared.ports import chosen_version

    backend = _azure(home)
    _print(backend.batch_runner.deploy(chosen_version(backend.registry, model_version)))


@azure_app.command("batch-score")
@friendly_errors
def batch_score(
    uri: Annotated[str, typer.Argument(help="batch/NAME.csv in the data account, or an https:// or azureml:// URI of a CSV.")],
    model_version: Annotated[str | None, typer.Option(help="Score with this version (default: the champion).")] = None,
    output_name: Annotated[str | None, typer.Option(help="Predictions file name (default NAME.predictions.csv; pipeline mode).")] = None,
    home: HomeOpt = None,
) -> None:
    """Submit an Azure ML batch job (endpoint or pipeline, AZUREML_BATCH_MODE) that writes predictions/NAME.predictions.csv."""
    from shared.ports import chosen_version

    backend = _azure(home)
    runner = backend.batch_runner
    run_id = runner.submit(uri, chosen_version(backend.registry, model_version), output_name).run_id
    _print({"run_id": run_id, **asdict(runner.status(run_id))})


@azure_app.command("batch-status")
@friendly_errors
def batch_status(run_id: Annotated[str, typer.Argument(help="The run id batch-score printed.")], home: HomeOpt = None) -> None:
    """Where an Azure ML batch job stands: running, completed or failed, and its output."""
    status = _azure(home).batch_runner.status(run_id)
    _print(asdict(status))


@azure_app.command("deploy-model")
@friendly_errors
def deploy_model(
    version: Annotated[str, typer.Argument(help="A version of the local registry (`bankops models`).")],
    wait: Annotated[float, typer.Option(help="Seconds to wait for Azure ML to provision; then run the command again.", min=0)] = 1800,
    home: HomeOpt = None,
) -> None:
    """Register a locally trained version in the workspace and roll it out to the managed online endpoint
    (blue/green: new deployment at 0%, smoke test, traffic swap, champion alias), as an Azure-trained one."""
    from shared.automation.local_to_azure import deploy_local_version
    from shared.bootstrap import bootstrap, build_automation

    local = bootstrap(load_settings(home=home, backend="local")).registry
    auto = build_automation(backend=_azure(home))
    _print(deploy_local_version(local, auto, version, wait_s=wait))
