"""The dashboard in a real browser: the real `bankops up` (a subprocess on loopback ports, serving the
session's trained model), real traffic to its scoring service (successes, 401s, 422s, one 500), a deploy
of v2 and a rollback to v1 through the control plane, then Debian's headless Chromium (driven by
selenium through chromedriver) opens the URL `bankops up` printed, and every chart must have drawn data.
The screenshot is saved beside the test's files, and to $DASHBOARD_SCREENSHOT when set (that is
how docs/dashboard.png is made: `make dashboard-screenshot`)."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from shared.serving.deployment import ServingState
from tests import samples
from tests.integration.scoring_fixtures import Service, bankops_command, free_port, service_env, trained_home
from tests.integration.test_monitoring_scoring import force_failure
from tests.local_home import local_home
from tests.polling import eventually

pytestmark = pytest.mark.integration
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CHARTS = ("chart-requests", "chart-latency", "chart-mix", "chart-availability", "chart-versions", "chart-metric-trends",
          "chart-run-trend")
# Without the background-networking flags Chromium calls home at start, which a closed network refuses.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--disable-extensions",
                  "--hide-scrollbars", "--force-device-scale-factor=1", "--window-size=1440,1000")


@dataclass
class Up:
    """A running `bankops up` and what it printed."""

    home: Path
    process: subprocess.Popen[str]
    output: list[str]
    control: str
    scoring: str

    def keys(self) -> dict[str, str]:
        return dict(json.loads((self.home / "keys" / "keys.json").read_text()))

    def api(self, method: str, route: str, body: Any = None) -> httpx.Response:
        return httpx.request(method, f"{self.control}/api/{route}", json=body, headers={"x-functions-key": self.keys()["function"]},
                             timeout=30)

    def score(self, records: list[dict[str, Any]], key: str | None = None) -> httpx.Response:
        return httpx.post(f"{self.scoring}/score", json={"data": records}, timeout=30,
                          headers={"Authorization": f"Bearer {key if key is not None else self.keys()['primary']}"})

    def serving(self) -> str | None:
        try:
            return str(httpx.get(f"{self.scoring}/", timeout=5).json().get("model_version"))
        except (httpx.HTTPError, ValueError):
            return None


def _interruptible() -> None:
    """In the host's process, before exec: Ctrl-C's default action (a pytest started in the background by a shell
    without job control ignores SIGINT, and its children would inherit that and never hear the test's Ctrl-C)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    """`bankops up` on a copy of the session's trained home, with v1 as the champion (served at once, no training)."""
    shutil.copytree(trained_home(), tmp_path / "home", ignore=shutil.ignore_patterns("serving", "keys", "logs", "*.log"))
    with local_home(tmp_path) as (settings, backend):
        backend.registry.set_alias("champion", "1")
    home, control_port, scoring_port = settings.paths.root, free_port(), free_port()
    # v1 is the champion, so the host trains nothing; were it to (a retrain), small budgets end before the test does
    env = service_env(home, BANKOPS_AVAILABILITY_PROBE_SECONDS="2", COLUMNS="220", PYTHONWARNINGS="ignore",
                      BANKOPS_AUTOML_BUDGET="5", BANKOPS_QUICK_BUDGET_S="0")
    process = subprocess.Popen(bankops_command("up", "--home", str(home), "--port", str(control_port), "--scoring-port", str(scoring_port)),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True, start_new_session=True,
                               preexec_fn=_interruptible)
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    host = Up(home, process, output, f"http://127.0.0.1:{control_port}", f"http://127.0.0.1:{scoring_port}")
    try:
        eventually(lambda: any("bankops is up" in line for line in output) or process.poll() is not None, 120, "`bankops is up`")
        assert process.poll() is None, "".join(output)
        yield host
        eventually(lambda: idle(host), 120, "the host's jobs to finish before stopping it")
    finally:
        stop(host)


def idle(host: Up) -> bool:
    """Nothing queued or running on the host (a stop in the middle of a job would wait for it)."""
    try:
        jobs = host.api("GET", "status").json()["recent_jobs"]
    except (httpx.HTTPError, ValueError, KeyError):
        return host.process.poll() is not None
    return not any(job["status"] in ("queued", "running") for job in jobs)


def stop(host: Up) -> None:
    """Ctrl-C, as a user stops it: the host must end, and end its scoring service, within its grace; SIGKILL
    (the host's group and the service, which has a session of its own) only to leave nothing running on failure."""
    process = host.process
    if process.poll() is not None:
        return
    server = ServingState(host.home / "serving").server()
    process.send_signal(signal.SIGINT)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        if server is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(server.pid, signal.SIGKILL)
        pytest.fail("`bankops up` did not stop within 30 s of Ctrl-C:\n" + "".join(host.output[-40:]))


def records(n: int, seed: int) -> list[dict[str, Any]]:
    """n rows of the shipped data without `y`, typed as a client sends them (CSV text read back by pandas)."""
    frame = pd.read_csv(io.BytesIO(samples.csv_bytes(samples.stratified_sample(max(n, 2), seed=seed)))).drop(columns=["y"])
    return list(json.loads(frame.to_json(orient="records")))[:n]


def traffic(host: Up, rounds: int, seed: int) -> None:
    """Successes of 25 records each, a wrong key (401) and a record without a field (422) per round; with
    $DASHBOARD_TRAFFIC_SECONDS (the docs screenshot) the rounds of the test are spread over that many seconds."""
    pause = float(os.environ.get("DASHBOARD_TRAFFIC_SECONDS", "0")) / 11
    for i in range(rounds):
        time.sleep(pause)
        assert host.score(records(25, seed + i)).status_code == 200
        assert host.score(records(1, seed), key="not-the-key").status_code == 401
        broken = records(1, seed)[0]
        del broken["age"]
        assert host.score([broken]).status_code == 422


def deploy_history(host: Up) -> None:
    """v1 serves traffic, v2 is deployed and serves, a rollback brings v1 back: each through /api, each with traffic."""
    traffic(host, 4, seed=1)
    assert host.api("POST", "redeploy", {"model_version": 2}).status_code == 202
    eventually(lambda: host.serving() == "2", 60, "v2 to be served")
    traffic(host, 4, seed=11)
    scoring_port = int(host.scoring.rsplit(":", 1)[1])
    assert force_failure(Service(host.home, scoring_port, host.process, host.home / "logs")).status_code == 500  # type: ignore[arg-type]
    assert host.api("POST", "rollback").status_code == 202
    eventually(lambda: host.serving() == "1", 60, "the rollback to v1")
    traffic(host, 3, seed=21)


def chromium(profile: Path) -> Any:
    """Debian's chromium through its chromedriver; a missing browser fails the test with what to run."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"the dashboard test needs Debian's chromium and chromedriver ({', '.join(missing)} missing): "
                    "run `make browser` (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=DriverService(str(CHROMEDRIVER)), options=options)


def chart_states(driver: Any) -> dict[str, tuple[str, int]]:
    figures = {name: driver.find_element("id", name) for name in CHARTS}
    return {name: (fig.get_attribute("data-state"), int(fig.get_attribute("data-points"))) for name, fig in figures.items()}


def full_page_png(driver: Any) -> bytes:
    """The whole page, not only the window (Chromium's DevTools capture beyond the viewport)."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
    return base64.b64decode(shot["data"])


def test_the_dashboard_renders_every_chart_with_data_in_headless_chromium(up: Up, tmp_path: Path) -> None:
    printed = "".join(up.output)
    found = re.search(r"dashboard\s+(http://127\.0\.0\.1:\d+/dashboard)\?code=<function key>", printed)
    assert found, printed
    assert found.group(1) == f"{up.control}/dashboard"
    assert up.keys()["function"] not in printed  # the URL names where the key goes, never the key
    deploy_history(up)

    driver = chromium(tmp_path / "chromium-profile")
    try:
        driver.set_page_load_timeout(30)
        driver.get(f"{found.group(1)}?code={up.keys()['function']}&window=15m")
        eventually(lambda: driver.execute_script("return document.body.dataset.rendered"), 20, "the first render")
        eventually(lambda: all(state == "ready" for state, _ in chart_states(driver).values()), 15, "every chart to draw data")
        charts = chart_states(driver)
        assert all(points > 0 for _, points in charts.values()), charts
        assert driver.find_elements("css selector", "#chart-requests rect[data-series='5xx']")  # the forced 500
        assert driver.find_elements("css selector", "#chart-requests rect[data-series='4xx']")
        assert driver.find_elements("css selector", "#chart-mix rect[data-series='yes']")
        kinds = {m.get_attribute("data-kind") for m in driver.find_elements("css selector", "#chart-versions .marker")}
        assert kinds == {"deploy", "rollback"}, kinds
        assert int(driver.find_element("id", "runs").get_attribute("data-rows")) >= 2
        # the trends: each holdout metric across the versions, and the runs over time
        trend = driver.find_element("id", "chart-metric-trends")
        assert int(trend.get_attribute("data-versions")) >= 2
        assert driver.find_elements("css selector", "#chart-metric-trends path[data-series='AUC_weighted']")
        assert driver.find_elements("css selector", "#chart-metric-trends path[data-series='recall_yes']")
        assert int(driver.find_element("id", "chart-run-trend").get_attribute("data-runs")) >= 2
        assert len(driver.find_elements("css selector", "#chart-run-trend .marker")) >= 2
        assert len(driver.find_elements("css selector", "#runs tbody tr[data-run]")) >= 2
        assert "code=" not in driver.current_url  # the key left the address bar for the tab's sessionStorage
        assert driver.find_element("css selector", "#tile-failed .value").text not in ("–", "0")

        # refreshes by itself: one more request shows up without a reload
        before = driver.find_element("css selector", "#tile-requests .value").text
        assert up.score(records(5, 99)).status_code == 200
        eventually(lambda: driver.find_element("css selector", "#tile-requests .value").text != before, 15, "the auto-refresh")

        shot = tmp_path / "dashboard.png"
        shot.write_bytes(full_page_png(driver))
        assert shot.stat().st_size > 10_000
        if os.environ.get("DASHBOARD_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["DASHBOARD_SCREENSHOT"])
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors  # no script error, no CSP violation, no failed request
    finally:
        driver.quit()
