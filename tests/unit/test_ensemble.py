"""Greedy ensemble selection: the blend prefers members that score better out of fold."""

from __future__ import annotations

import numpy as np
import pytest

from shared.training.ensemble import select_weights
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
