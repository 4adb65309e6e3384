"""Turn the search's best configs into the final model: a greedy weighted blend.

Caruana-style ensemble selection (what AutoGluon and Azure AutoML's VotingEnsemble do): compute
out-of-fold predictions for the best config of each learner, then repeatedly add, with
replacement, the member that most improves the out-of-fold metric. Members are then refit on
all training rows. Blending diverse learners is how the ensemble beats each of them alone.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from shared.model import Member
from shared.training.learners import build_estimator

Scorer = Callable[[np.ndarray, np.ndarray], float]  # (y, p_yes) -> score, greater is better


def out_of_fold(estimator: Any, x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    oof = np.zeros(len(y), dtype=np.float64)
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        model = clone(estimator).fit(x[train_idx], y[train_idx])
        oof[test_idx] = model.predict_proba(x[test_idx])[:, 1]
    return oof


def select_weights(oof: dict[str, np.ndarray], y: np.ndarray, score: Scorer, rounds: int = 25) -> dict[str, int]:
    """Greedy selection with replacement; returns how often each member was picked."""
    picks: Counter[str] = Counter()
    blend = np.zeros(len(y))
    best_so_far = -np.inf
    for step in range(1, rounds + 1):
        candidates = {name: score(y, (blend * (step - 1) + p) / step) for name, p in oof.items()}
        name = max(candidates, key=candidates.__getitem__)
        if candidates[name] < best_so_far - 1e-12 and picks:
            break
        best_so_far = max(best_so_far, candidates[name])
        picks[name] += 1
        blend = (blend * (step - 1) + oof[name]) / step
    return dict(picks)


def build_blend(
    ranked: list[tuple[str, dict[str, Any]]],
    x: np.ndarray,
    y: np.ndarray,
    *,
    score: Scorer,
    folds: int,
    seed: int,
    deadline: float,
    max_members: int = 4,
) -> tuple[list[Member], dict[str, float]]:
    """The blended members (refit on all of x) and each candidate's out-of-fold score.

    `ranked` is (learner, config) best first. Candidates are added while time remains before
    `deadline` (time.monotonic()); the best one is always kept.
    """
    oof: dict[str, np.ndarray] = {}
    estimators: dict[str, tuple[Any, dict[str, Any]]] = {}
    started = time.monotonic()
    for learner, config in ranked[:max_members]:
        per_candidate = (time.monotonic() - started) / max(len(oof), 1)
        if oof and time.monotonic() + per_candidate > deadline:
            break
        estimator = build_estimator(learner, config, seed=seed)
        estimators[learner] = (estimator, config)
        if len(ranked) > 1:
            oof[learner] = out_of_fold(estimator, x, y, folds, seed)
    picks = select_weights(oof, y, score) if len(oof) > 1 else {ranked[0][0]: 1}
    members = [
        Member(learner=name, weight=count / sum(picks.values()), estimator=clone(estimators[name][0]).fit(x, y), config=estimators[name][1])
        for name, count in sorted(picks.items(), key=lambda kv: -kv[1])
    ]
    return members, {name: score(y, p) for name, p in oof.items()}
