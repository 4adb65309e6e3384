"""Runs queued work (training, gate, deploy) outside the triggers, which must answer fast.

A queue trigger on `bankops-work` (connection AzureWebJobsStorage): each message names one job. The
function returns normally once the job is settled (done, dead, retried or deferred as a new message
with a visibility delay), so the host deletes the message; an exception (the queue itself failed)
lets the host deliver it again, and the job record counts that attempt. A dead job's id and reason
are in `bankops-work-poison`, the Functions default poison queue.
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

from functions.runtime import automation
from shared.automation.worker import Worker

WORK_QUEUE = "bankops-work"  # decision 1; BANKOPS_WORK_QUEUE names the same queue for the senders
bp = func.Blueprint()
log = logging.getLogger("bankops.functions")


@bp.queue_trigger(arg_name="msg", queue_name=WORK_QUEUE, connection="AzureWebJobsStorage")
def process_work(msg: func.QueueMessage) -> None:
    auto = automation()
    try:
        job_id = str(json.loads(msg.get_body())["job_id"])
    except (ValueError, KeyError, TypeError):
        log.error("queue message %s names no job: dropped", msg.id)  # not ours: never retried into the poison queue
        return
    done = Worker(auto).run_delivery(job_id)
    log.info("delivery %s of job %s (dequeue count %s): %s", msg.id, job_id, msg.dequeue_count,
             done.status if done else "already settled")
    retire = getattr(auto.deployer, "retire_expired", None)  # Azure: delete deployments past their grace period
    if retire is not None:
        retire()
