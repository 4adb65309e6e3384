"""`bankops batch-score` (rank a client list with a registered model) and `bankops batch-runs`."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared.cli.app import HomeOpt, app, backend_for, console, friendly_errors, load_settings

PREPARE_BYTES = 1 << 20  # about 9,000 rows: enough for chunks large enough to run natively
TIMINGS_ENV = "BANKOPS_BATCH_TIMINGS"  # a file to write the wall-clock times of the command's steps to (bench/batch_bench.py)

if TYPE_CHECKING:
    from shared.batch.scorer import BatchModel
    from shared.config import Settings


class _RowsProgress:
    """A bar over the input's bytes, with rows read and rows per second."""

    def __init__(self, total_bytes: int) -> None:
        self.started = time.monotonic()
        self.bar = Progress(TextColumn("[bold]scoring"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                            TextColumn("{task.fields[rows]}"), TimeElapsedColumn(), console=console, transient=False)
        self.task = self.bar.add_task("scoring", total=max(total_bytes, 1), rows="")

    def __call__(self, bytes_read: int, rows: int) -> None:
        rate = rows / max(time.monotonic() - self.started, 1e-9)
        self.bar.update(self.task, completed=bytes_read, rows=f"{rows:,} rows · {rate:,.0f} rows/s")


@app.command("batch-score")
@friendly_errors
def batch_score(
    input_csv: Annotated[Path, typer.Argument(help="CSV of clients: the features the model uses (any other columns pass through).",
                                              exists=True, dir_okay=False)],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Output CSV (default INPUT.predictions.csv).")] = None,
    model_version: Annotated[str | None, typer.Option(help="Registered version (default: the champion, else the newest).")] = None,
    top: Annotated[int | None, typer.Option(help="Write only the K clients most likely to say yes, most likely first.", min=1)] = None,
    threshold: Annotated[float | None, typer.Option(help="Write only clients with probability_yes >= P.", min=0, max=1)] = None,
    home: HomeOpt = None,
) -> None:
    """Score a client list of any length in bounded memory; rows that fail validation go to OUTPUT.rejects.csv."""
    from shared.batch import run_records
    from shared.batch.files import HEADER_BYTES, check_header_bytes
    from shared.batch.job import BatchOptions, rejects_path, score_file
    from shared.model import input_columns

    output = output or input_csv.with_name(f"{input_csv.stem}.predictions.csv")
    if output.resolve() == input_csv.resolve():
        raise typer.BadParameter("the output must not overwrite the input", param_hint="--output")
    marks = {"entered": time.time()}
    settings = load_settings(home=home)
    version, model = _load(settings, home, model_version)
    console.print(f"scoring {input_csv} with {settings.model_name} v{version}")
    with input_csv.open("rb") as head:
        # a wrong file fails at once, before the model is prepared; it must hold the columns this version uses
        check_header_bytes(head.read(HEADER_BYTES), input_columns(model.model))
    # what is cached runs natively (and what another process compiles meanwhile, from the next chunk on); what
    # is missing is compiled after this run, for the next ones: compilers beside the run made it slower than
    # the libraries alone (measured 1.05-1.4x, even at nice 19), and they finished after it anyway
    model.compiled.start_native(compile_missing=False)
    marks["loaded"] = time.time()
    progress = _RowsProgress(input_csv.stat().st_size)
    with progress.bar:
        summary = score_file(model, input_csv, output, BatchOptions(top=top, threshold=threshold), progress)
    marks["scored"] = time.time()
    if native := model.compiled.native_members:
        console.print(f"  native trees: {', '.join(native)}", highlight=False)
    if input_csv.stat().st_size >= PREPARE_BYTES and model.compiled.start_native(compile_missing=True):
        console.print("  native trees: compiling the others in the background for the next runs (once per version, "
                      "cached)", highlight=False)
    # the tracker (MLflow: seconds to import) logs the run after this command ends
    run_records.queue(settings.paths.root, str(input_csv), str(output), summary)
    run_records.start_recorder(settings.paths.root)
    marks["recorded"] = time.time()
    if timings := os.environ.get(TIMINGS_ENV):
        Path(timings).write_text(json.dumps(marks | {"native_members": model.compiled.native_members}))
    console.print(f"read {summary.rows_read:,} rows · scored {summary.rows_scored:,} · rejected {summary.rows_rejected:,} · "
                  f"wrote {summary.rows_written:,} in {summary.duration_s:.1f}s ({summary.rows_per_s:,.0f} rows/s)", highlight=False)
    console.print(f"  output {output}", highlight=False)
    if summary.rows_rejected:
        console.print(f"  rejects (line and reason) {rejects_path(output)}", highlight=False)
    console.print(f"  input sha256 {summary.input_sha256[:12]} · recorded as a batch run in the background · "
                  "`bankops batch-runs` lists them", highlight=False)


def _load(settings: Settings, home: Path | None, requested: str | None) -> tuple[str, BatchModel]:
    """The version to score with and its model: on the local backend read straight from the registry's
    files (no MLflow import), else, or when that cannot be done safely, through the registry port."""
    from shared.batch.scorer import BatchModel
    from shared.ports import chosen_version

    if settings.backend == "local":
        import joblib

        from shared.adapters.local.registry_index import LocalRegistryIndex

        paths = settings.paths
        index = LocalRegistryIndex(paths.mlflow_db, paths.artifacts, settings.model_name)
        if (version := index.version(requested)) is not None and (file := index.model_file(version)) is not None:
            return version, BatchModel.build(joblib.load(file), version, native=settings.native_trees)
    _, backend = backend_for(home)
    version = chosen_version(backend.registry, requested)
    return version, BatchModel.load(backend.registry, version, native=settings.native_trees)


@app.command("batch-runs")
@friendly_errors
def batch_runs(home: HomeOpt = None, last: Annotated[int, typer.Option(help="How many runs to show.", min=1)] = 20) -> None:
    """Recent batch scoring runs (CLI and batch/ folder): input, rows, model version, duration."""
    from shared.batch.run_records import record_pending

    settings, backend = backend_for(home)
    tracker = backend.tracker
    record_pending(tracker, settings.paths.root)  # runs of batch-score whose recorder has not finished yet
    client, experiment = getattr(tracker, "client", None), getattr(tracker, "experiment_id", None)
    if client is None or experiment is None:
        console.print("this backend's tracker cannot list runs here; see the workspace's runs tagged bankops.kind=batch")
        return
    runs = client.search_runs([experiment], "tags.`bankops.kind` = 'batch'", order_by=["attributes.start_time DESC"],
                              max_results=last)
    if not runs:
        console.print("no batch run yet: `bankops batch-score INPUT.csv`, or drop a CSV into the datastore's batch/ folder")
        return
    table = Table("started", "run", "input", "model", "read", "scored", "rejected", "seconds", "rows/s", "input sha256")
    for run in runs:
        p, m = run.data.params, run.data.metrics
        started = datetime.fromtimestamp(run.info.start_time / 1000, UTC).isoformat(timespec="seconds")
        table.add_row(started, run.info.run_id[:12], p.get("input", "?"), f"v{p.get('model_version', '?')}",
                      f"{m.get('rows_read', 0):,.0f}", f"{m.get('rows_scored', 0):,.0f}", f"{m.get('rows_rejected', 0):,.0f}",
                      f"{m.get('duration_s', 0):.1f}", f"{m.get('rows_per_s', 0):,.0f}", p.get("input_sha256", "")[:12])
    console.print(table)
