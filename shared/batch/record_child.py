"""A child process that records one batch run in the home's tracker, given the run on stdin.

`bankops batch-score` starts it before scoring, so importing MLflow and opening its store (seconds
of a short command's start-up) overlap the scoring on another core instead of following it; the
command then writes one JSON line (`source`, `output`, `summary`) and waits for the run id.
An empty stdin (the command failed) records nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from shared.child_env import child_env


def start(home: Path | None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "shared.batch.record_child", str(home or "")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())


def finish(child: subprocess.Popen[str], source: str, output: str, summary: dict[str, Any], timeout: float = 120) -> str:
    """The run id the child recorded (RuntimeError with its message when it could not)."""
    out, errors = child.communicate(json.dumps({"source": source, "output": output, "summary": summary}) + "\n", timeout)
    if child.returncode != 0 or not out.strip():
        raise RuntimeError(f"could not record the batch run: {errors.strip()[-500:]}")
    return out.strip().splitlines()[-1]


def _main(home: str) -> None:
    from shared.batch.blob import record_run
    from shared.batch.job import BatchSummary
    from shared.bootstrap import bootstrap
    from shared.config import load_settings
    from shared.logging_setup import quiet_libraries

    quiet_libraries()
    tracker = bootstrap(load_settings(home=Path(home) if home else None)).tracker  # imports MLflow, opens the store
    line = sys.stdin.readline()
    if not line.strip():
        return
    run = json.loads(line)
    print(record_run(tracker, run["source"], run["output"], BatchSummary(**run["summary"])), flush=True)


if __name__ == "__main__":
    _main(sys.argv[1] if len(sys.argv) > 1 else "")
