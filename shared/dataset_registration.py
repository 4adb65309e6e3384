"""Register a CSV as a dataset version: validate, hash, keep a fixed holdout, store.

Idempotent by content: the same bytes registered twice return the first version.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shared import schema
from shared.data_validation import ValidatedData, check_rows, validate_csv
from shared.ports import DatasetStore, DatasetVersion


@dataclass(frozen=True)
class Registration:
    dataset: DatasetVersion
    created: bool
    warnings: list[str]


def content_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def holdout_indices(target: pd.Series, fraction: float, seed: int) -> np.ndarray:
    """A stratified holdout with a fixed seed: every model of a version is judged on these rows.

    The same share of each class, drawn with NumPy's seeded generator (not scikit-learn's splitter: the
    function app registers datasets on Azure and its package carries neither scikit-learn nor SciPy)."""
    labels = target.to_numpy()
    rng = np.random.default_rng(seed)
    held = []
    for label in sorted(set(labels.tolist()), key=str):
        rows = np.flatnonzero(labels == label)
        take = round(fraction * len(rows))
        if fraction > 0 and len(rows) > 1:
            take = min(max(take, 1), len(rows) - 1)  # each class on both sides of the split
        held.append(rng.permutation(rows)[:take])
    return np.sort(np.concatenate(held)) if held else np.array([], dtype=np.int64)


def register_dataset(
    store: DatasetStore,
    source: Path | bytes,
    *,
    name: str,
    holdout_fraction: float = 0.1,
    seed: int = 42,
    min_rows: int = 100,
    min_rows_per_class: int = 10,
    source_name: str = "",
    typed: pd.DataFrame | None = None,
) -> Registration:
    """Validate `source` and register it as the next version of `name` (or return the same content's version).

    `typed` is `source` already parsed and typed by `validate_csv` (a data arrival parses its file once):
    only the row-count rules are checked again.
    """
    content = source.read_bytes() if isinstance(source, Path) else source
    digest = content_hash(content)
    validated: ValidatedData = (
        validate_csv(content, min_rows=min_rows, min_rows_per_class=min_rows_per_class) if typed is None
        else check_rows(typed, min_rows=min_rows, min_rows_per_class=min_rows_per_class)
    )
    existing = store.find(name, digest)
    if existing is not None:
        return Registration(existing, created=False, warnings=validated.warnings)
    dataset = store.add(
        name, content, content_hash=digest, rows=validated.rows, positive_share=validated.positive_share,
        holdout=holdout_indices(validated.frame[schema.TARGET], holdout_fraction, seed),
        source=source_name or (str(source) if isinstance(source, Path) else ""),
    )
    _last.put(digest, validated.frame)
    return Registration(dataset, created=True, warnings=validated.warnings)


class _LastFrame:
    """The typed frame of the newest version this process registered or read, by content hash.

    A data arrival, the training run it requests and the gate that judges the model all need the
    same version: it is parsed once, and each caller gets its own copy. Versions are content-addressed,
    so a hash names one frame for good. One frame, and only up to `MAX_ROWS` rows, to bound memory.
    """

    MAX_ROWS = 250_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._digest, self._frame = "", pd.DataFrame()

    def get(self, digest: str) -> pd.DataFrame | None:
        with self._lock:
            return self._frame.copy() if digest and digest == self._digest else None

    def put(self, digest: str, frame: pd.DataFrame) -> None:
        if len(frame) <= self.MAX_ROWS:
            with self._lock:
                self._digest, self._frame = digest, frame.copy()


_last = _LastFrame()


def load_frame(store: DatasetStore, dataset: DatasetVersion) -> pd.DataFrame:
    """The typed frame of a registered version (validated again when read: the file is the truth)."""
    cached = _last.get(dataset.content_hash)
    if cached is not None:
        return cached
    frame = validate_csv(store.read(dataset), min_rows=1, min_rows_per_class=1).frame
    _last.put(dataset.content_hash, frame)
    return frame
