"""A rich progress display for training: elapsed time against the budget, trials, best score."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from shared.training.learners import LEARNER_NAMES
from shared.training.search import Trial


class RichTrainingProgress:
    def __init__(self, console: Console, budget_s: float) -> None:
        self.console = console
        self.budget_s = budget_s
        self.started = time.monotonic()
        self.trials = 0
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[elapsed]}"),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console, transient=False,
        )
        self._task = self._progress.add_task("starting", total=budget_s, elapsed="", info="")

    def __enter__(self) -> RichTrainingProgress:
        self._progress.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._refresh()
        self._progress.stop()

    def _refresh(self, **fields: Any) -> None:
        elapsed = time.monotonic() - self.started
        self._progress.update(self._task, completed=min(elapsed, self.budget_s),
                              elapsed=f"{elapsed:5.1f}s / {self.budget_s:.0f}s", **fields)

    def step(self, name: str) -> None:
        self._refresh(description=name)

    def search_started(self, budget_s: float) -> None:
        self._refresh(description="automl", info=f"searching for {budget_s:.0f}s")

    def trial(self, trial: Trial, best: Trial) -> None:
        self.trials += 1
        self._refresh(info=f"{self.trials} trials · best {best.cv_score:.4f} ({LEARNER_NAMES.get(best.learner, best.learner)})")
