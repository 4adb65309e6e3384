"""The daily retrain timer: NCRONTAB (six fields, like Azure Functions) on APScheduler.

The job store is SQLite under $BANKOPS_HOME, so a run missed while the host was down fires once
on the next start (coalesced, within a grace time), as a past-due Functions timer does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from shared.errors import ConfigurationError

log = logging.getLogger("bankops.schedule")
JOB_ID = "daily_retrain"
_DOW = {"0": "sun", "1": "mon", "2": "tue", "3": "wed", "4": "thu", "5": "fri", "6": "sat", "7": "sun"}


def _dow(field: str) -> str:
    """NCRONTAB counts Sunday as 0; APScheduler counts Monday as 0: use names to be unambiguous."""
    out = []
    for part in field.split(","):
        step = ""
        if "/" in part:
            part, step = part.split("/", 1)
            step = "/" + step
        out.append("-".join(_DOW.get(p, p) for p in part.split("-")) + step)
    return ",".join(out)


def ncrontab_trigger(expression: str) -> CronTrigger:
    """`{second} {minute} {hour} {day} {month} {day-of-week}`, UTC, e.g. "0 0 2 * * *"."""
    fields = expression.split()
    if len(fields) != 6:
        raise ConfigurationError(
            f"RETRAIN_SCHEDULE {expression!r} must have six fields (second minute hour day month day-of-week), e.g. '0 0 2 * * *'"
        )
    second, minute, hour, day, month, dow = fields
    try:
        return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=_dow(dow), timezone="UTC")
    except ValueError as exc:
        raise ConfigurationError(f"RETRAIN_SCHEDULE {expression!r} is not a valid NCRONTAB expression: {exc}") from exc


def fire(callback_path: str) -> None:
    """APScheduler stores jobs by reference; this resolves the callback registered for this process."""
    _CALLBACKS[callback_path]()


_CALLBACKS: dict[str, Callable[[], object]] = {}


class RetrainSchedule:
    def __init__(self, expression: str, store: Path, on_fire: Callable[[], object], *, grace_s: int = 3600) -> None:
        self.trigger = ncrontab_trigger(expression)
        self.expression = expression
        store.parent.mkdir(parents=True, exist_ok=True)
        _CALLBACKS[JOB_ID] = on_fire
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{store}")},
            job_defaults={"coalesce": True, "misfire_grace_time": grace_s, "max_instances": 1},
            timezone="UTC",
        )

    def start(self) -> None:
        self.scheduler.start()
        job = self.scheduler.get_job(JOB_ID)
        if job is None or str(job.trigger) != str(self.trigger):
            # replace_existing keeps one job; an existing job keeps its next run time (and any misfire).
            self.scheduler.add_job(fire, self.trigger, args=[JOB_ID], id=JOB_ID, replace_existing=True)
        log.info("retrain schedule %r, next run %s", self.expression, self.next_run())

    def next_run(self) -> datetime | None:
        job = self.scheduler.get_job(JOB_ID)
        return job.next_run_time if job else None

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
