"""Greedy ensemble selection: the blend prefers members that score better out of fold."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from shared.model import Member
from shared.training.ensemble import Candidate, bagged_weights, build_blend, select_weights
from shared.training.evaluate import scorer


@pytest.fixture
def y() -> np.ndarray:
    return np.random.default_rng(0).binomial(1, 0.2, size=600)


def _informative(y: np.ndarray, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(0.15 + 0.6 * y + rng.normal(0, noise, len(y)), 0.001, 0.999)


@pytest.mark.parametrize("metric", ["AUC_weighted", "log_loss", "average_precision_score_weighted"])
def test_picks_the_better_member(y: np.ndarray, metric: str) -> None:
    oof = {"noise": np.random.default_rng(1).uniform(0.001, 0.999, len(y)), "good": _informative(y, 0.25, seed=2)}
    picks = select_weights(oof, y, scorer(metric))
    assert picks.get("good", 0) >= 0.8 * sum(picks.values()), picks


def test_order_of_candidates_does_not_matter(y: np.ndarray) -> None:
    a, b = _informative(y, 0.3, seed=3), _informative(y, 0.6, seed=4)
    score = scorer("AUC_weighted")
    assert select_weights({"a": a, "b": b}, y, score) == select_weights({"b": b, "a": a}, y, score)
    assert max(select_weights({"b": b, "a": a}, y, score).items(), key=lambda kv: kv[1])[0] == "a"


def test_blends_complementary_members(y: np.ndarray) -> None:
    """Each member knows half of the rows; together they beat either alone, so both are picked."""
    half = np.arange(len(y)) < len(y) // 2
    rng = np.random.default_rng(5)
    good = _informative(y, 0.2, seed=6)
    left = np.where(half, good, rng.uniform(0, 1, len(y)))
    right = np.where(~half, good, rng.uniform(0, 1, len(y)))
    score = scorer("AUC_weighted")
    picks = select_weights({"left": left, "right": right}, y, score)
    assert set(picks) == {"left", "right"}, picks
    total = sum(picks.values())
    blend = (picks["left"] * left + picks["right"] * right) / total
    assert score(y, blend) > max(score(y, left), score(y, right))


def test_a_single_candidate_is_picked(y: np.ndarray) -> None:
    picks = select_weights({"only": _informative(y, 0.3, seed=7)}, y, scorer("AUC_weighted"), rounds=5)
    assert picks == {"only": 5}


def test_the_blend_stays_within_its_prediction_cost(y: np.ndarray) -> None:
    """Complementary members that together cost more than the scoring budget are not blended; a
    cheaper partner is taken instead, and the most expensive member alone is never the fallback."""
    half = np.arange(len(y)) < len(y) // 2
    rng = np.random.default_rng(5)
    good = _informative(y, 0.2, seed=6)
    left = np.where(half, good, rng.uniform(0, 1, len(y)))
    right = np.where(~half, good, rng.uniform(0, 1, len(y)))
    cheap_right = np.where(~half, _informative(y, 0.4, seed=8), rng.uniform(0, 1, len(y)))
    oof = {"left": left, "right": right, "cheap_right": cheap_right}
    score = scorer("AUC_weighted")
    unlimited = select_weights(oof, y, score)
    assert {"left", "right"} <= set(unlimited), unlimited
    limited = select_weights(oof, y, score, cost={"left": 2500, "right": 2500, "cheap_right": 500}, max_cost=3500)
    assert "right" not in limited or "left" not in limited, limited
    assert sum({"left": 2500, "right": 2500, "cheap_right": 500}[n] for n in limited) <= 3500
    over = select_weights({"big": good, "small": left}, y, score, cost={"big": 9000, "small": 100}, max_cost=3500)
    assert set(over) == {"small"}, over


def _forest_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(500, 4))
    return x, (x[:, 0] + rng.normal(0, 0.5, 500) > 0.8).astype(np.int64)


# A forest without bootstrap: the root of each tree holds every row the model was trained on.
_FOREST = Candidate("rf-fixed", "rf", {"n_estimators": 5, "max_depth": 3, "bootstrap": False}, native=True)


def _rows_seen(member: Member) -> int:
    return int(member.estimator.estimators_[0].tree_.n_node_samples[0])


def test_picked_members_are_refit_on_all_rows() -> None:
    x, y = _forest_data()
    blend = build_blend([_FOREST], x, y, score=scorer("AUC_weighted"), folds=5, seed=0, deadline=time.monotonic() + 60)
    assert blend.unrefit == []
    assert [_rows_seen(m) for m in blend.members] == [500]
    assert blend.candidate_scores["rf-fixed"] > 0.7  # the out-of-fold score is still reported


def test_a_member_without_time_to_refit_is_served_by_a_fold_model() -> None:
    """Out of time: the first candidate keeps the fold model it has (4/5 of the rows), same cost to predict."""
    x, y = _forest_data()
    blend = build_blend([_FOREST], x, y, score=scorer("AUC_weighted"), folds=5, seed=0, deadline=time.monotonic() - 1)
    assert blend.unrefit == ["rf-fixed"]
    assert [_rows_seen(m) for m in blend.members] == [400]


def test_the_fast_auc_equals_scikit_learns_ties_included(y: np.ndarray) -> None:
    p = _informative(y, 0.3, seed=3)
    assert scorer("AUC_weighted")(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    coarse = np.round(p, 1)  # many ties
    assert scorer("AUC_weighted")(y, coarse) == pytest.approx(roc_auc_score(y, coarse), abs=1e-12)
    with pytest.raises(ValueError, match="both classes"):
        scorer("AUC_weighted")(np.zeros(10), np.linspace(0, 1, 10))


def test_bagged_selection_spreads_weight_and_keeps_the_cost_cap(y: np.ndarray) -> None:
    """Several useful members share the weight (summing to 1), and the union of the bags' picks
    is trimmed, lightest first, to the prediction-cost cap."""
    oof = {f"m{i}": _informative(y, 0.25 + 0.02 * i, seed=20 + i) for i in range(6)}
    weights = bagged_weights(oof, y, scorer("AUC_weighted"), seed=1)
    assert sum(weights.values()) == pytest.approx(1.0)
    assert len(weights) >= 3, weights
    cost = {name: 1000.0 for name in oof}
    capped = bagged_weights(oof, y, scorer("AUC_weighted"), seed=1, cost=cost, max_cost=2000)
    assert len(capped) == 2 and sum(capped.values()) == pytest.approx(1.0), capped
    assert set(capped) <= set(weights)


def test_bagged_selection_never_scores_below_its_best_candidate(y: np.ndarray) -> None:
    """One strong candidate among weak ones (the pre-call case: weak searched configs beside the
    portfolio): the bags without it must not drag the blend below the strong one alone."""
    auc = scorer("AUC_weighted")
    oof = {"strong": _informative(y, 0.25, seed=40)} | {f"weak{i}": _informative(y, 0.9, seed=41 + i) for i in range(5)}
    weights = bagged_weights(oof, y, auc, seed=3)
    blended = sum(w * oof[n] for n, w in weights.items())
    assert auc(y, np.asarray(blended)) >= auc(y, oof["strong"])
    assert max(weights, key=weights.__getitem__) == "strong"
