"""A host that is SIGKILLed leaves no scoring service behind.

The parent is a real host-like process: it starts the service with the host's own `ScoringProcess` (a
session of its own, `--parent-pid`), prints the service's pid and waits; the test kills it with SIGKILL
(nothing of it runs after that) and the service must end by itself, cleanly and saying why.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import load_settings
from shared.serving.deployment import ServingState
from tests.integration.scoring_fixtures import free_port, service_env, trained_home
from tests.polling import eventually

pytestmark = pytest.mark.integration

HOST = """
import sys, time
from pathlib import Path
from shared.automation.local_host import ScoringProcess
from shared.config import load_settings

scoring = ScoringProcess(load_settings(home=Path(sys.argv[1])), int(sys.argv[2]), 1)
scoring.start("1")
assert scoring.process is not None
print(scoring.process.pid, flush=True)
time.sleep(600)
"""


def gone(pid: int) -> bool:
    """No such process any more (a zombie is reaped by init at once, the service is not our child)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_scoring_service_stops_when_the_host_that_started_it_is_killed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(trained_home(), home, ignore=shutil.ignore_patterns("serving", "keys", "logs", "*.log"))
    host = subprocess.Popen([sys.executable, "-c", HOST, str(home), str(free_port())], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=service_env(home), text=True)
    service_pid = 0
    try:
        assert host.stdout is not None
        printed: list[str] = []
        for line in host.stdout:  # warnings may come first; the pid is the line of digits; EOF: the host failed
            printed.append(line)
            if line.strip().isdigit():
                service_pid = int(line)
                break
        assert service_pid, "".join(printed)
        state = ServingState(load_settings(home=home).paths.serving)
        server = state.server()
        assert server is not None and server.pid == service_pid  # up and recorded before the host dies

        host.send_signal(signal.SIGKILL)
        host.wait(10)
        eventually(lambda: gone(service_pid), 60, "the scoring service to end after its host was killed")
        assert state.server() is None  # it stopped through its own shutdown: nothing left for the next host to clean up
        log = (home / "logs" / "scoring-service.log").read_text(errors="replace")
        assert f"the process that started this service (pid {host.pid}) is gone" in log, log
    finally:
        if host.poll() is None:
            host.kill()
            host.wait(10)
        if service_pid and not gone(service_pid):
            os.kill(service_pid, signal.SIGKILL)
