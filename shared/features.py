"""Featurization inside the model: raw records in, a float matrix out.

Numbers pass through; each category becomes a code ordered by its share of "yes" in training,
so trees and linear models both see a meaningful order. A category never seen in training
becomes NaN (missing), which every learner here handles, and is counted so it can be reported.
The vocabulary is plain dicts, prepared once, so the scoring hot path needs no pandas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shared import schema
from shared.errors import InvalidInput


def check_exclusions(exclude: Sequence[str]) -> None:
    """Refuse to leave out a column that is not a feature (a typo would silently keep it in)."""
    unknown = [c for c in exclude if c not in schema.FEATURES]
    if unknown:
        raise InvalidInput(f"cannot exclude unknown column(s) {', '.join(unknown)}; the features are: {', '.join(schema.FEATURES)}")
    if len(set(exclude)) >= len(schema.FEATURES):
        raise InvalidInput("cannot exclude every feature: leave at least one column to train on")


@dataclass(frozen=True)
class FeatureEncoder:
    """Maps the raw feature columns to the numeric matrix the estimators were trained on."""

    columns: tuple[str, ...]
    vocab: Mapping[str, Mapping[str, float]]

    @classmethod
    def fit(cls, frame: pd.DataFrame, y: np.ndarray, exclude: Sequence[str] = ()) -> FeatureEncoder:
        check_exclusions(exclude)
        columns = tuple(c for c in schema.FEATURES if c not in set(exclude))
        target = pd.Series(np.asarray(y, dtype=float), index=frame.index)
        vocab: dict[str, dict[str, float]] = {}
        for name in columns:
            if schema.kind_of(name) != "categorical":
                continue
            rates = target.groupby(frame[name].astype(str)).mean().sort_values(kind="stable")
            vocab[name] = {str(cat): float(code) for code, cat in enumerate(rates.index)}
        return cls(columns=columns, vocab=vocab)

    def without(self, names: Sequence[str]) -> FeatureEncoder:
        """The same encoder without `names` (columns the training left out): its matrix is the
        full matrix less those columns, in the same order."""
        gone = set(names)
        return FeatureEncoder(columns=tuple(c for c in self.columns if c not in gone),
                              vocab={k: v for k, v in self.vocab.items() if k not in gone})

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The matrix for a frame of raw features (extra columns are ignored)."""
        out = np.empty((len(frame), len(self.columns)), dtype=np.float64)
        for j, name in enumerate(self.columns):
            if name in self.vocab:
                out[:, j] = frame[name].astype(str).map(self.vocab[name]).to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                out[:, j] = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        return out

    def transform_records(self, records: Sequence[Mapping[str, object]]) -> np.ndarray:
        """The matrix for JSON-like records, without building a DataFrame."""
        out = np.empty((len(records), len(self.columns)), dtype=np.float64)
        for i, record in enumerate(records):
            for j, name in enumerate(self.columns):
                value = record[name]
                table = self.vocab.get(name)
                out[i, j] = table.get(str(value), np.nan) if table is not None else float(value)  # type: ignore[arg-type]
        return out

    def unseen_categories(self, frame: pd.DataFrame) -> dict[str, int]:
        """How many values per categorical column were never seen in training."""
        counts = {}
        for name, table in self.vocab.items():
            unseen = int((~frame[name].astype(str).isin(table.keys())).sum())
            if unseen:
                counts[name] = unseen
        return counts
