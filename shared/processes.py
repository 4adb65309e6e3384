"""Which process a recorded pid is: a pid is reused by the system, a (pid, start time) pair is not.

State that names a process (serving/server.json, an MLflow run in progress) records both, so a
stale record naming a pid that another program now holds is never signalled nor trusted.
"""

from __future__ import annotations

import os

import psutil  # type: ignore[import-untyped]

START_TOLERANCE_S = 0.05  # a process's start time as psutil computes it, twice, differs by rounding only


def process_started(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), or None when there is no such process."""
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def this_process() -> tuple[int, float]:
    pid = os.getpid()
    return pid, process_started(pid) or 0.0


def still_running(pid: int, started: float) -> bool:
    """True only while `pid` is the very process that started at `started`."""
    now = process_started(pid)
    return now is not None and abs(now - started) <= START_TOLERANCE_S
