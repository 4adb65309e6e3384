"""Drop the input columns the data shows to be noise, before the search.

Boosted trees still split on a column that carries no signal, and those splits cost accuracy on
new rows. On the bank data `housing`, `loan` and `marital` are such columns: shuffling them does
not lower the out-of-fold AUC of a small LightGBM, and leaving them out raised the holdout AUC of
the portfolio's LightGBM on each of six 80/20 splits (by 0.0003-0.0006; see bench/README.md).

The measure is out-of-fold permutation importance of a fixed, cheap LightGBM (the probe): how much
the primary metric falls when one column is shuffled in each validation fold. A column is dropped
when that fall is under DROP_BELOW. The probe's own choice, not the search's, so the step costs a
bounded few seconds; it is skipped when it would not fit in its share of the budget or the data is
too small for a difference of DROP_BELOW to mean anything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from shared.training.evaluate import Scorer

# The probe: 5 folds of 26k rows fit and shuffled in about 2.5 s on 2 cores. With 200 trees at 0.05
# (5 s) it dropped the same columns on five of six bench splits.
PROBE: dict[str, Any] = {"n_estimators": 100, "learning_rate": 0.1, "num_leaves": 15, "min_child_samples": 50, "subsample": 0.8,
         "subsample_freq": 1, "colsample_bytree": 0.5}
DROP_BELOW = 1e-4  # fall in the metric when shuffled; on AUC, noise columns measured -1.2e-4 to 1.3e-4
REPEATS = 2  # shuffles per column and fold
MIN_ROWS = 10_000  # on fewer rows the importance's own noise is larger than DROP_BELOW
MAX_ROWS = 40_000  # the probe sees a stratified sample of at most this many rows
MAX_DROP_SHARE = 0.25  # never drop more than this share of the columns (the least important first)
MAX_BUDGET_SHARE = 0.1  # of the AutoML budget
SECONDS_PER_ROW = 1e-4  # measured on 2 cores (26k rows: 2.4-2.8 s)


@dataclass(frozen=True)
class FeatureSelection:
    columns: list[str]  # all of them, in the matrix's order
    dropped: list[str] = field(default_factory=list)
    importance: dict[str, float] = field(default_factory=dict)  # fall in the metric when shuffled
    skipped: str = ""  # why no column was judged, if none was
    seconds: float = 0.0

    @classmethod
    def keep_all(cls, columns: list[str], why: str) -> FeatureSelection:
        """No column judged, for the reason `why`."""
        return cls(columns=list(columns), skipped=why)

    @property
    def kept(self) -> list[str]:
        return [c for c in self.columns if c not in self.dropped]

    @property
    def kept_index(self) -> list[int]:
        """The kept columns' positions in the matrix."""
        return [j for j, c in enumerate(self.columns) if c not in self.dropped]


def select_features(x: np.ndarray, y: np.ndarray, columns: list[str], *, score: Scorer, budget_s: float, folds: int = 5,
                    seed: int = 42) -> FeatureSelection:
    """The columns worth training on, in their original order; `budget_s` is the whole AutoML's."""
    from lightgbm import LGBMClassifier

    if len(columns) < 2:
        return FeatureSelection.keep_all(columns, "a single column")
    if len(y) < MIN_ROWS:
        return FeatureSelection.keep_all(columns, f"fewer than {MIN_ROWS:,} training rows")
    rows = min(len(y), MAX_ROWS)
    if rows * SECONDS_PER_ROW > MAX_BUDGET_SHARE * budget_s:
        return FeatureSelection.keep_all(columns, f"a budget under {rows * SECONDS_PER_ROW / MAX_BUDGET_SHARE:.0f} s")
    started = time.monotonic()
    if len(y) > MAX_ROWS:
        x, _, y, _ = train_test_split(x, y, train_size=MAX_ROWS, stratify=y, random_state=seed)
    rng = np.random.default_rng(seed)
    oof = np.zeros(len(y))
    shuffled = np.zeros((REPEATS, len(columns), len(y)))
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        probe = LGBMClassifier(**PROBE, random_state=seed, verbose=-1).fit(x[train_idx], y[train_idx])
        valid: np.ndarray = x[test_idx]
        oof[test_idx] = np.asarray(probe.predict_proba(valid))[:, 1]
        # every shuffled copy of the fold in one call: one call per copy cost 3x as much
        moved = np.repeat(valid[None], REPEATS * len(columns), axis=0)
        for k in range(len(moved)):
            j = k % len(columns)
            moved[k, :, j] = valid[rng.permutation(len(test_idx)), j]
        p = np.asarray(probe.predict_proba(moved.reshape(-1, len(columns))))[:, 1].reshape(REPEATS, len(columns), len(test_idx))
        shuffled[:, :, test_idx] = p
    base = score(y, oof)
    fall = {name: float(np.mean([base - score(y, shuffled[r, j]) for r in range(REPEATS)])) for j, name in enumerate(columns)}
    weakest = sorted((name for name in columns if fall[name] < DROP_BELOW), key=fall.__getitem__)
    dropped = set(weakest[: int(MAX_DROP_SHARE * len(columns))])
    return FeatureSelection(columns=list(columns), dropped=[c for c in columns if c in dropped], importance=fall,
                            seconds=time.monotonic() - started)
