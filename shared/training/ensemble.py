"""Turn the search's configs into the final model: a greedy weighted blend of fold-bagged members.

Caruana-style ensemble selection (what AutoGluon and Azure AutoML's VotingEnsemble do): compute
out-of-fold predictions for each candidate (the best configs the search found per learner, and a
small fixed portfolio, CatBoost among it), then repeatedly add, with replacement, the candidate
that most improves the out-of-fold metric.

Each candidate's k fold models are kept and averaged as its final estimator (bagging, as
AutoGluon does) instead of being refit on all rows: on this data the average of the fold models
scores at least as well as one refit, and skipping the refit leaves time for more candidates.
The averaged members are plain scikit-learn `VotingClassifier`s over the libraries' own
estimators, so the saved model needs no FLAML.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sklearn.ensemble import VotingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold

from shared.model import Member
from shared.training.learners import build_estimator, build_native, expected_fit_s, fewer_trees

Scorer = Callable[[np.ndarray, np.ndarray], float]  # (y, p_yes) -> score, greater is better
MIN_TREES_SHARE = 0.35  # a portfolio config is shrunk to fit the time left, down to this share of its trees
# What one prediction of the whole blend costs, fold models counted, in XGBoost depth-5 trees: the
# scoring service's targets (100 records under 10 ms p50, one record p99 under 5 ms, on 2 cores)
# were met with 2,983 (5 x 500 XGBoost + 5 x 69 LightGBM: 8.7 ms); 3,063 gave 9.4-11.7 ms, and a
# blend of 6 bagged members (about 12,000) 19 ms. At 2,500 only the XGBoost member fits (holdout
# AUC 0.9472 against 0.9475 on the bench split).
MAX_BLEND_COST = 3_000
# Cost of one tree per library, measured on 100 records on 2 cores (XGBoost 500 trees depth 5:
# 0.74 ms; LightGBM 500 trees of 31 leaves: 1.0 ms; CatBoost 600 oblivious trees of depth 6:
# 0.27 ms); the forests' deep trees are walked one scikit-learn call per tree.
TREE_COST = {"xgboost": 1.0, "lgbm": 1.4, "catboost": 0.3, "rf": 10.0, "extra_tree": 10.0}


@dataclass(frozen=True)
class Candidate:
    """One config the blend may use."""

    name: str  # unique among the candidates, e.g. "lgbm", "lgbm-2", "catboost-fixed" (an MLflow metric name)
    learner: str
    config: dict[str, Any]
    native: bool = False  # config holds the library's own params (portfolio), not FLAML's
    expected_s: float | None = None  # rough time of its k-fold fit, when known

    def estimator(self, seed: int) -> Any:
        if self.native:
            return build_native(self.learner, self.config, seed=seed)
        return build_estimator(self.learner, self.config, seed=seed)


def tree_count(model: Any) -> int:
    """Trees one prediction of a fitted model walks (0 for a linear model)."""
    if hasattr(model, "booster_"):  # LightGBM
        return int(model.booster_.num_trees())
    if hasattr(model, "get_booster"):  # XGBoost, binary: one tree per round
        return int(model.get_booster().num_boosted_rounds())
    if hasattr(model, "tree_count_"):  # CatBoost
        return int(model.tree_count_)
    return len(getattr(model, "estimators_", None) or [])  # scikit-learn forests


def planned_cost(candidate: Candidate, folds: int) -> float | None:
    """Prediction cost of the candidate's fold models, from its config (None: not known before fitting)."""
    trees = candidate.config.get("iterations", candidate.config.get("n_estimators"))
    return None if trees is None else int(trees) * folds * TREE_COST.get(candidate.learner, 1.0)


@dataclass
class _Fitted:
    candidate: Candidate
    oof: np.ndarray
    models: list[Any] = field(default_factory=list)
    complete: bool = True  # False: stopped early for time, so no full out-of-fold predictions

    @property
    def cost(self) -> float:
        """Prediction cost of the fold models, in XGBoost depth-5 trees (see TREE_COST)."""
        return sum(tree_count(m) for m in self.models) * TREE_COST.get(self.candidate.learner, 1.0)


@dataclass(frozen=True)
class Blend:
    members: list[Member]
    candidate_scores: dict[str, float]  # out-of-fold score of each candidate that was fit
    oof_score: float  # out-of-fold score of the blend
    skipped: list[str]  # candidates left out for lack of time
    seconds: dict[str, float] = field(default_factory=dict)  # time spent on each candidate tried


def fold_average(models: list[Any], x: np.ndarray, y: np.ndarray) -> Any:
    """One estimator whose predict_proba is the mean of the already fitted `models`: a soft
    VotingClassifier over FrozenEstimators (its fit only records the classes). The scoring
    service unwraps it into the members' fast single-row calls."""
    if len(models) == 1:
        return models[0]
    return VotingClassifier([(f"fold{i}", FrozenEstimator(m)) for i, m in enumerate(models)], voting="soft").fit(x, y)


def select_weights(oof: dict[str, np.ndarray], y: np.ndarray, score: Scorer, rounds: int = 25, *,
                   cost: dict[str, float] | None = None, max_cost: float | None = None) -> dict[str, int]:
    """Greedy selection with replacement; returns how often each member was picked. With `cost`
    and `max_cost`, a member not yet picked joins only while the picked members' cost stays within
    `max_cost` (the first pick is the best that fits, else the cheapest)."""
    picks: Counter[str] = Counter()
    blend = np.zeros(len(y))
    best_so_far = -np.inf

    def fits(name: str) -> bool:
        if cost is None or max_cost is None or name in picks:
            return True
        return sum(cost[n] for n in picks) + cost[name] <= max_cost

    for step in range(1, rounds + 1):
        allowed = [name for name in oof if fits(name)]
        if not allowed:
            if picks:
                break
            allowed = [min(oof, key=lambda n: (cost or {}).get(n, 0.0))]
        candidates = {name: score(y, (blend * (step - 1) + oof[name]) / step) for name in allowed}
        name = max(candidates, key=candidates.__getitem__)
        if candidates[name] < best_so_far - 1e-12 and picks:
            break
        best_so_far = max(best_so_far, candidates[name])
        picks[name] += 1
        blend = (blend * (step - 1) + oof[name]) / step
    return dict(picks)


def _expected_s(candidate: Candidate, rows: int, folds: int) -> float | None:
    if candidate.expected_s is not None or not candidate.native:
        return candidate.expected_s
    one = expected_fit_s(candidate.learner, candidate.config, rows * (folds - 1) // folds)
    return None if one is None else one * folds


def _fit_folds(candidate: Candidate, x: np.ndarray, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]], *,
               seed: int, deadline: float, keep_partial: bool) -> _Fitted | None:
    """Out-of-fold predictions and fold models. When the rest would not finish before `deadline`,
    None, or with `keep_partial` the fold models fit so far (at least one)."""
    fitted = _Fitted(candidate, np.zeros(len(y), dtype=np.float64))
    started = time.monotonic()
    for i, (train_idx, test_idx) in enumerate(splits):
        now = time.monotonic()
        if i and now + (now - started) / i * (len(splits) - i) > deadline:
            fitted.complete = False
            return fitted if keep_partial else None
        model = candidate.estimator(seed).fit(x[train_idx], y[train_idx])
        fitted.oof[test_idx] = model.predict_proba(x[test_idx])[:, 1]
        fitted.models.append(model)
    return fitted


def build_blend(
    candidates: list[Candidate],
    x: np.ndarray,
    y: np.ndarray,
    *,
    score: Scorer,
    folds: int,
    seed: int,
    deadline: float,
    max_cost: float | None = MAX_BLEND_COST,
) -> Blend:
    """The blend of fold-bagged members and each candidate's out-of-fold score.

    Candidates are tried in order while time remains before `deadline` (time.monotonic()); one
    whose expected or projected time does not fit is skipped; a portfolio config is first shrunk
    (fewer trees, higher learning rate) to fit, if it can keep MIN_TREES_SHARE of its trees. The first is always fit: if even
    its folds do not fit, the fold models fit by the deadline (at least one) are the model.
    A candidate whose fold models alone would cost more than `max_cost` to predict is not fit, and
    the selection keeps the blend within `max_cost` (the scoring service's latency; None: no limit).
    """
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y))
    fitted: dict[str, _Fitted] = {}
    skipped: list[str] = []
    seconds: dict[str, float] = {}
    slowdown = 1.0  # measured / expected time of the candidates so far (the machine may be busy)
    for position, candidate in enumerate(candidates):
        planned = planned_cost(candidate, folds)
        if fitted and max_cost is not None and planned is not None and planned > max_cost:
            skipped.append(candidate.name)
            continue
        expected = _expected_s(candidate, len(y), folds)
        left = deadline - time.monotonic()
        if fitted and expected and candidate.native and MIN_TREES_SHARE * expected * slowdown < left < expected * slowdown:
            share = left / (expected * slowdown)  # a portfolio config that does not fit: fewer trees, higher learning rate
            candidate = replace(candidate, config=fewer_trees(candidate.config, share * 0.85))
            expected = _expected_s(candidate, len(y), folds)
        if fitted and (expected or 0.0) * slowdown > left:
            skipped.append(candidate.name)
            continue
        began = time.monotonic()
        result = _fit_folds(candidate, x, y, splits, seed=seed, deadline=deadline, keep_partial=not fitted)
        seconds[candidate.name] = round(time.monotonic() - began, 2)
        if result is None:
            skipped.append(candidate.name)
            continue
        fitted[candidate.name] = result
        if not result.complete:
            skipped.extend(c.name for c in candidates[position + 1:])
            break
        if expected:
            slowdown = max(slowdown, min(seconds[candidate.name] / expected, 4.0))
    oof = {name: f.oof for name, f in fitted.items()}
    cost = {name: f.cost for name, f in fitted.items()}
    picks = select_weights(oof, y, score, cost=cost, max_cost=max_cost) if len(oof) > 1 else {next(iter(oof)): 1}
    total = sum(picks.values())
    members = [
        Member(learner=fitted[name].candidate.learner, weight=count / total,
               estimator=fold_average(fitted[name].models, x, y), config=fitted[name].candidate.config)
        for name, count in sorted(picks.items(), key=lambda kv: -kv[1])
    ]
    complete = {name: p for name, p in oof.items() if fitted[name].complete}
    blended = sum(count / total * oof[name] for name, count in picks.items())
    return Blend(members=members, candidate_scores={name: score(y, p) for name, p in complete.items()},
                 oof_score=score(y, np.asarray(blended)) if len(complete) == len(oof) else float("nan"), skipped=skipped,
                 seconds=seconds)
