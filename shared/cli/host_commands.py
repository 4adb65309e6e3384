"""`bankops up` (the local host of the function app) and `bankops status`."""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from shared.cli.main import HomeOpt, app, console, friendly_errors
from shared.config import load_settings


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
    from shared.automation.local_host import LocalHost, LogProgress
    from shared.bootstrap import build_automation

    settings = load_settings(home=home, automl_budget_s=budget, control_port=port, scoring_port=scoring_port)
    _logging(settings.paths.logs)
    auto = build_automation(settings, progress=LogProgress(settings.automl_budget_s))
    host = LocalHost(auto, control_port=settings.control_port, scoring_port=settings.scoring_port, workers=workers)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        state = host.start()
        if state == "training":
            console.print(f"first start: training on the shipped data (budget {settings.automl_budget_s:.0f}s), then deploying…")
        if host.wait_until_serving(timeout_s=settings.automl_budget_s * 3 + 300):
            summary = host.summary()
            console.print("[bold green]bankops is up[/]")
            for key, value in summary.items():
                console.print(f"  {key.replace('_', ' '):15} {value}", highlight=False)
            console.print("  Ctrl-C stops everything; the next `bankops up` serves the champion at once.")
        else:
            console.print("[red]no model is being served yet[/]: see `bankops status` and the logs under "
                          f"{settings.paths.logs}; the host keeps running and retries on new data, timer or HTTP")
        signal.pause()
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        host.stop()
        console.print("stopped")


@app.command()
@friendly_errors
def status(home: HomeOpt = None) -> None:
    """Champion, endpoint, recent jobs and dead letters (what GET /api/status answers)."""
    from shared.automation import control
    from shared.bootstrap import build_automation

    auto = build_automation(load_settings(home=home))
    console.print_json(json.dumps(control.status(auto), default=str))
