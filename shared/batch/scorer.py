"""A registered model ready for batch scoring: the checked columns encoded, then the compiled blend.

Encoding works on each chunk's dictionary of category values (a few dozen strings), not on
every row; prediction goes through the serving predictor in its exact mode (each member's direct library
call, all cores for large batches), which equals the model's own `proba_from_matrix`, with the
LightGBM and XGBoost members compiled to native code for large chunks when lleaves is installed
(`shared/serving/native_trees.py`: LightGBM to 1e-15, XGBoost to the contract's 1e-6).
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class BatchModel:
    version: str
    model: BankMarketingModel
    compiled: CompiledModel

    @classmethod
    def build(cls, model: BankMarketingModel, version: str, *, native: bool = True) -> BatchModel:
        """`native` (Settings.native_trees): large chunks run the trees compiled to native code, when lleaves is installed."""
        compiled = compile_model(model, verification_records(), exact=True, native=native)
        return cls(str(version), model, compiled)

    @classmethod
    def load(cls, registry: ModelRegistry, version: str, *, native: bool = True) -> BatchModel:
        return cls.build(registry.load(str(version)), str(version), native=native)

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


def prepare(registry: ModelRegistry, version: str, *, native: bool = True) -> dict[str, Any]:
    """Compile a version's boosters to native code now (cached by hash), so its first large batch does not
    (nothing when `native` is off)."""
    model = BatchModel.load(registry, str(version), native=native)
    return {"model_version": model.version, "native_members": model.compiled.prepare_native()}
