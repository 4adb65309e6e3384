"""`bankops batch-score` (rank a client list with a registered model) and `bankops batch-runs`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared.cli.app import HomeOpt, app, backend_for, console, friendly_errors

PREPARE_BYTES = 1 << 20  # about 9,000 rows: enough for chunks large enough to run natively


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
    from shared.batch.blob import record_run
    from shared.batch.files import HEADER_BYTES, check_header_bytes
    from shared.batch.job import BatchOptions, rejects_path, score_file
    from shared.batch.scorer import BatchModel
    from shared.model import input_columns
    from shared.ports import chosen_version

    _, backend = backend_for(home)
    output = output or input_csv.with_name(f"{input_csv.stem}.predictions.csv")
    if output.resolve() == input_csv.resolve():
        raise typer.BadParameter("the output must not overwrite the input", param_hint="--output")
    version = chosen_version(backend.registry, model_version)
    console.print(f"scoring {input_csv} with {backend.settings.model_name} v{version}")
    with input_csv.open("rb") as head:
        # a wrong file fails at once, before the model is prepared; it must hold the columns this version uses
        check_header_bytes(head.read(HEADER_BYTES), input_columns(backend.registry.load(version)))
    model = BatchModel.load(backend.registry, version)
    if input_csv.stat().st_size >= PREPARE_BYTES:
        with console.status(f"preparing v{version}: compiling its trees to native code (seconds, once per version; cached)"):
            native = model.compiled.prepare_native()
        if native:
            console.print(f"  native trees: {', '.join(native)}", highlight=False)
    progress = _RowsProgress(input_csv.stat().st_size)
    with progress.bar:
        summary = score_file(model, input_csv, output, BatchOptions(top=top, threshold=threshold), progress)
    run_id = record_run(backend.tracker, str(input_csv), str(output), summary)
    console.print(f"read {summary.rows_read:,} rows · scored {summary.rows_scored:,} · rejected {summary.rows_rejected:,} · "
                  f"wrote {summary.rows_written:,} in {summary.duration_s:.1f}s ({summary.rows_per_s:,.0f} rows/s)", highlight=False)
    console.print(f"  output {output}", highlight=False)
    if summary.rows_rejected:
        console.print(f"  rejects (line and reason) {rejects_path(output)}", highlight=False)
    console.print(f"  input sha256 {summary.input_sha256[:12]} · run {run_id} · `bankops batch-runs` lists batch runs", highlight=False)


@app.command("batch-runs")
@friendly_errors
def batch_runs(home: HomeOpt = None, last: Annotated[int, typer.Option(help="How many runs to show.", min=1)] = 20) -> None:
    """Recent batch scoring runs (CLI and batch/ folder): input, rows, model version, duration."""
    _, backend = backend_for(home)
    tracker = backend.tracker
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
