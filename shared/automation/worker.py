"""Workers: one thread per lane takes jobs from the durable queue and runs their handlers.

A user error (bad input, not found, conflict) fails the job at once with its message; anything
else is retried with backoff and ends as a dead-letter record with the reason.
"""

from __future__ import annotations

import logging
import threading
import time

from shared.automation.handlers import HANDLERS, Automation
from shared.errors import BankopsError, InProgress
from shared.ports import Job

log = logging.getLogger("bankops.worker")
WORKER_LANES = ("training", "control", "batch")  # each lane has its own thread: a long job never holds another lane


class Worker:
    def __init__(self, auto: Automation, *, lanes: tuple[str, ...] = WORKER_LANES, poll_s: float = 0.5) -> None:
        self.auto = auto
        self.lanes = lanes
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.busy: dict[str, str] = {}

    def run_once(self, lane: str) -> Job | None:
        """Claim and run one job of `lane`; returns it, or None when the lane is empty."""
        job = self.auto.queue.claim(lane)
        return None if job is None else self._run(job)

    def run_delivery(self, job_id: str) -> Job | None:
        """Run the job a queue message names (the Azure queue trigger); None when it was already settled."""
        job = self.auto.queue.start(job_id)
        return None if job is None else self._run(job)

    def _run(self, job: Job) -> Job | None:
        lane = job.lane
        handler = HANDLERS[job.kind]
        self.busy[lane] = job.job_id
        log.info("job %s %s started (attempt %d)", job.job_id, job.kind, job.attempts)
        try:
            result = handler(self.auto, job.message, job_id=job.job_id)  # one signature: (automation, message, job id)
        except InProgress as exc:  # a step of long work has started elsewhere: look again later, never block
            log.info("job %s %s in progress: %s", job.job_id, job.kind, exc.message)
            self.auto.queue.defer(job.job_id, exc.retry_after_s, exc.message)
        except BankopsError as exc:
            log.warning("job %s %s failed: %s", job.job_id, job.kind, exc.message)
            self.auto.queue.fail(job.job_id, str(exc), retry=False)
        except Exception as exc:
            log.exception("job %s %s raised", job.job_id, job.kind)
            failed = self.auto.queue.fail(job.job_id, f"{type(exc).__name__}: {exc}")
            if failed.status == "dead":
                log.error("job %s %s is dead after %d attempts: %s", job.job_id, job.kind, failed.attempts, exc)
        else:
            self.auto.queue.complete(job.job_id, result)
            log.info("job %s %s done: %s", job.job_id, job.kind, result.get("outcome", "ok"))
        finally:
            self.busy.pop(lane, None)
        return self.auto.queue.get(job.job_id)

    def drain(self, timeout_s: float = 600.0) -> None:
        """Run jobs in this thread until none is pending (tests and one-shot commands)."""
        deadline = time.monotonic() + timeout_s
        while self.auto.queue.pending() and time.monotonic() < deadline:
            if not any([self.run_once(lane) for lane in self.lanes]):
                time.sleep(0.05)

    def _loop(self, lane: str) -> None:
        while not self._stop.is_set():
            try:
                job = self.run_once(lane)
            except Exception:  # the queue itself failed (disk full?): keep the thread alive
                log.exception("worker lane %s could not take a job", lane)
                job = None
            if job is None:
                self._stop.wait(self.poll_s)

    def start(self) -> None:
        for job in self.auto.queue.recover():
            log.warning("job %s %s was interrupted by a restart: now %s", job.job_id, job.kind, job.status)
        for lane in self.lanes:
            thread = threading.Thread(target=self._loop, args=(lane,), name=f"worker-{lane}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
