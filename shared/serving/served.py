"""One loaded, compiled and warmed model version, ready for the hot path."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from shared import schema
from shared.features import FeatureEncoder
from shared.model import BankMarketingModel
from shared.ports import ModelLoader
from shared.serving import native_trees
from shared.serving.contract import EXAMPLE_RECORDS
from shared.serving.predictor import CompiledModel, compile_model

log = logging.getLogger("bankops.serving")
UNSEEN = "__never_seen_in_training__"


def verification_records(n: int = 64, seed: int = 7) -> list[dict[str, object]]:
    """The example records, each category once unseen, and random numeric variations."""
    records: list[dict[str, object]] = [dict(r) for r in EXAMPLE_RECORDS]
    records += [{**EXAMPLE_RECORDS[0], name: UNSEEN} for name in schema.CATEGORICAL_FEATURES]
    rng = random.Random(seed)
    while len(records) < n:
        base = dict(rng.choice(EXAMPLE_RECORDS))
        for name in schema.INTEGER_FEATURES:
            base[name] = int(base[name]) + rng.randint(-30, 30)
        for name in schema.FLOAT_FEATURES:
            base[name] = float(base[name]) * rng.uniform(0.8, 1.2)
        records.append(base)
    return records


class ColumnEncoder:
    """`FeatureEncoder.transform_records` column by column: one numpy conversion instead of one per cell.

    The records are validated (categories are strings, numbers are int or float), so a column is a
    plain list comprehension. `load_served` checks it against the encoder and falls back when not equal.
    """

    def __init__(self, encoder: FeatureEncoder) -> None:
        self.columns = [(name, encoder.vocab.get(name)) for name in encoder.columns]

    def __call__(self, records: Sequence[Mapping[str, object]]) -> np.ndarray:
        nan = float("nan")
        columns = []
        for name, table in self.columns:
            if table is None:
                columns.append([r[name] for r in records])
            else:
                columns.append([table.get(r[name], nan) for r in records])  # type: ignore[call-overload]
        return np.array(columns, dtype=np.float64).T.copy(order="C")


class RowEncoder:
    """The same matrix built row by row: one list per record and one numpy conversion, quicker than
    the column-wise transpose for a few records."""

    def __init__(self, encoder: FeatureEncoder) -> None:
        self.columns = [(name, encoder.vocab.get(name)) for name in encoder.columns]

    def __call__(self, records: Sequence[Mapping[str, object]]) -> np.ndarray:
        nan = float("nan")
        columns = self.columns
        rows = [[r[name] if table is None else table.get(r[name], nan) for name, table in columns]  # type: ignore[call-overload]
                for r in records]
        return np.array(rows, dtype=np.float64)


COLUMN_WISE_FROM = 3  # records; below that one list per record is quicker than the transpose


def _encoder_for(encoder: FeatureEncoder, sample: Sequence[Mapping[str, object]]) -> Callable[[Sequence[Mapping[str, object]]], np.ndarray]:
    by_column, by_row = ColumnEncoder(encoder), RowEncoder(encoder)
    reference = encoder.transform_records(sample)
    if not np.array_equal(by_column(sample), reference, equal_nan=True):
        return encoder.transform_records
    if not all(np.array_equal(by_row(sample[i:i + 1]), reference[i:i + 1], equal_nan=True) for i in range(len(sample))):
        by_row = encoder.transform_records  # type: ignore[assignment]

    def encode(records: Sequence[Mapping[str, object]]) -> np.ndarray:
        return by_column(records) if len(records) >= COLUMN_WISE_FROM else by_row(records)

    return encode


@dataclass(frozen=True)
class Scored:
    labels: list[str]
    probabilities: list[float]
    unseen: dict[str, int]


@dataclass(frozen=True)
class ServedModel:
    """A model version as the workers serve it: encode, blend, label, count unseen categories."""

    version: str
    encode: Callable[[Sequence[Mapping[str, object]]], np.ndarray]
    compiled: CompiledModel
    threshold: float
    categorical: tuple[tuple[int, str], ...]
    columns: tuple[str, ...] = schema.FEATURES  # the features the model uses: what a record must hold
    recompile: Callable[[], ServedModel] | None = None  # the same version compiled again (its machine code now cached)

    def upgraded(self) -> ServedModel | None:
        """This version with the members whose machine code was compiling now running it (None: nothing new).
        Cheap beside a load: the model stays in memory, only the calls are checked and warmed again."""
        if self.recompile is None or not self.compiled.serving_native_ready():
            return None
        return self.recompile()

    def score(self, records: Sequence[Mapping[str, object]]) -> Scored:
        x = self.encode(records)
        p = self.compiled.proba(x)
        labels = [schema.POSITIVE if v >= self.threshold else schema.NEGATIVE for v in p.tolist()]
        unseen: dict[str, int] = {}
        if self.categorical and np.isnan(x.sum()):  # numbers are finite: a NaN is an unseen category
            columns = [j for j, _ in self.categorical]
            missing = np.isnan(x[:, columns]).sum(axis=0)
            if missing.any():
                unseen = {name: int(n) for (_, name), n in zip(self.categorical, missing.tolist(), strict=True) if n}
        return Scored(labels, p.tolist(), unseen)


def load_served(registry: ModelLoader, version: str, warm_rounds: int = 20, *, native: bool = False) -> ServedModel:
    """Load a registered version, compile it for serving, and warm it on one and on 100 records.
    `native`: LightGBM and XGBoost members whose machine code is cached (compiled at registration) run it;
    the others are compiled in a detached low-priority child and `upgraded()` switches to them later."""
    return _served(registry.load(str(version)), str(version), warm_rounds, native)


def _served(model: BankMarketingModel, version: str, warm_rounds: int, native: bool) -> ServedModel:
    sample = verification_records()
    compiled = compile_model(model, sample, serving_native=native)
    if compiled.serving_pending:
        try:
            native_trees.start_compiling(compiled.serving_pending, low_priority=True)
        except Exception:  # a cache folder that cannot be written: the libraries serve
            log.warning("cannot compile native trees for serving", exc_info=True)
    categorical = tuple((j, name) for j, name in enumerate(model.encoder.columns) if name in model.encoder.vocab)
    recompile = (lambda: _served(model, version, warm_rounds, native)) if compiled.serving_pending else None
    served = ServedModel(version, _encoder_for(model.encoder, sample), compiled, float(model.threshold), categorical,
                         tuple(model.encoder.columns), recompile)
    batch = (sample * 2)[:100]
    for _ in range(warm_rounds):
        served.score(sample[:1])
        served.score(batch)
    return served
