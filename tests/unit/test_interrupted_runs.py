"""A run left RUNNING by a process killed with SIGKILL is ended as FAILED on the next start; live runs are kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shared.adapters.local.tracking import MlflowTracker
from shared.config import load_settings

CHILD = """
import sys, time
from shared.adapters.local.tracking import MlflowTracker
tracker = MlflowTracker(sys.argv[1], "exp", None)
with tracker.run("training") as run_id:
    print(run_id, flush=True)
    time.sleep(120)
"""


def test_a_killed_process_run_is_ended_failed_and_a_live_one_is_not(tmp_path: Path) -> None:
    uri = load_settings(home=tmp_path).paths.tracking_uri
    tracker = MlflowTracker(uri, "exp", tmp_path / "artifacts")
    child = subprocess.Popen([sys.executable, "-c", CHILD, uri], stdout=subprocess.PIPE, text=True,
                             env=os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    try:
        assert child.stdout is not None
        killed_run = child.stdout.readline().strip()
        assert killed_run, "the child did not start its run"
    finally:
        child.kill()
        child.wait(30)
    assert tracker.client.get_run(killed_run).info.status == "RUNNING"
    with tracker.run("live") as live_run:
        assert tracker.end_interrupted() == [killed_run]
        assert tracker.client.get_run(live_run).info.status == "RUNNING"
    assert tracker.client.get_run(killed_run).info.status == "FAILED"
    assert tracker.client.get_run(killed_run).data.tags["bankops.interrupted"]
    assert tracker.end_interrupted() == []
