"""The scoring service ends with the process that started it.

`bankops up` starts `bankops serve` in a session of its own (Ctrl-C in a terminal reaches the host only, which
then stops the service in order). A host that is SIGKILLed or crashes cannot stop it, and the service would
keep its port and its model for nobody. So the host passes its pid (`--parent-pid`) and the service watches
it: once its parent is no longer that pid (the kernel re-parented it to init or a subreaper), it logs why and
interrupts itself, which is uvicorn's own graceful shutdown, as Ctrl-C is. PR_SET_PDEATHSIG is not used: on
Linux it fires when the parent *thread* that started the child exits, and the host starts the service from
whichever thread deploys first.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

log = logging.getLogger("bankops.serving")
INTERVAL_S = 0.5  # the service is gone within about a second of its host (plus uvicorn's own shutdown)
FORCE_AFTER_S = 20.0  # uvicorn drains for at most 10 s (timeout_graceful_shutdown): past this, exit regardless


def parent_gone(parent_pid: int) -> bool:
    """True once this process's parent is no longer `parent_pid` (an orphan is re-parented; a pid never returns)."""
    return os.getppid() != parent_pid


def _watch(parent_pid: int, interval_s: float, force_after_s: float) -> None:
    while not parent_gone(parent_pid):
        time.sleep(interval_s)
    log.warning("the process that started this service (pid %d) is gone: stopping the scoring service", parent_pid)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(force_after_s)
    log.error("the scoring service did not stop within %.0f s of its parent's end: exiting now", force_after_s)
    os._exit(3)


def watch_parent(parent_pid: int, *, interval_s: float = INTERVAL_S, force_after_s: float = FORCE_AFTER_S) -> threading.Thread:
    """Stop this process (SIGINT to itself, then a hard exit after `force_after_s`) when `parent_pid` ends."""
    thread = threading.Thread(target=_watch, args=(parent_pid, interval_s, force_after_s), name="parent-watch", daemon=True)
    thread.start()
    return thread
