"""`bankops up`: the function app's triggers and the scoring service on one machine.

The control plane (the /api routes) on 127.0.0.1:7071, the scoring service as a child process on
5001, the retrain timer, the watcher on incoming/ and the queue workers. One host per
$BANKOPS_HOME (a lock file), so exactly one scheduler fires the timer.
"""

from __future__ import annotations

import fcntl
import hmac
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import uvicorn

from shared.adapters.local.tracking import MlflowTracker
from shared.automation.control_app import create_control_app
from shared.automation.first_model import request_first_models
from shared.automation.handlers import request_training
from shared.automation.schedule import RetrainSchedule
from shared.automation.watcher import IncomingWatcher
from shared.automation.worker import Worker
from shared.bootstrap import bootstrap, build_automation
from shared.config import Settings
from shared.errors import BackendUnavailable, ConfigurationError, Conflict
from shared.monitoring import notify, telemetry
from shared.monitoring.alerts import AlertEvaluator, AlertRules, registry_baselines
from shared.monitoring.availability import AvailabilityProbe
from shared.monitoring.metrics import ControlMetrics
from shared.monitoring.pipeline_state import observe_pipeline
from shared.ports import CHAMPION, Deployer, SmokeResult
from shared.serving.client import ScoringClient
from shared.serving.connection_limits import uvicorn_options
from shared.serving.deployment import ServingState
from shared.serving.keys import KeyStore
from shared.training.search import Trial

if TYPE_CHECKING:
    from shared.training.pipeline import TrainingProgress

log = logging.getLogger("bankops.host")
HOST = "127.0.0.1"


class ScoringProcess:
    """The scoring service as a child process (`bankops serve`), started on the first deploy."""

    def __init__(self, settings: Settings, port: int, workers: int) -> None:
        self.settings, self.port, self.workers = settings, port, workers
        self.state = ServingState(settings.paths.serving)
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.came_up = False  # healthy once: from then on the availability probe counts it

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _stop_orphan(self) -> None:
        """A service left running by a host that was killed holds the port: end it before starting ours."""
        orphan = self.state.server()
        if orphan is None or orphan.pid == os.getpid():
            return
        log.warning("stopping the scoring service (pid %d) left by a previous host", orphan.pid)
        try:
            os.kill(orphan.pid, signal.SIGINT)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 15
        while self.state.server() is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.state.server() is not None:
            os.kill(orphan.pid, signal.SIGKILL)
            time.sleep(0.5)

    def start(self, version: str, timeout_s: float = 120.0) -> None:
        self._stop_orphan()
        logs = self.settings.paths.logs
        logs.mkdir(parents=True, exist_ok=True)
        self._log = open(logs / "scoring-service.log", "ab")  # noqa: SIM115 - kept open for the child's lifetime
        command = [sys.executable, "-c", "from shared.cli.main import main; main()", "serve", "--model-version", version,
                   "--port", str(self.port), "--workers", str(self.workers), "--home", str(self.settings.paths.root),
                   "--parent-pid", str(os.getpid())]  # a session of its own (Ctrl-C reaches the host only), yet it ends with the host
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        client = ScoringClient(self.url, "")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BackendUnavailable(f"the scoring service exited with code {self.process.returncode}; "
                                         f"see {logs / 'scoring-service.log'}")
            health = client.health()
            if health and str(health.get("model_version")) == version:
                log.info("scoring service up on %s serving v%s", self.url, version)
                self.came_up = True
                return
            time.sleep(0.2)
        raise BackendUnavailable(f"the scoring service did not become healthy within {timeout_s:.0f}s")

    def stop(self) -> None:
        if self.running and self.process is not None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._log:
            self._log.close()


class HostDeployer:
    """The local deployer, plus starting the scoring service on the first deploy."""

    def __init__(self, inner: Deployer, scoring: ScoringProcess) -> None:
        self.inner, self.scoring = inner, scoring
        self._lock = threading.Lock()  # deploys one at a time, never half-switched

    def deploy(self, version: str) -> None:
        with self._lock:
            if self.scoring.running:
                self.inner.deploy(version)
            else:
                self.scoring.start(version)

    def current(self) -> str | None:
        return self.inner.current() if self.scoring.running else None

    def smoke_test(self, version: str) -> SmokeResult:
        return self.inner.smoke_test(version)


class LogProgress:
    """Training progress as log lines (the host runs training in a worker thread)."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s, self.started, self.trials, self._last = budget_s, time.monotonic(), 0, 0.0

    def step(self, name: str) -> None:
        if name == "validate data":
            self.started, self.trials = time.monotonic(), 0
        log.info("training: %s (%.0fs / %.0fs)", name, time.monotonic() - self.started, self.budget_s)

    def search_started(self, budget_s: float) -> None:
        log.info("training: AutoML search for %.0fs", budget_s)

    def trial(self, trial: Trial, best: Trial) -> None:
        self.trials += 1
        if time.monotonic() - self._last >= 5:
            self._last = time.monotonic()
            log.info("training: %d trials, best CV %.4f (%s), %.0fs / %.0fs", self.trials, best.cv_score, best.learner,
                     time.monotonic() - self.started, self.budget_s)


@dataclass
class Endpoints:
    control_url: str
    scoring_url: str


class HostLock:
    """At most one `bankops up` per home: two schedulers on one job store double-fire."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / "host.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        fh = open(self.path, "a+")  # noqa: SIM115 - held for the host's lifetime
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            owner = fh.read().strip() or "?"
            fh.close()
            raise Conflict(f"another `bankops up` (pid {owner}) is already running on {self.path.parent}; "
                           "stop it first, or use another --home") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()


class LocalHost:
    """The local backend's function host; it builds its own Automation, with the parts only a host has handed in:
    the deployer that starts the scoring service, the control metrics that count every event, the progress log."""

    def __init__(self, settings: Settings, *, control_port: int, scoring_port: int, workers: int = 1,
                 progress: TrainingProgress | None = None) -> None:
        s = settings
        if s.backend != "local":
            raise ConfigurationError(f"`bankops up` hosts the local backend (BANKOPS_BACKEND is {s.backend!r}); "
                                     "on Azure the function app is the host: see README, 'Run it on Azure'")
        self.lock = HostLock(s.paths.root)
        self.keys = KeyStore.from_settings(s)
        self.scoring = ScoringProcess(s, scoring_port, workers)
        telemetry.configure_telemetry(s.applicationinsights_connection_string, "bankops-control")  # once, at start-up
        self.metrics = ControlMetrics()
        backend = bootstrap(s, progress=progress)
        self.auto = auto = build_automation(backend=backend, deployer=HostDeployer(backend.deployer, self.scoring),
                                            on_event=self.metrics.on_event)
        self.worker = Worker(auto)
        self.watcher = IncomingWatcher(auto)
        self.batch_watcher = IncomingWatcher(auto, container="batch")
        self.schedule = RetrainSchedule(s.retrain_schedule, s.paths.root / "scheduler.db",
                                        lambda: request_training(auto, "timer"))
        self.probe = AvailabilityProbe(lambda: self.scoring.url if self.scoring.came_up else None, s.paths.logs, s.availability_probe_s)
        self.notifier = notify.from_settings(s, dashboard_url=f"http://{HOST}:{control_port}/dashboard")
        self.alerts = AlertEvaluator(AlertRules.from_settings(s), s.paths.logs, registry_baselines(auto.registry),
                                     interval_s=s.alert_interval_s, counter=self.metrics.alerts, gauge=self.metrics.alert_firing,
                                     pipeline=lambda now: observe_pipeline(auto, now),
                                     notify=self.notifier.notify if self.notifier else None)
        app = create_control_app(auto, key_ok=self._function_key_ok, next_schedule=self._next_schedule, metrics=self.metrics)
        telemetry.instrument_app(app)
        self.control = uvicorn.Server(uvicorn.Config(app, host=HOST, port=control_port, log_level="warning", access_log=False,
                                                     **uvicorn_options(s.http_header_timeout_s, s.http_max_connections)))
        self.control_thread = threading.Thread(target=self.control.run, name="control-plane", daemon=True)
        self.endpoints = Endpoints(f"http://{HOST}:{control_port}/api", self.scoring.url)

    def _function_key_ok(self, presented: str | None) -> bool:
        expected = self.keys.get("function").get_secret_value()
        return bool(presented) and hmac.compare_digest(str(presented).encode(), expected.encode())

    def _next_schedule(self) -> str | None:
        nxt = self.schedule.next_run()
        return nxt.isoformat() if nxt else None

    def start(self) -> str:
        """Start everything; returns what happens next ("serving" or "training")."""
        self.lock.acquire()
        self.keys.ensure()
        if isinstance(self.auto.tracker, MlflowTracker):
            interrupted = self.auto.tracker.end_interrupted()
            if interrupted:
                log.warning("ended %d MLflow run(s) left RUNNING by a stopped process as FAILED", len(interrupted))
        champion = self.auto.registry.alias(CHAMPION)
        if champion is not None:
            self.scoring.start(champion.version)
        elif not any(j.kind == "RequestTraining" and j.status in ("queued", "running") for j in self.auto.queue.recent(20)):
            request_first_models(self.auto)  # a quick model first when BANKOPS_QUICK_BUDGET_S > 0, then the full budget's
        self.control_thread.start()
        while not self.control.started and self.control_thread.is_alive():
            time.sleep(0.05)
        if not self.control.started:
            raise BackendUnavailable(f"the control plane could not listen on {self.endpoints.control_url}: is the port in use?")
        self.worker.start()
        self.watcher.start()
        self.batch_watcher.start()
        self.schedule.start()
        self.probe.start()
        self.alerts.start()
        return "serving" if champion else "training"

    def wait_until_serving(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            champion = self.auto.registry.alias(CHAMPION)
            if champion is not None and self.auto.deployer.current() == champion.version:
                return True
            dead = [j for j in self.auto.queue.recent(5) if j.status == "dead"]
            if dead:
                log.error("%s failed: %s", dead[0].kind, dead[0].error)
                return False
            time.sleep(0.5)
        return False

    def summary(self) -> dict[str, Any]:
        s = self.auto.settings
        return {
            "scoring_url": f"{self.scoring.url}/score",
            "swagger_ui": f"{self.scoring.url}/docs",
            "keys": f"{s.paths.keys} (`bankops keys show`)",
            "control_plane": self.endpoints.control_url,
            "dashboard": f"{self.endpoints.control_url.removesuffix('/api')}/dashboard?code=<function key> (`bankops keys show`)",
            "serving_version": self.auto.deployer.current(),
            "next_retrain": self._next_schedule(),
            "incoming": str(s.paths.incoming) if s.datastore == "local" else f"the 'incoming' blob container ({s.datastore})",
            "mlflow_ui": f"mlflow ui --backend-store-uri {s.paths.tracking_uri}",
        }

    def stop(self) -> None:
        self.alerts.stop()
        if self.notifier:
            self.notifier.stop(5)
        self.probe.stop()
        self.schedule.stop()
        self.watcher.stop()
        self.batch_watcher.stop()
        self.worker.stop()
        self.control.should_exit = True
        self.control_thread.join(10)
        self.scoring.stop()
        self.lock.release()
