"""The AutoML's first step: columns that are noise are left out, signal is kept, and the step
stands aside when the data is too small or the budget too short for its verdict to mean anything."""

from __future__ import annotations

import numpy as np
import pytest

from shared.training import feature_selection
from shared.training.evaluate import scorer
from shared.training.feature_selection import select_features

AUC = scorer("AUC_weighted")


def _data(rows: int, signal: int, noise: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`signal` columns that drive y and `noise` columns that do not, interleaved; the noise is
    coded categories of a few levels, as the bank's `housing`, `loan` and `marital` are."""
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(rows, signal))
    logit = s @ np.linspace(1.5, 0.6, signal) - 2.0
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    columns, blocks = [], []
    for j in range(max(signal, noise)):
        if j < signal:
            columns.append(f"signal{j}")
            blocks.append(s[:, j])
        if j < noise:
            columns.append(f"noise{j}")
            blocks.append(rng.integers(0, 3 + j, size=rows).astype(float))
    return np.column_stack(blocks), y, columns


def test_noise_columns_are_left_out_and_signal_kept() -> None:
    x, y, columns = _data(12_000, signal=9, noise=3)
    chosen = select_features(x, y, columns, score=AUC, budget_s=600)
    assert len(chosen.dropped) >= 2 and all(c.startswith("noise") for c in chosen.dropped)
    assert chosen.kept == [c for c in columns if c not in chosen.dropped]  # in the matrix's order
    assert {c for c in columns if c.startswith("signal")} <= set(chosen.kept)
    assert [columns[j] for j in chosen.kept_index] == chosen.kept
    assert all(chosen.importance[c] > feature_selection.DROP_BELOW for c in chosen.kept)
    assert not chosen.skipped and chosen.seconds > 0


def test_at_most_a_quarter_of_the_columns_go_the_weakest_first() -> None:
    x, y, columns = _data(12_000, signal=4, noise=8)
    chosen = select_features(x, y, columns, score=AUC, budget_s=600)
    assert len(chosen.dropped) == 3  # a quarter of 12
    assert all(c.startswith("noise") for c in chosen.dropped)
    assert {c for c in columns if c.startswith("signal")} <= set(chosen.kept)
    left = [chosen.importance[c] for c in chosen.kept if c.startswith("noise")]
    assert max(chosen.importance[c] for c in chosen.dropped) <= min(left)


@pytest.mark.parametrize(("rows", "budget", "why"), [(3_000, 600, "fewer than 10,000 training rows"),
                                                      (12_000, 5, "a budget under 12 s")])
def test_too_little_data_or_time_keeps_every_column_and_says_why(rows: int, budget: float, why: str) -> None:
    x, y, columns = _data(rows, signal=3, noise=3)
    chosen = select_features(x, y, columns, score=AUC, budget_s=budget)
    assert chosen.kept == columns and chosen.dropped == [] and chosen.importance == {}
    assert chosen.skipped == why
