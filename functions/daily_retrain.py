"""The daily retrain timer (app setting RETRAIN_SCHEDULE, default "0 0 2 * * *")."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.runtime import automation
from shared.automation.handlers import request_training

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%RETRAIN_SCHEDULE%", run_on_startup=False, use_monitor=True)
def daily_retrain(timer: func.TimerRequest) -> None:
    """A past-due firing (the app was down at 02:00) still requests one run."""
    reason = "timer (past due)" if timer.past_due else "timer"
    job_id, created = request_training(automation(), reason)
    logging.getLogger("bankops.functions").info("daily retrain: job %s %s", job_id, "queued" if created else "collapsed")
