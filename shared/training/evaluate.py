"""Holdout metrics, named as Azure ML AutoML names them, so users compare like with like."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata
from sklearn import metrics as skm

from shared import schema

Scorer = Callable[[np.ndarray, np.ndarray], float]


def _score_at(threshold: float, fn: Callable[..., float], **kw: object) -> Scorer:
    return lambda y, p: float(fn(y, (p >= threshold).astype(int), **kw))


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Binary ROC AUC (= AUC_weighted) as the Mann-Whitney statistic on average ranks: equal to
    scikit-learn's `roc_auc_score`, ties included, and 4x faster on 26k rows, which matters to the
    ensemble selection that scores a few thousand candidate blends."""
    y = np.asarray(y)
    positives = int(y.sum())
    negatives = len(y) - positives
    if not positives or not negatives:
        raise ValueError("AUC needs both classes in y")
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


SCORERS: dict[str, Scorer] = {
    "AUC_weighted": auc,
    "average_precision_score_weighted": lambda y, p: float(
        skm.average_precision_score(np.column_stack([1 - y, y]), np.column_stack([1 - p, p]), average="weighted")
    ),
    "accuracy": _score_at(0.5, skm.accuracy_score),
    "f1_score_weighted": _score_at(0.5, skm.f1_score, average="weighted"),
    "log_loss": lambda y, p: -float(skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
}


def scorer(metric: str) -> Scorer:
    """A greater-is-better scorer for a primary metric (log loss is negated)."""
    return SCORERS[metric]


def holdout_metrics(y: np.ndarray, p_yes: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Every metric of the holdout report; per-class entries are suffixed `_yes` and `_no`."""
    pred = (p_yes >= threshold).astype(int)
    out = {
        "AUC_weighted": float(skm.roc_auc_score(y, p_yes)),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "average_precision": float(skm.average_precision_score(y, p_yes)),
        "average_precision_score_weighted": SCORERS["average_precision_score_weighted"](y, p_yes),
        "log_loss": float(skm.log_loss(y, np.clip(p_yes, 1e-15, 1 - 1e-15), labels=[0, 1])),
    }
    for avg in ("weighted", "macro"):
        p, r, f, _ = skm.precision_recall_fscore_support(y, pred, average=avg, zero_division=0)
        out |= {f"precision_{avg}": float(p), f"recall_{avg}": float(r), f"f1_score_{avg}": float(f)}
    p, r, f, _ = skm.precision_recall_fscore_support(y, pred, labels=[0, 1], zero_division=0)
    for i, cls in enumerate(schema.CLASSES):
        out |= {f"precision_{cls}": float(p[i]), f"recall_{cls}": float(r[i]), f"f1_score_{cls}": float(f[i])}
    (tn, fp), (fn, tp) = skm.confusion_matrix(y, pred, labels=[0, 1])
    out |= {"true_negatives": int(tn), "false_positives": int(fp), "false_negatives": int(fn), "true_positives": int(tp)}
    return out


PREDICTED_YES_KEYS = ("predicted_yes_share", "predicted_yes_share_low", "predicted_yes_share_high", "predicted_yes_rows")


def predicted_yes_range(p_yes: np.ndarray, threshold: float = 0.5, *, seed: int = 0, draws: int = 2000,
                        level: float = 0.99) -> dict[str, float]:
    """The share of "yes" predictions on the holdout and the `level` bootstrap interval of that share.

    Recorded on the registered version so the drift alert can tell whether the live prediction mix
    is outside what the holdout showed (the interval is the holdout's own sampling noise).
    """
    yes = (np.asarray(p_yes) >= threshold).astype(np.float64)
    n = len(yes)
    if n == 0:
        return {}
    rng = np.random.default_rng(seed)
    shares = rng.binomial(n, float(yes.mean()), size=draws) / n  # resampling n rows with replacement: binomial counts
    tail = (1 - level) / 2
    return {"predicted_yes_share": float(yes.mean()), "predicted_yes_share_low": float(np.quantile(shares, tail)),
            "predicted_yes_share_high": float(np.quantile(shares, 1 - tail)), "predicted_yes_rows": float(n)}
