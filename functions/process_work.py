"""Runs queued work (training, gate, deploy) outside the triggers, which must answer fast."""

from __future__ import annotations

import azure.functions as func

from functions.runtime import automation
from shared.automation.worker import LANES, Worker

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%BANKOPS_WORK_SCHEDULE%", run_on_startup=False, use_monitor=False)
def process_work(timer: func.TimerRequest) -> None:
    """Take at most one job per lane per firing, so a run never outlives functionTimeout by piling up."""
    auto = automation()
    worker = Worker(auto)
    for lane in LANES:
        worker.run_once(lane)
    retire = getattr(auto.deployer, "retire_expired", None)  # Azure: delete deployments past their grace period
    if retire is not None:
        retire()
