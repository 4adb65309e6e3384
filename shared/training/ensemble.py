"""Turn the search's configs into the final model: a greedy weighted blend of refit members.

Caruana-style ensemble selection (what AutoGluon and Azure AutoML's VotingEnsemble do): compute
out-of-fold predictions for each candidate (the best configs the search found per learner, and a
small fixed portfolio, CatBoost among it), then repeatedly add, with replacement, the candidate
that most improves the out-of-fold metric. The selection is bagged (run on random halves of the
candidates and summed), so one searched config's lucky OOF score does not take the largest weight.

Each picked candidate is then refit once on all rows. Keeping its k fold models instead (bagging)
scores the same on the bench holdout (XGBoost 0.9472 bagged, 0.9473 refit) but costs k times as
much to predict; with the blend's prediction cost capped for the scoring service, a refit blend
can hold several diverse members where a bagged one held two, and that is what lifts the holdout
AUC (0.9474 -> about 0.9480 on the bench split). A member whose refit does not fit in the time left is
served by its first fold model, which costs the same to predict.
The members are the libraries' own estimators, so the saved model needs no FLAML.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from shared.model import Member
from shared.training.learners import build_estimator, build_native, expected_fit_s, fewer_trees

Scorer = Callable[[np.ndarray, np.ndarray], float]  # (y, p_yes) -> score, greater is better
SELECTION_BAGS = 20  # bagged ensemble selection: greedy runs on random subsets of the candidates
SELECTION_SHARE = 0.5  # of the candidates in each bag (Caruana et al. 2004 use 0.5)
MIN_MEMBER_WEIGHT = 0.03  # a member with less weight barely moves a probability, but costs its call to serve
SELECTION_ROUNDS_SEEN = 8  # greedy rounds a bag usually runs before no member improves it (measured on the bench: 4-13, mean 7.5)
REFIT_RESERVE_MEMBERS = 3  # refits kept time for while candidates are fit (the blend rarely picks more)
MIN_TREES_SHARE = 0.35  # a portfolio config is shrunk to fit the time left, down to this share of its trees
# What one prediction of the whole blend costs, in XGBoost depth-5 trees: the scoring service's
# targets (100 records under 10 ms p50, one record p99 under 5 ms, on 2 cores) were met with 2,983
# (5 x 500 XGBoost + 5 x 69 LightGBM fold models: 8.7 ms); 3,063 gave 9.4-11.7 ms, and a blend of
# 6 bagged members (about 12,000) 19 ms.
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


def planned_cost(candidate: Candidate) -> float | None:
    """Prediction cost of one model of the candidate, from its config (None: not known before fitting)."""
    trees = candidate.config.get("iterations", candidate.config.get("n_estimators"))
    return None if trees is None else int(trees) * TREE_COST.get(candidate.learner, 1.0)


@dataclass
class _Fitted:
    candidate: Candidate
    oof: np.ndarray
    models: list[Any] = field(default_factory=list)
    complete: bool = True  # False: stopped early for time, so no full out-of-fold predictions
    seconds: float = 0.0  # wall time of the fold fits

    @property
    def cost(self) -> float:
        """Prediction cost of one of its models, in XGBoost depth-5 trees (see TREE_COST)."""
        return max(tree_count(m) for m in self.models) * TREE_COST.get(self.candidate.learner, 1.0)

    def refit_s(self, folds: int) -> float:
        """Expected time of one fit on all rows: a fold fit, scaled up to k/(k-1) of its rows."""
        return self.seconds / max(len(self.models), 1) * folds / max(folds - 1, 1)


@dataclass(frozen=True)
class Blend:
    members: list[Member]
    candidate_scores: dict[str, float]  # out-of-fold score of each candidate that was fit
    oof_score: float  # out-of-fold score of the blend
    skipped: list[str]  # candidates left out for lack of time
    seconds: dict[str, float] = field(default_factory=dict)  # time spent on each candidate tried
    unrefit: list[str] = field(default_factory=list)  # members served by a fold model: no time to refit


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


def bagged_weights(oof: dict[str, np.ndarray], y: np.ndarray, score: Scorer, *, seed: int, bags: int = SELECTION_BAGS,
                   share: float = SELECTION_SHARE, cost: dict[str, float] | None = None,
                   max_cost: float | None = None) -> dict[str, float]:
    """Bagged ensemble selection (Caruana et al. 2004): greedy selection on `bags` random subsets
    of `share` of the candidates, each bag's weights summed; then the lightest members are dropped
    until the blend fits `max_cost`, and those under MIN_MEMBER_WEIGHT of the weight. One greedy
    pass over every candidate overfits the out-of-fold predictions it is chosen on, favouring
    whichever searched config's OOF score was luckiest; bagging spreads the weight over members
    that win in many subsets. Returns weights that sum to 1."""
    names = list(oof)
    if len(names) == 1:
        return {names[0]: 1.0}
    rng = np.random.default_rng(seed)
    weights: dict[str, float] = {}  # the members some bag picked, in the order first picked
    for _ in range(bags):
        subset = [n for n in names if rng.random() < share] or [names[int(rng.integers(len(names)))]]
        picks = select_weights({n: oof[n] for n in subset}, y, score, cost=cost, max_cost=max_cost)
        picked = sum(picks.values())
        for name, count in picks.items():
            weights[name] = weights.get(name, 0.0) + count / picked
    kept = sorted(weights, key=lambda n: -weights[n])
    total = sum(weights.values())
    kept = [n for n in kept if weights[n] / total >= MIN_MEMBER_WEIGHT] or kept[:1]  # a member costs its time to serve
    while cost is not None and max_cost is not None and len(kept) > 1 and sum(cost[n] for n in kept) > max_cost:
        kept.pop()
    total = sum(weights[n] for n in kept)
    bagged = {n: weights[n] / total for n in kept}
    # With one or two strong candidates among weak ones (the pre-call task: searched configs at OOF
    # 0.75-0.79 beside portfolio configs at 0.80), the bags that miss the strong ones give weight to
    # weak ones, and the sum can score below the best candidate alone; then one greedy pass over all
    # of them, which never scores below it.
    if score(y, np.asarray(sum(w * oof[n] for n, w in bagged.items()))) >= max(score(y, oof[n]) for n in names):
        return bagged
    picks = select_weights(oof, y, score, cost=cost, max_cost=max_cost)
    total = sum(picks.values())
    return {n: c / total for n, c in sorted(picks.items(), key=lambda kv: -kv[1])}


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


def _reserve(fitted: dict[str, _Fitted], folds: int, also: float, score_s: float) -> float:
    """Time to keep for after the candidates: the selection (SELECTION_ROUNDS_SEEN greedy rounds per
    bag, each scoring every candidate of the bag once, `score_s` a score) and refitting the picks
    (the REFIT_RESERVE_MEMBERS slowest refits among the candidates fit so far and `also`, the next
    candidate's)."""
    times = sorted([f.refit_s(folds) for f in fitted.values()] + [also], reverse=True)
    selection = SELECTION_BAGS * SELECTION_SHARE * (len(fitted) + 1) * SELECTION_ROUNDS_SEEN * score_s
    return selection + sum(times[:REFIT_RESERVE_MEMBERS])


def _final_model(fit: _Fitted, x: np.ndarray, y: np.ndarray, *, seed: int, folds: int, deadline: float) -> tuple[Any, bool]:
    """The member's model: refit on all rows if that fits before `deadline`, else its first fold model."""
    if fit.complete and time.monotonic() + fit.refit_s(folds) <= deadline:
        return fit.candidate.estimator(seed).fit(x, y), True
    return fit.models[0], False


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
    """The blend of refit members and each candidate's out-of-fold score.

    Candidates are tried in order while time remains before `deadline` (time.monotonic()), less
    the time their refits will take; one whose expected or projected time does not fit is
    skipped; a portfolio config is first shrunk (fewer trees, higher learning rate) to fit, if it
    can keep MIN_TREES_SHARE of its trees. The first is always fit: if even its folds do not fit,
    its first fold model is the model. A candidate whose model alone would cost more than
    `max_cost` to predict is not fit, and the selection keeps the blend within `max_cost` (the
    scoring service's latency; None: no limit).
    """
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y))
    fitted: dict[str, _Fitted] = {}
    skipped: list[str] = []
    seconds: dict[str, float] = {}
    slowdown = 1.0  # measured / expected time of the candidates so far (the machine may be busy)
    began = time.monotonic()
    score(y, np.linspace(0.0, 1.0, len(y)))
    score_s = time.monotonic() - began
    for position, candidate in enumerate(candidates):
        planned = planned_cost(candidate)
        if fitted and max_cost is not None and planned is not None and planned > max_cost:
            skipped.append(candidate.name)
            continue
        expected = _expected_s(candidate, len(y), folds)
        refit = (expected or 0.0) * slowdown / max(folds - 1, 1)
        left = deadline - _reserve(fitted, folds, refit, score_s) - time.monotonic()
        if fitted and expected and candidate.native and MIN_TREES_SHARE * expected * slowdown < left < expected * slowdown:
            share = left / (expected * slowdown)  # a portfolio config that does not fit: fewer trees, higher learning rate
            candidate = replace(candidate, config=fewer_trees(candidate.config, share * 0.85))
            expected = _expected_s(candidate, len(y), folds)
        if fitted and (expected or 0.0) * slowdown > left:
            skipped.append(candidate.name)
            continue
        began = time.monotonic()
        result = _fit_folds(candidate, x, y, splits, seed=seed, deadline=time.monotonic() + left, keep_partial=not fitted)
        took = time.monotonic() - began
        seconds[candidate.name] = round(took, 2)
        if result is None:
            skipped.append(candidate.name)
            continue
        result.seconds = took
        fitted[candidate.name] = result
        if not result.complete:
            skipped.extend(c.name for c in candidates[position + 1:])
            break
        if expected:
            slowdown = max(slowdown, min(seconds[candidate.name] / expected, 4.0))
    oof = {name: f.oof for name, f in fitted.items()}
    cost = {name: f.cost for name, f in fitted.items()}
    picks = bagged_weights(oof, y, score, seed=seed, cost=cost, max_cost=max_cost)
    members, unrefit = [], []
    for name, weight in sorted(picks.items(), key=lambda kv: -kv[1]):
        model, refit = _final_model(fitted[name], x, y, seed=seed, folds=folds, deadline=deadline)
        if not refit:
            unrefit.append(name)
        members.append(Member(learner=fitted[name].candidate.learner, weight=weight, estimator=model,
                              config=fitted[name].candidate.config))
    complete = {name: p for name, p in oof.items() if fitted[name].complete}
    blended = sum(weight * oof[name] for name, weight in picks.items())
    return Blend(members=members, candidate_scores={name: score(y, p) for name, p in complete.items()},
                 oof_score=score(y, np.asarray(blended)) if len(complete) == len(oof) else float("nan"), skipped=skipped,
                 seconds=seconds, unrefit=unrefit)
