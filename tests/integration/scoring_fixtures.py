"""What the scoring tests share: a real model trained once per session, and a real server.

The model comes from the real training pipeline on the real local adapters (a small sample of
the shipped data, a budget of a few seconds) and is registered twice, so swaps have two versions;
the server is `bankops serve` in a subprocess on a free loopback port, so the tests see exactly
what a client sees.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from shared.bootstrap import bootstrap
from shared.config import load_settings
from shared.dataset_registration import register_dataset
from shared.mlflow_model import example_frame
from shared.resources import shipped_data
from shared.serving.deployment import ServingState
from shared.serving.keys import KeyStore
from shared.training.pipeline import TrainingPipeline, TrainingRequest
from tests.environment import session_switches

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SAMPLE_ROWS = 3000
BUDGET_S = 4.0
MAX_RECORDS = 50
MAX_BODY = 64 * 1024


def endpoint_records() -> list[dict[str, Any]]:
    return json.loads((FIXTURES / "endpoint_records.json").read_text(encoding="utf-8"))["data"]


@cache
def trained_home() -> Path:
    """A $BANKOPS_HOME with versions 1 and 2 of the model, made once per test session."""
    home = Path(tempfile.mkdtemp(prefix="bankops-scoring-"))
    settings = load_settings(home=home)
    backend = bootstrap(settings)
    frame = pd.read_csv(shipped_data(), dtype=str, keep_default_na=False).sample(SAMPLE_ROWS, random_state=3)
    csv = home / "sample.csv"
    frame.to_csv(csv, index=False)
    dataset = register_dataset(backend.datasets, csv, name=settings.dataset_name, seed=settings.seed).dataset
    pipeline = TrainingPipeline(datasets=backend.datasets, registry=backend.registry, tracker=backend.tracker)
    first = pipeline.run(TrainingRequest(dataset=dataset, budget_s=BUDGET_S, folds=3, seed=1)).model_version
    # Version 2 (for swaps): the same model registered again through the real registry, at a lower threshold.
    model = replace(backend.registry.load(first.version), threshold=0.3)
    with backend.tracker.run("second-version") as run_id:
        backend.registry.register(model, run_id=run_id, metrics=first.metrics, tags={"test": "threshold 0.3"},
                                  input_example=example_frame(endpoint_records()))
    return home


@cache
def shared_service() -> Service:
    """One `bankops serve --workers 2` on version 2 for the whole session, stopped at exit."""
    service = start_service(trained_home(), "--model-version", "2", workers=2,
                            env={"BANKOPS_SCORING_MAX_RECORDS": str(MAX_RECORDS), "BANKOPS_SCORING_MAX_BODY_BYTES": str(MAX_BODY)})
    atexit.register(service.stop)
    return service


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bankops_command(*args: str) -> list[str]:
    """The real CLI in this interpreter (works without the console script on PATH)."""
    return [sys.executable, "-c", "from shared.cli.main import main; main()", *args]


def service_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANKOPS_")} | session_switches()
    env.update({"BANKOPS_HOME": str(home), "BANKOPS_SETTINGS_FILE": str(home / "absent.json"), **extra})
    return env


def run_cli(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(bankops_command(*args, "--home", str(home)), env=service_env(home), capture_output=True,
                          text=True, timeout=timeout, check=False)


@dataclass
class Service:
    """A running `bankops serve` subprocess."""

    home: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def key(self, name: str = "primary") -> str:
        return KeyStore.from_settings(load_settings(home=self.home)).get(name).get_secret_value()

    def headers(self, name: str = "primary") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key(name)}"}

    def score(self, body: Any, key: str = "primary", **kwargs: Any) -> httpx.Response:
        return httpx.post(f"{self.url}/score", json=body, headers=self.headers(key), timeout=30, **kwargs)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_service(home: Path, *args: str, workers: int = 1, env: dict[str, str] | None = None,
                  timeout_s: float = 90) -> Service:
    """Start `bankops serve` on a free port and wait until GET / answers 200."""
    port = free_port()
    log = home / f"serve-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(bankops_command("serve", "--port", str(port), "--workers", str(workers), "--home", str(home),
                                                   *args), env=service_env(home, **(env or {})), stdout=out, stderr=subprocess.STDOUT)
    service = Service(home, port, process, log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bankops serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            healthy = httpx.get(f"{service.url}/", timeout=2).status_code == 200
            if healthy and len(ServingState(load_settings(home=home).paths.serving).reports()) >= workers:
                return service
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    service.stop()
    raise RuntimeError(f"bankops serve did not become healthy in {timeout_s}s:\n{log.read_text()}")
