"""The fold-bagged member of a blend: the k models fit during cross-validation, averaged.

Kept apart from the training code so that loading a saved model imports only this, numpy and the
learners' own libraries.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class FoldAverage:
    """The k fold models of one candidate, as one classifier: the mean of their predict_proba.

    A plain container (no validation per call) because the scoring service calls it for single
    records, where scikit-learn's VotingClassifier costs about 1.5 ms per model of overhead.
    """

    def __init__(self, models: list[Any]) -> None:
        self.models = list(models)
        self.classes_ = np.asarray(models[0].classes_)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        total = self.models[0].predict_proba(x)
        for model in self.models[1:]:
            total = total + model.predict_proba(x)
        return total / len(self.models)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(x), axis=1)]

    def __repr__(self) -> str:
        return f"FoldAverage({len(self.models)} x {type(self.models[0]).__name__})"
