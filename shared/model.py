"""The trained model: featurization plus a weighted blend of fitted estimators.

It is what gets pickled inside the MLflow model, and what the scoring service loads; it knows
nothing about MLflow. Estimators are plain scikit-learn-compatible objects working on the
encoder's matrix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from shared import schema
from shared.features import FeatureEncoder


class ProbabilisticClassifier(Protocol):
    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Member:
    """One estimator of the blend and its weight."""

    learner: str
    weight: float
    estimator: Any
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class BankMarketingModel:
    """Raw features in, P(yes) and "yes"/"no" out."""

    encoder: FeatureEncoder
    members: list[Member]
    threshold: float = 0.5

    @property
    def learners(self) -> list[str]:
        return [m.learner for m in self.members]

    def describe(self) -> str:
        return " + ".join(f"{m.weight:.2f}×{m.learner}" for m in self.members)

    def proba_from_matrix(self, x: np.ndarray) -> np.ndarray:
        total = sum(m.weight for m in self.members)
        p = np.zeros(len(x), dtype=np.float64)
        for m in self.members:
            p += m.weight * m.estimator.predict_proba(x)[:, 1]
        return p / total

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """P("yes") for each row of a frame of raw features."""
        return self.proba_from_matrix(self.encoder.transform(frame))

    def predict_proba_records(self, records: Sequence[Mapping[str, object]]) -> np.ndarray:
        """P("yes") for JSON-like records, without pandas."""
        return self.proba_from_matrix(self.encoder.transform_records(records))

    def label(self, p_yes: np.ndarray) -> np.ndarray:
        return np.where(p_yes >= self.threshold, schema.POSITIVE, schema.NEGATIVE)

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`prediction` ("yes"/"no") and `probability_yes` for each row, in order."""
        p = self.predict_proba(frame)
        return pd.DataFrame({"prediction": self.label(p), "probability_yes": p}, index=frame.index)


def input_columns(model: object) -> tuple[str, ...]:
    """The features a loaded model reads: its encoder's columns; all of them for a model without
    one (an Azure AutoML model, which featurizes the 20 fields itself)."""
    encoder = getattr(model, "encoder", None)
    return tuple(encoder.columns) if isinstance(encoder, FeatureEncoder) else schema.FEATURES
