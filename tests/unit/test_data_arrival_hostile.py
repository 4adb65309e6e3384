"""Data arrival against hostile and careless files, on real folders and the real SQLite queue: issue 15 items 1-6.

The datastore is the local one (files under tmp_path), the watcher and worker are the host's own;
only the model ports are in memory (no model is trained here).
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

import pandas as pd
import pytest

from shared.adapters.local.datastore import LocalDatastore
from shared.automation import control
from shared.automation.handlers import Automation
from shared.automation.messages import Deploy
from shared.automation.watcher import IncomingWatcher
from shared.automation.work_queue import Job
from shared.automation.worker import Worker
from shared.dataset_registration import load_frame, register_dataset
from shared.logging_setup import OneLineFormatter
from shared.ports import DatasetVersion
from tests import samples
from tests.automation_fakes import in_memory_automation
from tests.fakes import InMemoryDatasetStore

BOUND = 4096  # a reason, a job result, a status entry: a few KB


@pytest.fixture
def auto(tmp_path: Path) -> Automation:
    return in_memory_automation(tmp_path, datastore=LocalDatastore(tmp_path / "datastore"), automl_budget_s=3)


def incoming(auto: Automation) -> Path:
    assert isinstance(auto.datastore, LocalDatastore)
    return auto.datastore.root / "incoming"


def arrive(auto: Automation, watcher: IncomingWatcher | None = None) -> Job:
    """The watcher sees the file twice (stable), the control lane judges it."""
    watcher = watcher or IncomingWatcher(auto)
    watcher.poll()
    assert watcher.poll() == 1
    job = Worker(auto).run_once("control")
    assert job is not None
    return job


def quarantined(auto: Automation, job: Job) -> str:
    """The job says quarantined, the file is in quarantine/ beside its reason, and everything said is bounded."""
    assert job.status == "done" and job.result["outcome"] == "quarantined", job
    assert len(json.dumps(job.result)) < BOUND
    names = {b.name for b in auto.datastore.list("quarantine")}
    file = job.result["file"].removeprefix("quarantine/")
    assert file in names and f"{file}.reason.txt" in names, names
    reason = auto.datastore.read("quarantine", f"{file}.reason.txt").decode()
    assert len(reason) < BOUND
    assert auto.datastore.list("incoming") == [] and auto.datasets.list() == []
    return reason


def test_a_million_column_file_is_quarantined_and_a_redeploy_behind_it_runs(auto: Automation) -> None:
    header = ",".join(f"c{i}" for i in range(1_000_000))
    (incoming(auto) / "wide.csv").write_text(header + "\n" + ",".join("1" * 1_000_000) + "\n")
    watcher = IncomingWatcher(auto)
    watcher.poll()
    assert watcher.poll() == 1
    auto.queue.put(Deploy(model_version="", reason="queued behind the wide file"))
    first = Worker(auto).run_once("control")
    assert first is not None and "the header line is" in quarantined(auto, first)
    behind = Worker(auto).run_once("control")
    assert behind is not None and behind.kind == "Deploy" and behind.status == "dead"  # it ran: no champion yet, it says so
    assert "no champion yet" in behind.error


def test_a_huge_cell_is_never_copied_into_the_reason_the_job_or_the_status(auto: Automation) -> None:
    frame = samples.stratified_sample(200, seed=3).astype(str)
    frame.loc[frame.index[5], "job"] = "x" * 5_000_000
    (incoming(auto) / "cell.csv").write_bytes(samples.csv_bytes(frame))
    reason = quarantined(auto, arrive(auto))
    assert "line 7 is 5,000,1" in reason and "xxxxxxxxxx" not in reason
    assert len(json.dumps(control.status(auto))) < 4 * BOUND


@pytest.mark.parametrize("name", ["back\\slash.csv", "new\nline.csv", "n" * 241 + ".csv"])
def test_an_odd_name_is_quarantined_with_its_reason(auto: Automation, name: str) -> None:
    bad = samples.stratified_sample(200, seed=3).drop(columns=["age"])
    (incoming(auto) / name).write_bytes(samples.csv_bytes(bad))
    reason = quarantined(auto, arrive(auto))
    assert ("rename it" in reason) if len(name) < 200 else ("missing column(s): age" in reason)
    assert "\nline" not in reason.split("\n\n")[0]  # the name is shown escaped


def test_a_header_field_over_the_csv_field_limit_is_quarantined_not_dead(auto: Automation) -> None:
    rows = samples.csv_bytes(samples.stratified_sample(200, seed=3))
    (incoming(auto) / "field.csv").write_bytes(b"a" * 200_000 + b"," + rows)
    assert "the header line is" in quarantined(auto, arrive(auto))


class GrowingDatastore(LocalDatastore):
    """The local datastore with a writer that appends rows right after bankops read the file (a slow writer)."""

    more: bytes = b""

    def read(self, container: str, name: str) -> bytes:
        content = super().read(container, name)
        if self.more:
            with open(self.root / container / name, "ab") as writer:
                writer.write(self.more)
            self.more = b""
        return content


def test_a_file_that_grows_after_it_was_read_is_not_moved_and_is_judged_again(auto: Automation, tmp_path: Path) -> None:
    store = GrowingDatastore(tmp_path / "datastore")
    auto.datastore = store
    rows = samples.csv_bytes(samples.stratified_sample(400, seed=5)).splitlines(keepends=True)
    (incoming(auto) / "slow.csv").write_bytes(b"".join(rows[:201]))
    store.more = b"".join(rows[201:])
    watcher = IncomingWatcher(auto)
    first = arrive(auto, watcher)
    assert first.result["outcome"] == "changed" and auto.datasets.list() == []
    assert auto.datastore.list("processed") == []  # not moved: the 400-row file waits in incoming/
    second = arrive(auto, watcher)
    assert second.result["outcome"] == "registered"
    assert [v.rows for v in auto.datasets.list()] == [400]  # the rows registered are the rows moved
    assert len(pd.read_csv(io.BytesIO(auto.datastore.read("processed", "slow.csv")))) == 400


def test_a_quarantined_file_put_back_unchanged_is_judged_again(auto: Automation) -> None:
    bad = samples.csv_bytes(samples.stratified_sample(200, seed=3).drop(columns=["age"]))
    (incoming(auto) / "bad.csv").write_bytes(bad)
    watcher = IncomingWatcher(auto)
    quarantined(auto, arrive(auto, watcher))
    assert watcher.poll() == 0  # a poll (every second) sees incoming/ empty before a user puts the file back
    assert isinstance(auto.datastore, LocalDatastore)
    os.rename(auto.datastore.root / "quarantine" / "bad.csv", incoming(auto) / "bad.csv")  # mv: same mtime and size
    watcher.poll()
    assert watcher.poll() == 1, "the file put back was ignored as a duplicate"
    job = Worker(auto).run_once("control")
    assert job is not None and job.result["outcome"] == "quarantined" and job.result["file"] == "quarantine/bad.csv"


def test_the_same_write_is_still_queued_once(auto: Automation) -> None:
    (incoming(auto) / "a.csv").write_bytes(samples.csv_bytes(samples.stratified_sample(200, seed=3)))
    IncomingWatcher(auto).poll()
    first, restarted = IncomingWatcher(auto), IncomingWatcher(auto)  # e.g. before and after a restart of the host
    first.poll(), restarted.poll()
    assert (first.poll(), restarted.poll()) == (1, 0)
    assert auto.queue.counts() == {"queued": 1}


@pytest.mark.parametrize("name", [".hidden.csv", "upload.csv.tmp", "upload.csv.PART"])
def test_a_file_still_being_written_under_a_temporary_name_is_left_alone(auto: Automation, name: str) -> None:
    (incoming(auto) / name).write_bytes(b"age,job\n1,")
    watcher = IncomingWatcher(auto)
    assert (watcher.poll(), watcher.poll()) == (0, 0)
    os.rename(incoming(auto) / name, incoming(auto) / "renamed.csv")
    assert (watcher.poll(), watcher.poll()) == (0, 1)


def test_a_file_name_with_a_newline_cannot_forge_a_log_line(auto: Automation) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger("bankops")
    root.addHandler(handler)
    old_level, root.level = root.level, logging.INFO
    try:
        name = "x.csv\n12:00:00 INFO bankops.worker: job forged done: registered"
        (incoming(auto) / name).write_bytes(b"not a csv")
        quarantined(auto, arrive(auto))
        logging.getLogger("bankops.worker").warning("job %s failed: %s", "j1", f"incoming/{name} does not exist")
    finally:
        root.removeHandler(handler)
        root.level = old_level
    lines = out.getvalue().splitlines()
    assert lines and not any(line.startswith("12:00:00 INFO bankops.worker: job forged") for line in lines), lines
    assert any("x.csv\\n12:00:00" in line for line in lines)


def test_an_event_for_a_temporary_name_is_ignored_on_either_path(auto: Automation) -> None:
    """An Event Grid BlobCreated of `new.csv.part` (Azure has no rename: the upload of the final name follows)."""
    assert isinstance(auto.datastore, LocalDatastore)
    (incoming(auto) / "new.csv.part").write_bytes(samples.csv_bytes(samples.stratified_sample(200, seed=3)))
    etag = auto.datastore.info("incoming", "new.csv.part")
    assert etag is not None
    event = {"id": "e1", "eventType": "Microsoft.Storage.BlobCreated",  # the documented BlobCreated payload's fields
             "subject": "/blobServices/default/containers/incoming/blobs/new.csv.part",
             "data": {"api": "PutBlob", "eTag": etag.etag, "url": "https://acct.blob.core.windows.net/incoming/new.csv.part"}}
    control.events(auto, [event])
    job = Worker(auto).run_once("control")
    assert job is not None and job.result["outcome"] == "ignored" and "temporary name" in job.result["reason"]
    assert [b.name for b in auto.datastore.list("incoming")] == ["new.csv.part"]


class CountingDatasetStore(InMemoryDatasetStore):
    """The in-memory dataset store, counting how often a version's bytes are read (each read is a parse)."""

    reads = 0

    def read(self, dataset: DatasetVersion) -> bytes:
        self.reads += 1
        return super().read(dataset)


def test_an_arrival_is_parsed_once_and_the_training_and_gate_reuse_its_frame(auto: Automation) -> None:
    """Issue 18 item 4: the file is parsed once; the merged version is not written out and parsed back."""
    store = CountingDatasetStore()
    auto.datasets = store
    first = samples.stratified_sample(300, seed=21)
    register_dataset(store, samples.csv_bytes(first), name="bankmarketing")
    (incoming(auto) / "more.csv").write_bytes(_more_rows())
    job = arrive(auto)
    assert job.result["outcome"] == "registered" and job.result["dataset"] == "bankmarketing:2"
    newest = store.get("bankmarketing")
    frame = load_frame(store, newest)  # what the training run and the gate ask for next
    assert len(frame) == newest.rows == 500
    assert store.reads == 0  # neither version was parsed back from its bytes
    assert load_frame(store, newest) is not frame  # each caller gets its own copy


def _more_rows() -> bytes:
    more = samples.stratified_sample(200, seed=22)
    more["campaign"] = (more["campaign"].astype(int) + 60).astype(str)
    return samples.csv_bytes(more)
