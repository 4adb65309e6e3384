"""Batch runs of `bankops batch-score`, recorded in the tracker after the command has ended.

Importing MLflow and opening its store take seconds of CPU (about 6 on this 2-core machine), more
than the scoring of a large file with its trees compiled. So the command writes its run (input,
hash, rows, version, duration) as a small JSON file under `$BANKOPS_HOME/batch-runs-pending/`
and starts a detached recorder that logs every pending file as an MLflow run and removes it. A
recorder that never ran or died leaves its files: the next recorder, or `bankops batch-runs`
(which records what is pending before listing), logs them. A lock keeps two recorders from
logging the same file, and each run carries its file's name as a tag, so one logged just before
a crash is not logged twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.child_env import child_env

if TYPE_CHECKING:
    from shared.batch.job import BatchSummary
    from shared.ports import RunTracker

PENDING = "batch-runs-pending"
RECORD_TAG = "bankops.batch_record"


def pending_dir(home: Path) -> Path:
    return home / PENDING


def queue(home: Path, source: str, output: str, summary: BatchSummary) -> Path:
    """Write a run to record (whole: renamed from a part file); returns its file."""
    folder = pending_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.json"
    part = folder / f".{name}.part"
    part.write_text(json.dumps({"source": source, "output": output, "summary": summary.as_fields()}))
    return part.replace(folder / name)


def start_recorder(home: Path) -> subprocess.Popen[bytes]:
    """Record the pending runs in a detached child that outlives this process."""
    return subprocess.Popen([sys.executable, "-m", "shared.batch.run_records", str(home)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=child_env())


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    folder = pending_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def record_pending(tracker: RunTracker, home: Path) -> list[str]:
    """Log every pending run of this home as an MLflow run (oldest first) and remove its file; the run ids."""
    from shared.batch.blob import record_run
    from shared.batch.job import BatchSummary

    folder = pending_dir(home)
    if not folder.is_dir() or not any(folder.glob("*.json")):
        return []
    ids = []
    with _locked(home):
        for file in sorted(folder.glob("*.json")):
            try:
                run = json.loads(file.read_text())
                summary = BatchSummary(**run["summary"])
            except (OSError, ValueError, TypeError, KeyError):
                file.rename(file.with_suffix(".unreadable"))  # kept for a look, never retried
                continue
            if not _already_logged(tracker, file.name):
                ids.append(record_run(tracker, run["source"], run["output"], summary, {RECORD_TAG: file.name}))
            file.unlink()
    return ids


def _already_logged(tracker: RunTracker, name: str) -> bool:
    client, experiment = getattr(tracker, "client", None), getattr(tracker, "experiment_id", None)
    if client is None or experiment is None:
        return False
    found: list[Any] = client.search_runs([experiment], f"tags.`{RECORD_TAG}` = '{name}'", max_results=1)
    return bool(found)


def _main(home: str) -> None:
    from shared.bootstrap import bootstrap
    from shared.config import load_settings
    from shared.logging_setup import quiet_libraries

    quiet_libraries()
    os.nice(5)  # bookkeeping: whatever the user runs next comes first
    settings = load_settings(home=Path(home))
    record_pending(bootstrap(settings).tracker, settings.paths.root)


if __name__ == "__main__":
    _main(sys.argv[1])
