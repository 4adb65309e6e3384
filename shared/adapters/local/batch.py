"""BatchRunner in this process: the local batch step (`score_blob`) on the datastore, recorded as a tracking run.

`submit` returns once the predictions are written, like the local trainer; the run id is the
tracking run tagged bankops.kind=batch, which `status` reads back. The batch step (pyarrow, the
model libraries) is imported when a file is scored: the composition root builds this runner for
the local backend only, and nothing the function app loads imports it.
"""

from __future__ import annotations

from typing import Any

from shared.batch.files import KIND_TAG
from shared.errors import InvalidInput, NotFound
from shared.ports import BatchRunStatus, BatchSubmission, Datastore, ModelRegistry, RunTracker

_STATES = {"FINISHED": "completed", "FAILED": "failed", "KILLED": "failed"}


def split_blob(input_uri: str) -> tuple[str, str]:
    """"batch/clients.csv" -> ("batch", "clients.csv"); the local datastore knows nothing else."""
    container, _, name = input_uri.partition("/")
    if "://" in input_uri or not container or not name:
        raise InvalidInput(f"the local backend scores a datastore file such as batch/clients.csv, not {input_uri!r}")
    return container, name


class LocalBatchRunner:
    def __init__(self, *, datastore: Datastore, tracker: RunTracker, registry: ModelRegistry, native: bool) -> None:
        """`native`: large chunks run the trees compiled to native code (Settings.native_trees)."""
        self.datastore, self.tracker, self.registry, self.native = datastore, tracker, registry, native

    def submit(self, input_uri: str, model_version: str, output_name: str | None = None, *, key: str = "") -> BatchSubmission:
        """Score now (a file with the wrong columns raises InvalidDataset before anything is written). `key` is not
        needed here: the work queue's ledger already keeps a repeated event from scoring twice."""
        from shared.batch.blob import score_blob
        from shared.batch.scorer import BatchModel

        container, name = split_blob(input_uri)
        version = self.registry.get(str(model_version)).version
        model = BatchModel.load(self.registry, version, native=self.native)
        run = score_blob(self.datastore, self.tracker, model, container, name, output_name)
        return BatchSubmission(run_id=run.run_id, scored=True, details=run.as_dict())

    def prepare(self, model_version: str) -> dict[str, Any]:
        """The version's boosters compiled to native code ahead of the first file."""
        from shared.batch.scorer import prepare

        return prepare(self.registry, self.registry.get(str(model_version)).version, native=self.native)

    def status(self, run_id: str) -> BatchRunStatus:
        report = self.tracker.report(run_id)
        if report.tags.get(KIND_TAG) != "batch":
            raise NotFound(f"run {run_id} is not a batch run")
        return BatchRunStatus(run_id=report.run_id, state=_STATES.get(report.status, "running"), input=report.params.get("input", ""),
                              output=report.params.get("output", ""), model_version=report.params.get("model_version", ""),
                              details={"started_at": report.started_at, "input_sha256": report.params.get("input_sha256", "")})
