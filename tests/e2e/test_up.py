"""`bankops up` end to end: the real host as a subprocess, nobody clicking anything.

First start trains, gates, deploys and serves; a new file dropped into incoming/ gets a new
model version trained, gated and served; a bad file is quarantined; duplicates change nothing;
a host killed mid-training resumes on restart and serves the champion at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import samples
from tests.environment import session_switches
from tests.polling import eventually

pytestmark = pytest.mark.e2e
BUDGET = "5"
RESTORE_SIGINT = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Host:
    """One `bankops up` process and what it printed."""

    def __init__(self, home: Path, control_port: int, scoring_port: int, *, budget: str = BUDGET,
                 settings: dict[str, str] | None = None) -> None:
        self.home, self.control_port, self.scoring_port = home, control_port, scoring_port
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("BANKOPS_", "MLFLOW_"))} | session_switches()
        # Tolerance 1.0: every challenger passes the gate, so the serve path is what this test sees.
        # The quick first model's budget (default 5 s) is not shorter than BUDGET: no quick model unless asked for.
        env |= {"BANKOPS_SETTINGS_FILE": str(home.parent / "absent.json"), "BANKOPS_GATE_TOLERANCE": "1.0",
                "COLUMNS": "200", "PYTHONWARNINGS": "ignore"} | (settings or {})
        # Ctrl-C restored first: a test run started in the background by a non-interactive shell
        # (nohup .ci/run &) hands every child an ignored SIGINT, and the host would never stop.
        command = [sys.executable, "-c", RESTORE_SIGINT + "from shared.cli.main import main; main()", "up", "--budget", budget,
                   "--home", str(home), "--port", str(control_port), "--scoring-port", str(scoring_port)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
                                        start_new_session=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_for(self, text: str, timeout_s: float) -> str:
        """The first line printed from now on that holds `text`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if text in (line := self.lines.get(timeout=0.5)):
                    return line
            except queue.Empty:
                if self.process.poll() is not None:
                    break
        raise AssertionError(f"{text!r} not printed within {timeout_s}s:\n{''.join(self.output)}")

    @property
    def function_key(self) -> str:
        return str(json.loads((self.home / "keys" / "keys.json").read_text())["function"])

    @property
    def scoring_key(self) -> str:
        return str(json.loads((self.home / "keys" / "keys.json").read_text())["primary"])

    def api(self, method: str, route: str, body: Any = None) -> httpx.Response:
        return httpx.request(method, f"http://127.0.0.1:{self.control_port}/api/{route}", json=body,
                             headers={"x-functions-key": self.function_key}, timeout=30)

    def serving_version(self) -> str | None:
        try:
            answer = httpx.get(f"http://127.0.0.1:{self.scoring_port}/", timeout=5)
        except httpx.HTTPError:
            return None
        return str(answer.json().get("model_version")) if answer.status_code == 200 else None

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            tail = "".join(self.output[-40:])
            raise AssertionError(f"bankops up did not stop within 60 s of Ctrl-C; it printed, last:\n{tail}") from None

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@contextlib.contextmanager
def up_host(home: Path) -> Iterator[Host]:
    """`bankops up` on `home` and free ports, once it says it is up; Ctrl-C at the end if it still runs."""
    running = Host(home, _free_port(), _free_port())
    try:
        running.wait_for("bankops is up", timeout_s=300)
        yield running
    finally:
        if running.process.poll() is None:
            running.interrupt()


def _drop(incoming: Path, name: str, data: bytes) -> None:
    """Write beside, then rename: how a file lands whole, as a finished blob does."""
    partial = incoming / f".{name}.part"
    partial.write_bytes(data)
    partial.rename(incoming / name)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("up") / "home"


@pytest.fixture(scope="module")
def host(home: Path) -> Iterator[Host]:
    with up_host(home) as running:
        yield running


def test_first_start_trains_deploys_and_serves_the_shipped_data(host: Host) -> None:
    assert host.serving_version() == "1"
    printed = "".join(host.output)
    for what in ("scoring url", "swagger ui", "keys", "control plane", "next retrain", "mlflow ui"):
        assert what in printed
    records = samples.endpoint_records()
    answer = httpx.post(f"http://127.0.0.1:{host.scoring_port}/score", json={"data": records},
                        headers={"Authorization": f"Bearer {host.scoring_key}"}, timeout=30)
    assert answer.status_code == 200 and answer.json()["model_version"] == "1"
    assert httpx.get(f"http://127.0.0.1:{host.control_port}/api/status", timeout=10).status_code == 401


def test_status_on_the_command_line_asks_the_running_host(host: Host) -> None:
    """`bankops status` answers what the host's /api/status does, the next retrain included (only the host knows it)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("BANKOPS_", "MLFLOW_"))}
    env |= {"BANKOPS_SETTINGS_FILE": str(host.home.parent / "absent.json"), "COLUMNS": "200"}
    printed = subprocess.run([sys.executable, "-c", "from shared.cli.main import main; main()", "status", "--home", str(host.home),
                              "--port", str(host.control_port)], capture_output=True, text=True, env=env, timeout=60, check=True)
    answer = json.loads(printed.stdout)
    assert answer["champion"]["model_version"] == host.api("GET", "status").json()["champion"]["model_version"]
    assert answer["next_retrain"]


def test_a_bad_file_is_quarantined_with_its_reason(host: Host, home: Path) -> None:
    bad = samples.stratified_sample(300, seed=5).drop(columns=["month"])
    _drop(home / "datastore" / "incoming", "broken.csv", samples.csv_bytes(bad))
    reason = home / "datastore" / "quarantine" / "broken.csv.reason.txt"
    eventually(reason.exists, 30, "the quarantine reason file", interval_s=0.5)
    assert "missing column(s): month" in reason.read_text()
    assert (home / "datastore" / "quarantine" / "broken.csv").exists()


def test_new_data_is_trained_gated_and_served_with_no_other_action(host: Host, home: Path) -> None:
    new = samples.stratified_sample(400, seed=9)
    new["campaign"] = (new["campaign"].astype(int) + 40).astype(str)  # rows the shipped data does not have
    _drop(home / "datastore" / "incoming", "new-clients.csv", samples.csv_bytes(new))
    status = eventually(lambda: (st := host.api("GET", "status").json())["champion"]["model_version"] == "2" and st, 240,
                         "model v2 to be champion", interval_s=0.5)
    assert host.serving_version() == "2"
    assert status["champion"]["dataset"] == "bankmarketing:2"
    gate = next(j for j in status["recent_jobs"] if j["kind"] == "RunCompleted")
    assert gate["outcome"] == "deployed" and "challenger v2" in gate["reason"]
    # The same file again, under another name: no new dataset version, no training.
    _drop(home / "datastore" / "incoming", "new-clients-copy.csv", samples.csv_bytes(new))
    eventually(lambda: (home / "datastore" / "processed" / "new-clients-copy.csv").exists(), 30, "the copy to be processed", interval_s=0.5)
    jobs = host.api("GET", "status").json()["recent_jobs"]
    assert jobs[0]["kind"] == "DataArrived" and jobs[0]["outcome"] == "unchanged"


def test_a_duplicate_event_is_accepted_once(host: Host) -> None:
    event = {"id": "evt-1", "eventType": "Microsoft.Storage.BlobCreated",
             "subject": "/blobServices/default/containers/incoming/blobs/ghost.csv",
             "data": {"api": "PutBlob", "eTag": "0x1", "url": "http://127.0.0.1/incoming/ghost.csv"}}
    first = host.api("POST", "events", [event]).json()
    again = host.api("POST", "events", [event | {"id": "evt-2"}]).json()
    assert first == {"accepted": ["evt-1"], "ignored": []}
    assert again == {"accepted": [], "ignored": ["evt-2"]}


def test_a_host_killed_mid_training_resumes_and_serves_the_champion_at_once(host: Host, home: Path) -> None:
    job_id = host.api("POST", "retrain", {"ExperimentName": "bankmarketing"}).json()["Id"]
    eventually(lambda: host.api("GET", f"runs/{job_id}").json()["status"] == "running", 120, "training to start", interval_s=0.5)
    host.kill()
    restarted = Host(home, host.control_port, host.scoring_port)
    try:
        restarted.wait_for("bankops is up", timeout_s=120)
        assert "first start" not in "".join(restarted.output)  # served at once, no training first
        assert restarted.serving_version() == "2"
        job = eventually(lambda: (j := restarted.api("GET", f"runs/{job_id}").json())["status"] == "done" and j, 240,
                          "the interrupted training to finish", interval_s=0.5)
        assert job["attempts"] == 2 and job["result"]["model_version"] == "3"
    finally:
        assert restarted.interrupt() == 0
    assert restarted.serving_version() is None  # Ctrl-C stopped the scoring service too


def test_a_first_start_serves_a_quick_provisional_model_then_the_full_model_replaces_it(tmp_path: Path) -> None:
    """BANKOPS_QUICK_BUDGET_S: v1 from a 1 s run is scored first and marked provisional; v2 from the full budget
    goes through the gate (tolerance 1.0 here: it passes) and replaces it; the console says both moments."""
    host = Host(tmp_path / "home", _free_port(), _free_port(), budget="8", settings={"BANKOPS_QUICK_BUDGET_S": "1"})
    try:
        announced = host.wait_for("first start", timeout_s=120)
        assert "quick model" in announced
        first = host.wait_for("first model served", timeout_s=300)
        assert "v1" in first and "provisional" in first and "holdout AUC 0." in first
        records = {"data": samples.endpoint_records()}
        scored = httpx.post(f"http://127.0.0.1:{host.scoring_port}/score", json=records,
                            headers={"Authorization": f"Bearer {host.scoring_key}"}, timeout=30)
        assert scored.status_code == 200 and scored.json()["model_version"] == "1"
        champion = host.api("GET", "status").json()["champion"]
        assert champion["model_version"] == "1" and champion["provisional"] is True
        full = host.wait_for("full model", timeout_s=300)
        assert "full model served" in full and "v2" in full
        champion = host.api("GET", "status").json()["champion"]
        assert champion["model_version"] == "2" and champion["provisional"] is False
        assert host.serving_version() == "2"
        jobs = [j for j in host.api("GET", "status").json()["recent_jobs"] if j["kind"] == "RequestTraining"]
        assert [j["outcome"] for j in jobs] == ["trained", "trained"]  # two runs, neither collapsed into the other
    finally:
        if host.process.poll() is None:
            assert host.interrupt() == 0
