"""A first prediction soon after the first `bankops up`: a quick model first, the full-budget one after it.

On an empty home two ordinary training requests are queued in the training lane, oldest first: one with
`BANKOPS_QUICK_BUDGET_S` (tagged provisional) and one with the full `BANKOPS_AUTOML_BUDGET`. Each goes
through the usual gate and deploy, so the quick model is served as soon as it is registered (the first
model always passes the gate) and the full model replaces it only if the gate says so. The quick run has
a dedupe key of its own: training requests collapse into one queued run, and the full one must not
collapse into the quick one. The full run waits until the quick model is served (deferred in the queue, so
the training lane is not blocked and no attempt is used): the two cores go to the scoring service's start.
`FirstModelWatch` tells the console the two moments.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from shared.automation.handlers import TRAINING_KEY, Automation
from shared.automation.messages import RequestTraining, RunCompleted
from shared.ports import CHAMPION, Job, ModelVersion

QUICK_KEY = "training-quick"
QUICK_REASON = "first start: quick model"
FULL_REASON = "first start"
PROVISIONAL_TAG = "provisional"


def is_provisional(version: ModelVersion | None) -> bool:
    """A quick first model: served until a full-budget model replaces it."""
    return version is not None and version.tags.get(PROVISIONAL_TAG) == "true"


def quick_budget(auto: Automation) -> float:
    """The quick model's budget, 0 when there is none (disabled, or not shorter than the full budget)."""
    s = auto.settings
    return s.quick_budget_s if 0 < s.quick_budget_s < s.automl_budget_s and s.backend == "local" else 0.0


@dataclass(frozen=True)
class FirstModels:
    """The job ids of the first start's training requests (quick is None when there is no quick model)."""

    quick_job: str | None
    full_job: str | None

    @classmethod
    def pending(cls, auto: Automation) -> FirstModels:
        """The training requests still to finish (a restart in the middle of the first start finds them here)."""
        jobs = [j for j in auto.queue.recent(20, kind=RequestTraining.kind)
                if j.status in ("queued", "running") and j.payload.get("reason") in (QUICK_REASON, FULL_REASON)]
        quick = next((j.job_id for j in jobs if j.payload.get("provisional")), None)
        full = next((j.job_id for j in jobs if not j.payload.get("provisional")), None)
        return cls(quick, full)


def request_first_models(auto: Automation) -> FirstModels:
    """Queue the quick run (when configured), then the full run; the worker takes them oldest first."""
    quick_id = None
    if budget := quick_budget(auto):
        job, _ = auto.queue.put(RequestTraining(reason=QUICK_REASON, dataset=auto.settings.dataset_name, budget_s=budget,
                                                provisional=True), dedupe=QUICK_KEY)
        quick_id = job.job_id
    job, _ = auto.queue.put(RequestTraining(reason=FULL_REASON, dataset=auto.settings.dataset_name, after_quick=quick_id is not None),
                            dedupe=TRAINING_KEY)  # what request_training queues; later requests collapse into it
    return FirstModels(quick_id, job.job_id)


def _auc(version: ModelVersion) -> str:
    auc = version.metrics.get("AUC_weighted")
    return f"holdout AUC {auc:.4f}" if auc is not None else "holdout AUC unknown"


class FirstModelWatch:
    """The two moments of a first start, as console lines, each once: the first model served, then the full model's fate."""

    def __init__(self, auto: Automation, jobs: FirstModels, started: float, clock: Callable[[], float] = time.time) -> None:
        self.auto, self.jobs, self.started, self.clock = auto, jobs, started, clock
        self.served_first = False
        self.done = jobs.full_job is None

    def _elapsed(self) -> str:
        return f"{self.clock() - self.started:.1f}s"

    def _served(self) -> ModelVersion | None:
        champion = self.auto.registry.alias(CHAMPION)
        if champion is None or self.auto.deployer.current() != champion.version:
            return None
        return champion

    def _gate_job(self, version: str) -> Job | None:
        for job in self.auto.queue.recent(20, kind=RunCompleted.kind):
            if job.payload.get("model_version") == version and job.status in ("done", "dead"):
                return job
        return None

    def poll(self) -> list[str]:
        """Lines to print now (rich markup); empty when nothing new happened."""
        lines: list[str] = []
        if not self.served_first and (served := self._served()) is not None:
            self.served_first = True
            if is_provisional(served):
                budget = self.auto.settings.automl_budget_s
                lines.append(f"[bold green]first model served[/] after {self._elapsed()}: v{served.version}, a quick model "
                             f"(budget {served.tags.get('budget_s', '?')}s, {_auc(served)}), [yellow]provisional[/]; the full "
                             f"AutoML ({budget:g}s) runs now and replaces it if the gate agrees")
            else:
                lines.append(f"[bold green]model served[/] after {self._elapsed()}: v{served.version} ({_auc(served)})")
                self.done = True  # the full model itself (no quick one), or a champion from an earlier start
        if self.done or not self.served_first or self.jobs.full_job is None:
            return lines
        job = self.auto.queue.get(self.jobs.full_job)
        if job is None:
            self.done = True
        elif job.status == "dead" or (job.status == "done" and not job.result.get("model_version")):
            self.done = True
            lines.append(f"[red]the full-budget training failed[/] after {self._elapsed()}: {job.error or job.result.get('outcome')}; "
                         "the quick model stays until the next retrain (`bankops status`)")
        elif job.status == "done":
            lines.extend(self._gate_outcome(str(job.result["model_version"])))
        return lines

    def _gate_outcome(self, version: str) -> list[str]:
        gate = self._gate_job(version)
        if gate is None:
            return []
        self.done = True
        served = self._served()
        model = self.auto.registry.get(version)
        if gate.result.get("outcome") == "deployed" and served is not None and served.version == version:
            return [f"[bold green]full model served[/] after {self._elapsed()}: v{version} ({_auc(model)}) replaced the quick model"]
        why = gate.result.get("reason") or gate.error or gate.result.get("outcome")
        return [f"[yellow]full model v{version} not deployed[/] after {self._elapsed()} ({_auc(model)}): {why}; "
                f"v{served.version if served else '?'} stays"]
