"""The pictures people look at instead of tables: ROC, precision-recall, confusion matrix,
calibration, and feature importance on the raw input features."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def roc_curve(y: np.ndarray, p: np.ndarray, path: Path) -> Path:
    fpr, tpr, _ = skm.roc_curve(y, p)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"model (AUC = {skm.roc_auc_score(y, p):.4f})")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve (holdout)")
    ax.legend(loc="lower right")
    return _save(fig, path)


def precision_recall_curve(y: np.ndarray, p: np.ndarray, path: Path) -> Path:
    precision, recall, _ = skm.precision_recall_curve(y, p)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(recall, precision, label=f"model (AP = {skm.average_precision_score(y, p):.4f})")
    ax.axhline(y.mean(), ls="--", color="grey", label=f"base rate {y.mean():.3f}")
    ax.set(xlabel="Recall (yes)", ylabel="Precision (yes)", title="Precision-recall curve (holdout)")
    ax.legend(loc="upper right")
    return _save(fig, path)


def confusion_matrix(y: np.ndarray, p: np.ndarray, path: Path, threshold: float = 0.5) -> Path:
    cm = skm.confusion_matrix(y, (p >= threshold).astype(int), labels=[0, 1])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, f"{v}\n({v / cm[i].sum():.1%})", ha="center", va="center", color="black" if v < cm.max() / 2 else "white")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["no", "yes"], yticklabels=["no", "yes"],
           xlabel="Predicted", ylabel="Actual", title="Confusion matrix (holdout)")
    return _save(fig, path)


def calibration(y: np.ndarray, p: np.ndarray, path: Path) -> Path:
    frac, mean = calibration_curve(y, p, n_bins=10, strategy="quantile")
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(mean, frac, "o-", label="model")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    ax.set(xlabel="Mean predicted P(yes)", ylabel="Observed share of yes", title="Calibration (holdout)")
    ax.legend(loc="upper left")
    return _save(fig, path)


def permutation_importance(
    frame: pd.DataFrame,
    y: np.ndarray,
    predict: Callable[[pd.DataFrame], np.ndarray],
    columns: list[str],
    *,
    seed: int = 0,
    repeats: int = 2,
    max_rows: int = 2_000,
) -> pd.Series:
    """Drop in holdout AUC when one raw input column is shuffled: importance in the user's terms.

    It predicts the holdout 1 + repeats x columns times, so on at most `max_rows` rows (a seeded
    sample): a blend of 30 fold boosters took 30 s on the full 3,300 rows with 3 repeats, past the
    training budget. Checked on one 3-member blend: 3.0 s instead of 6.5 s, the same top 3 features
    and 7 of the same top 8.
    """
    rng = np.random.default_rng(seed)
    if len(frame) > max_rows:
        keep = np.sort(rng.choice(len(frame), size=max_rows, replace=False))
        frame, y = frame.iloc[keep].reset_index(drop=True), np.asarray(y)[keep]
    base = skm.roc_auc_score(y, predict(frame))
    drops = {}
    for name in columns:
        shuffled = frame.copy()
        losses = []
        for _ in range(repeats):
            shuffled[name] = rng.permutation(frame[name].to_numpy())
            losses.append(base - skm.roc_auc_score(y, predict(shuffled)))
        drops[name] = float(np.mean(losses))
    return pd.Series(drops).sort_values(ascending=False)


def feature_importance(importance: pd.Series, path: Path, top: int = 20) -> Path:
    shown = importance.head(top)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(shown) + 1.2))
    ax.barh(shown.index, shown.to_numpy())
    ax.set(xlabel="Drop in holdout AUC when shuffled", title=f"Top {len(shown)} features (permutation importance)")
    return _save(fig, path)
