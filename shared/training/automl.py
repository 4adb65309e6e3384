"""The AutoML step on an encoded matrix: search, then blend, within one time budget.

The training pipeline and the benchmark (bench/train_bench.py) both call `run_automl`, so the
benchmark measures exactly what `bankops train` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shared.errors import InvalidInput
from shared.features import FeatureEncoder
from shared.model import BankMarketingModel, Member
from shared.training.ensemble import Blend, Candidate, build_blend
from shared.training.evaluate import scorer
from shared.training.feature_selection import FeatureSelection, select_features
from shared.training.learners import LEARNERS, PORTFOLIO, SEARCHED, portfolio_for
from shared.training.search import SearchResult, Trial, run_search

TOP_PER_LEARNER = 2  # searched configs per learner offered to the blend


@dataclass(frozen=True)
class AutoMLResult:
    members: list[Member]
    search: SearchResult
    blend: Blend
    cv_score: float  # the best searched config's cross-validated score
    search_s: float  # wall time of the search
    blend_s: float  # wall time of the blend
    features: FeatureSelection  # the members were trained on `features.kept` only

    def model(self, encoder: FeatureEncoder) -> BankMarketingModel:
        """The served model: `encoder` (fit on every column the AutoML was given) less the columns it
        left out, so its matrix is the one the members were trained on."""
        return BankMarketingModel(encoder=encoder.without(self.features.dropped), members=self.members)

    @property
    def trials(self) -> list[Trial]:
        return self.search.trials


def candidates(search: SearchResult, per_learner: int = TOP_PER_LEARNER, portfolio: bool = True,
               learners: tuple[str, ...] = LEARNERS, fixed: tuple[tuple[str, dict[str, Any]], ...] = PORTFOLIO) -> list[Candidate]:
    """What the blend tries, in order: the best searched config (its time is known, so small
    budgets get the search's winner), the portfolio, the best searched config of the other
    learners, then the runners-up."""
    top = search.top_trials(per_learner)
    if not top:  # no trial log: fall back to FLAML's best config per learner
        top = [Trial(0, name, search.best_config[name], search.best_score[name], 0.0, 0.0) for name in search.ranked_learners()]
    seen: set[str] = set()
    firsts: list[Candidate] = []
    seconds: list[Candidate] = []
    for trial in top:
        name = trial.learner if trial.learner not in seen else f"{trial.learner}-2"
        (seconds if trial.learner in seen else firsts).append(
            Candidate(name, trial.learner, trial.config, expected_s=trial.train_time_s or None))
        seen.add(trial.learner)
    extra = [Candidate(f"{name}-fixed", name, params, native=True) for name, params in fixed if portfolio and name in learners]
    return firsts[:1] + extra + firsts[1:] + seconds


def run_automl(
    x: np.ndarray,
    y: np.ndarray,
    columns: list[str],
    *,
    budget_s: float,
    started: float,
    metric: str = "AUC_weighted",
    folds: int = 5,
    seed: int = 42,
    learners: tuple[str, ...] = LEARNERS,
    search_share: float,
    per_learner: int = TOP_PER_LEARNER,
    portfolio: bool = True,
    drop_noise: bool = True,
    on_search_started: Callable[[float], None] = lambda _b: None,
    on_trial: Callable[[Trial], None] = lambda _t: None,
    on_search_done: Callable[[SearchResult], None] = lambda _r: None,
) -> AutoMLResult:
    """Leave out the columns that are noise, search for `search_share` of the budget (counted from
    `started`, time.monotonic()), then blend until the budget ends. The members take the matrix's
    `result.features.kept_index` columns."""
    searched = tuple(name for name in learners if name in SEARCHED)
    if not searched:
        raise InvalidInput(f"the search needs at least one of: {', '.join(SEARCHED)} (got {', '.join(learners)})")
    features = (select_features(x, y, columns, score=scorer(metric), budget_s=budget_s, folds=folds, seed=seed)
                if drop_noise else FeatureSelection.keep_all(columns, "turned off"))
    x, columns = x[:, features.kept_index], features.kept
    search_budget = max(1.0, budget_s * search_share - (time.monotonic() - started))
    on_search_started(search_budget)
    search_started = time.monotonic()
    result = run_search(pd.DataFrame(x, columns=columns), y, budget_s=search_budget, metric=metric, folds=folds,
                        seed=seed, learners=searched, on_trial=on_trial)
    on_search_done(result)
    blend_started = time.monotonic()
    blend = build_blend(candidates(result, per_learner, portfolio, learners, portfolio_for(columns)), x, y,
                        score=scorer(metric), folds=folds, seed=seed, deadline=started + budget_s)
    ranked = result.ranked_learners()
    # A budget of a few seconds on busy cores (a quick first model) can end the search before its first trial: the
    # portfolio's blend is the model then, and its out-of-fold score the CV score.
    cv_score = (result.best_score[ranked[0]] if ranked else blend.oof_score if np.isfinite(blend.oof_score)
                else max(blend.candidate_scores.values(), default=float("nan")))
    return AutoMLResult(members=blend.members, search=result, blend=blend, cv_score=cv_score,
                        search_s=blend_started - search_started, blend_s=time.monotonic() - blend_started,
                        features=features)
