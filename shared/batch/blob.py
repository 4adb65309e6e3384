"""The batch step on the datastore: a CSV in `batch` scored into `predictions/<name>.predictions.csv`.

Streams when the datastore can (`StreamingDatastore`: local folders), else reads the file whole.
The output is scored into a temporary file first, so `predictions` only ever holds whole files.
Every run is recorded as a tracking run tagged bankops.kind=batch.
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, BinaryIO

from shared.batch.files import KIND_TAG, PREDICTIONS, output_names
from shared.batch.job import BatchSummary, score_stream
from shared.batch.scorer import BatchModel
from shared.ports import Datastore, RunTracker, StreamingDatastore


@dataclass(frozen=True)
class BatchRun:
    run_id: str
    source: str
    output: str
    rejects: str | None
    summary: BatchSummary

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "input": self.source, "output": self.output, "rejects": self.rejects,
                **self.summary.as_dict()}


def record_run(tracker: RunTracker, source: str, output: str, summary: BatchSummary,
               tags: dict[str, str] | None = None) -> str:
    """Log a finished batch run (input, hash, rows, model version, duration); returns its run id."""
    with tracker.run(f"batch {PurePosixPath(source).name}", tags={KIND_TAG: "batch"} | (tags or {})) as run_id:
        tracker.log_params({"input": source, "output": output, "input_sha256": summary.input_sha256,
                            "model_version": summary.model_version})
        tracker.log_metrics({"rows_read": summary.rows_read, "rows_scored": summary.rows_scored,
                             "rows_rejected": summary.rows_rejected, "rows_written": summary.rows_written,
                             "duration_s": summary.duration_s, "rows_per_s": summary.rows_per_s})
        tracker.set_tags({"bankops.model_version": summary.model_version})
    return run_id


def _open(datastore: Datastore, container: str, name: str) -> BinaryIO:
    if isinstance(datastore, StreamingDatastore):
        return datastore.open_read(container, name)
    return io.BytesIO(datastore.read(container, name))


def _save(datastore: Datastore, name: str, data: BinaryIO) -> None:
    data.seek(0)
    if isinstance(datastore, StreamingDatastore):
        datastore.write_from(PREDICTIONS, name, data)
    else:
        datastore.write(PREDICTIONS, name, data.read())


def score_blob(datastore: Datastore, tracker: RunTracker, model: BatchModel, container: str, name: str,
               output_name: str | None = None) -> BatchRun:
    """Score `container/name` into the predictions container and record the run.

    `output_name` defaults to `<stem>.predictions.csv` (rejects: `<output stem>.rejects.csv`).
    A file with the wrong columns raises InvalidDataset before anything is written.
    """
    output, rejects = output_names(name) if output_name is None else (output_name, f"{PurePosixPath(output_name).stem}.rejects.csv")
    with _open(datastore, container, name) as source, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as bad:
        summary = score_stream(model, source, out, bad)
        _save(datastore, output, out)
        if summary.rows_rejected:
            _save(datastore, rejects, bad)
    run_id = record_run(tracker, f"{container}/{name}", f"{PREDICTIONS}/{output}", summary)
    return BatchRun(run_id, f"{container}/{name}", f"{PREDICTIONS}/{output}",
                    f"{PREDICTIONS}/{rejects}" if summary.rows_rejected else None, summary)
