"""A registered model ready for batch scoring: the checked columns encoded, then the compiled blend.

Encoding works on each chunk's dictionary of category values (a few dozen strings), not on
every row; prediction goes through the serving predictor (each member's direct library call,
all cores for large batches), which equals the model's own `proba_from_matrix`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from shared import schema
from shared.batch.validate import CheckedRows
from shared.model import BankMarketingModel
from shared.ports import ModelRegistry
from shared.serving.predictor import CompiledModel, compile_model
from shared.serving.served import verification_records

_LABELS = pa.array([schema.NEGATIVE, schema.POSITIVE])


def _nested(estimator: Any) -> list[Any]:
    """An estimator and everything it wraps (pipeline steps, voting or fold members, frozen models)."""
    inner = [step for _, step in getattr(estimator, "steps", None) or []]
    inner += list(getattr(estimator, "estimators_", None) or [])
    if hasattr(estimator, "estimator") and not isinstance(estimator.estimator, str):
        inner.append(estimator.estimator)
    return [estimator, *(part for child in inner if child is not None for part in _nested(child))]


def _all_cores(model: BankMarketingModel) -> None:
    """Give XGBoost boosters every core again: `compile_model` pins estimators to one thread (n_jobs=1),
    which XGBoost passes on to the booster that its large-batch call uses."""
    for member in model.members:
        for part in _nested(member.estimator):
            if type(part).__name__ == "XGBClassifier" and hasattr(part, "get_booster"):
                part.get_booster().set_param({"nthread": os.cpu_count() or 1})


@dataclass(frozen=True)
class BatchModel:
    version: str
    model: BankMarketingModel
    compiled: CompiledModel

    @classmethod
    def build(cls, model: BankMarketingModel, version: str) -> BatchModel:
        compiled = compile_model(model, verification_records())
        _all_cores(model)
        return cls(str(version), model, compiled)

    @classmethod
    def load(cls, registry: ModelRegistry, version: str) -> BatchModel:
        return cls.build(registry.load(str(version)), str(version))

    def matrix(self, checked: CheckedRows, rows: np.ndarray) -> np.ndarray:
        """The encoder's matrix for the given rows of a checked chunk."""
        encoder = self.model.encoder
        out = np.empty((len(rows), len(encoder.columns)), dtype=np.float64)
        for j, name in enumerate(encoder.columns):
            table = encoder.vocab.get(name)
            if table is None:
                out[:, j] = checked.numbers[name][rows]
            else:
                values, codes = checked.categories[name]
                lookup = np.array([table.get(v, np.nan) for v in values] + [np.nan], dtype=np.float64)
                out[:, j] = lookup[codes[rows]]
        return out

    def proba(self, x: np.ndarray) -> np.ndarray:
        return self.compiled.proba(x) if len(x) else np.zeros(0)

    def labels(self, p: np.ndarray) -> pa.Array:
        """"yes"/"no" per probability, at the model's threshold."""
        return _LABELS.take(pa.array((p >= self.model.threshold).astype(np.int8)))
