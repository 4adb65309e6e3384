"""`bankops`: register data, train, and review runs and models from the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from shared.cli.app import HomeOpt, app, backend_for, console, err, friendly_errors

if TYPE_CHECKING:
    from shared.bootstrap import Backend
    from shared.config import Settings
    from shared.ports import DatasetVersion

TRAIN_NATIVE_WAIT_S = 120.0  # `bankops train` waits this long for the new version's machine code (about 5-15 s on 2 cores)
data_app = typer.Typer(help="Register and list dataset versions.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _short(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.3g}"


def _dataset_table(versions: list[DatasetVersion]) -> Table:
    table = Table("dataset", "version", "rows", "share yes", "content hash", "registered", "source")
    for v in versions:
        table.add_row(v.name, str(v.version), f"{v.rows:,}", f"{v.positive_share:.1%}", v.content_hash[:12],
                      v.created_at, Path(v.source).name if v.source else "")
    return table


@data_app.command("register")
@friendly_errors
def data_register(
    path: Annotated[Path, typer.Argument(help="CSV with the 20 features and target y.", exists=True, dir_okay=False)],
    name: Annotated[str | None, typer.Option(help="Dataset name (default bankmarketing).")] = None,
    home: HomeOpt = None,
) -> None:
    """Validate a CSV and register it as a new version of a dataset (same content: same version)."""
    from shared.dataset_registration import register_dataset

    settings, backend = backend_for(home)
    reg = register_dataset(backend.datasets, path, name=name or settings.dataset_name,
                           holdout_fraction=settings.holdout_fraction, seed=settings.seed,
                           min_rows=settings.min_rows, min_rows_per_class=settings.min_rows_per_class)
    for warning in reg.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    verb = "registered" if reg.created else "already registered, unchanged:"
    d = reg.dataset
    console.print(f"{verb} {d.ref} ({d.rows:,} rows, {d.positive_share:.1%} yes, sha256 {d.content_hash[:12]})")


@data_app.command("list")
@friendly_errors
def data_list(name: Annotated[str | None, typer.Option(help="Only this dataset.")] = None, home: HomeOpt = None) -> None:
    """Show every registered dataset version."""
    _, backend = backend_for(home)
    versions = backend.datasets.list(name)
    if not versions:
        console.print("no dataset registered yet: `bankops data register PATH` or `bankops train`")
        return
    console.print(_dataset_table(versions))


def resolve_dataset(backend: Backend, settings: Settings, ref: str | None) -> DatasetVersion:
    """NAME[:VERSION]; with nothing registered and no ref, the shipped data becomes version 1."""
    from shared.dataset_registration import register_dataset
    from shared.resources import shipped_data

    if ref is None and not backend.datasets.list(settings.dataset_name):
        reg = register_dataset(backend.datasets, shipped_data(), name=settings.dataset_name,
                               holdout_fraction=settings.holdout_fraction, seed=settings.seed, source_name="shipped")
        console.print(f"registered the shipped UCI bank marketing data as {reg.dataset.ref}")
        return reg.dataset
    from shared.ports import parse_dataset_ref

    return backend.datasets.get(*parse_dataset_ref(ref or settings.dataset_name))


@app.command()
@friendly_errors
def train(
    dataset: Annotated[str | None, typer.Option(help="NAME or NAME:VERSION (default: newest bankmarketing).")] = None,
    budget: Annotated[float | None, typer.Option(help="AutoML time budget in seconds (default 60).", min=1)] = None,
    metric: Annotated[str | None, typer.Option(help="Primary metric (default AUC_weighted).")] = None,
    exclude_columns: Annotated[str | None, typer.Option(help="Comma-separated features to leave out, e.g. duration.")] = None,
    pre_call: Annotated[bool, typer.Option("--pre-call", help="A model for ranking clients before calling them: "
                                           "leaves out the features known only after the call (duration); "
                                           "the same as --exclude-columns duration.")] = False,
    native_wait: Annotated[bool, typer.Option(help="Wait (up to 120 s) for the new version's trees to compile to "
                                              "native code, so its first batch run and its scoring workers find "
                                              "them cached; without, they compile in the background.")] = True,
    home: HomeOpt = None,
) -> None:
    """Run the training pipeline: validate, split, AutoML, evaluate on the holdout, register."""
    from shared import schema
    from shared.cli.progress import RichTrainingProgress
    from shared.config import split_columns
    from shared.ports import TrainingRequest
    from shared.training.pipeline import TrainingPipeline

    if pre_call:
        exclude_columns = ",".join(dict.fromkeys([*split_columns(exclude_columns), *schema.LEAKY_FEATURES]))
    waits = {"native_registration_wait_s": TRAIN_NATIVE_WAIT_S} if native_wait else {}
    settings, backend = backend_for(home, automl_budget_s=budget, primary_metric=metric, exclude_columns=exclude_columns,
                                    **waits)
    version = resolve_dataset(backend, settings, dataset)
    request = TrainingRequest(dataset=version, budget_s=settings.automl_budget_s, metric=settings.primary_metric,
                              exclude_columns=tuple(split_columns(settings.exclude_columns)), folds=settings.cv_folds,
                              seed=settings.seed)
    console.print(f"training on {version.ref} ({version.rows:,} rows), budget {request.budget_s:.0f}s, "
                  f"metric {request.metric}")
    with RichTrainingProgress(console, request.budget_s) as progress:
        outcome = TrainingPipeline(datasets=backend.datasets, registry=backend.registry, tracker=backend.tracker,
                                   progress=progress).run(request)
    for warning in outcome.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    m = outcome.metrics
    if outcome.features_dropped:
        console.print(f"left out as noise (shuffling them did not lower the CV score): {', '.join(outcome.features_dropped)}")
    console.print(
        f"registered [bold]{outcome.model_version.name} v{outcome.model_version.version}[/] "
        f"({outcome.ensemble}) in {outcome.duration_s:.0f}s, {outcome.trials} trials\n"
        f"  holdout AUC_weighted {m['AUC_weighted']:.4f} · accuracy {m['accuracy']:.4f} · "
        f"recall(yes) {m['recall_yes']:.3f} · CV {outcome.cv_score:.4f}\n"
        f"  run {outcome.run_id} · `bankops runs` for the leaderboard · MLflow UI: "
        f"mlflow ui --backend-store-uri {settings.paths.tracking_uri}"
    )


@app.command()
@friendly_errors
def runs(run_id: Annotated[str | None, typer.Argument(help="A pipeline run id (default: the newest).")] = None,
         home: HomeOpt = None, top: Annotated[int, typer.Option(help="Trials to show.")] = 20) -> None:
    """The AutoML leaderboard of a run and its best model's holdout metrics."""
    from shared.training.learners import LEARNER_NAMES
    from shared.training.pipeline import HEADLINE

    _, backend = backend_for(home)
    report = backend.tracker.report(run_id)
    metric = report.params.get("primary_metric", "AUC_weighted")
    console.print(f"run {report.run_id} · {report.status} · started {report.started_at} · dataset "
                  f"{report.params.get('dataset', '?')} · model v{report.tags.get('bankops.model_version', '-')}")
    greater = metric != "log_loss"
    trials = sorted(report.trials, key=lambda t: t.cv_score, reverse=greater)
    table = Table("rank", "learner", f"CV {metric}", "train time", "hyperparameters", title=f"{len(trials)} trials")
    for rank, t in enumerate(trials[:top], 1):
        params = " ".join(f"{k}={_short(v)}" for k, v in sorted(t.params.items()))
        table.add_row(str(rank), LEARNER_NAMES.get(t.learner, t.learner), f"{t.cv_score:.4f}", f"{t.train_time_s:.2f}s", params)
    console.print(table)
    if report.tags.get("bankops.ensemble"):
        console.print(f"final model: {report.tags['bankops.ensemble']}")
    if report.tags.get("bankops.features_dropped"):
        console.print(f"left out as noise: {report.tags['bankops.features_dropped'].replace(',', ', ')}")
    if report.holdout_metrics:
        h = Table("holdout metric", "value")
        for key in (*HEADLINE, "average_precision", "precision_weighted", "recall_weighted", "recall_no",
                    "true_positives", "false_positives", "false_negatives", "true_negatives"):
            if key in report.holdout_metrics:
                value = report.holdout_metrics[key]
                h.add_row(key, f"{value:.0f}" if key.startswith(("true", "false")) else f"{value:.4f}")
        console.print(h)


@app.command()
@friendly_errors
def models(home: HomeOpt = None) -> None:
    """Registered model versions with their holdout metrics."""
    _, backend = backend_for(home)
    versions = backend.registry.list()
    if not versions:
        console.print("no model registered yet: run `bankops train`")
        return
    table = Table("version", "registered", "dataset", "AUC_weighted", "accuracy", "recall yes", "CV", "aliases", "model")
    for v in versions:
        def fmt(key: str, m: Any = v.metrics) -> str:
            return f"{m[key]:.4f}" if key in m else "-"
        table.add_row(v.version, v.created_at, v.tags.get("dataset", "-"), fmt("AUC_weighted"), fmt("accuracy"),
                      fmt("recall_yes"), fmt("cv_score"), ",".join(v.aliases) or "-", v.tags.get("ensemble", ""))
    console.print(table)


from shared.cli import azure_commands, batch_commands, host_commands, monitoring_commands, serving_commands  # noqa: E402, F401 - registers up, status, serve, deploy, keys, swagger, bench, azure, logs, monitor


def main() -> None:
    from shared.logging_setup import quiet_libraries
    from shared.openmp import apply_openmp_environment

    apply_openmp_environment()  # before any command imports a booster
    quiet_libraries()
    app()
