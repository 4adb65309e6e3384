"""`bankops up` (the local host of the function app) and `bankops status`."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shared.cli.app import HomeOpt, app, console, friendly_errors, load_settings
from shared.errors import BankopsError

if TYPE_CHECKING:
    from shared.config import Settings


MAX_STATUS_BYTES = 4 * 2**20  # a status answer is a few kB: more is not our host


def _logging(logs: Path) -> None:
    from shared.logging_setup import OneLineFormatter, quiet_libraries

    quiet_libraries()
    logs.mkdir(parents=True, exist_ok=True)
    fmt = OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    root = logging.getLogger("bankops")
    root.setLevel(logging.INFO)
    for handler in (logging.StreamHandler(sys.stderr), logging.FileHandler(logs / "control-plane.log")):
        handler.setFormatter(fmt)
        root.addHandler(handler)


def _raise_interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


@app.command()
@friendly_errors
def up(
    budget: Annotated[float | None, typer.Option(help="AutoML budget in seconds for each training run (default 60).", min=1)] = None,
    port: Annotated[int | None, typer.Option(help="Control-plane port (default 7071).")] = None,
    scoring_port: Annotated[int | None, typer.Option(help="Scoring service port (default 5001).")] = None,
    workers: Annotated[int, typer.Option(help="Scoring worker processes.", min=1, max=16)] = 1,
    home: HomeOpt = None,
) -> None:
    """Run everything hands-off: train if needed, deploy, serve, and retrain on new data, timer or HTTP."""
    import psutil  # type: ignore[import-untyped]

    from shared.automation.first_model import FirstModels, FirstModelWatch, quick_budget
    from shared.automation.local_host import LocalHost, LogProgress

    started = psutil.Process().create_time()  # "after N s" counts from the process start, imports included
    settings = load_settings(home=home, automl_budget_s=budget, control_port=port, scoring_port=scoring_port)
    _logging(settings.paths.logs)
    host = LocalHost(settings, control_port=settings.control_port, scoring_port=settings.scoring_port, workers=workers,
                     progress=LogProgress(settings.automl_budget_s))
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        state = host.start()
        watch = FirstModelWatch(host.auto, FirstModels.pending(host.auto), started)
        if state == "training":
            quick = quick_budget(host.auto)
            console.print("first start: training on the shipped data "
                          + (f"(a quick model, budget {quick:g}s, then the full AutoML, budget {settings.automl_budget_s:g}s)"
                             if quick else f"(budget {settings.automl_budget_s:g}s)") + ", then deploying…")
        if host.wait_until_serving(timeout_s=settings.automl_budget_s * 3 + 300):
            for line in watch.poll():
                console.print(line, highlight=False)
            summary = host.summary()
            console.print("[bold green]bankops is up[/]")
            for key, value in summary.items():
                console.print(f"  {key.replace('_', ' '):15} {value}", highlight=False)
            console.print("  Ctrl-C stops everything; the next `bankops up` serves the champion at once.")
        else:
            console.print("[red]no model is being served yet[/]: see `bankops status` and the logs under "
                          f"{settings.paths.logs}; the host keeps running and retries on new data, timer or HTTP")
        while not watch.done:  # the full model's moment, then nothing more to say until Ctrl-C
            for line in watch.poll():
                console.print(line, highlight=False)
            time.sleep(0.5)
        signal.pause()
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        host.stop()
        console.print("stopped")


@app.command()
@friendly_errors
def status(home: HomeOpt = None,
           port: Annotated[int | None, typer.Option(help="Control-plane port of a running `bankops up` (default 7071).")] = None) -> None:
    """Champion, endpoint, recent jobs and dead letters (what GET /api/status answers).

    Asks the running `bankops up` of this home when there is one (fast: nothing to load); otherwise reads
    the home directly, which loads the registry."""
    settings = load_settings(home=home, control_port=port)
    answer = _ask_running_host(settings)
    if answer is None:
        from shared.automation import control
        from shared.bootstrap import build_automation

        answer = control.status(build_automation(settings))
    console.print_json(json.dumps(answer, default=str))


def _ask_running_host(settings: Settings) -> dict[str, Any] | None:
    """GET /api/status of the host on this home's control port; None when no host answers there.

    The standard library's HTTP client, not httpx: one GET on loopback needs none of httpx's import."""
    import http.client

    from shared.serving.keys import KeyStore

    keys = KeyStore.from_settings(settings)
    if not keys.path.exists():  # never started on this home: no host, and no key to show it
        return None
    try:
        key = keys.get("function").get_secret_value()
    except BankopsError:  # an unreadable keys file: the home is read directly, which names the problem
        return None
    connection = http.client.HTTPConnection("127.0.0.1", settings.control_port, timeout=10.0)
    try:
        connection.request("GET", "/api/status", headers={"x-functions-key": key})
        response = connection.getresponse()
        body = response.read(MAX_STATUS_BYTES + 1)
    except (OSError, http.client.HTTPException):  # nothing listens there (refused), or it is not our host
        return None
    finally:
        connection.close()
    if response.status != 200 or len(body) > MAX_STATUS_BYTES:
        return None
    try:
        found = json.loads(body)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None
