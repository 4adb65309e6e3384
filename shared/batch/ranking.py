"""The K rows most likely to say yes, over any number of chunks, in bounded memory."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


class TopK:
    """Keeps at most about 2K candidate output lines; ties go to the earlier input line."""

    def __init__(self, k: int) -> None:
        self.k = k
        self._rows: list[pa.Array] = []
        self._scores = np.zeros(0)
        self._lines = np.zeros(0, dtype=np.int64)

    def add(self, rows: pa.Array, scores: np.ndarray, lines: np.ndarray) -> None:
        best = np.lexsort((lines, -scores))[: self.k]
        self._rows.append(rows.take(pa.array(best)))
        self._scores = np.concatenate([self._scores, scores[best]])
        self._lines = np.concatenate([self._lines, lines[best]])
        if len(self._scores) >= 2 * self.k:
            self._compact()

    def _compact(self) -> None:
        if not self._rows:
            return
        rows = pa.concat_arrays(self._rows)
        best = np.lexsort((self._lines, -self._scores))[: self.k]
        self._rows = [rows.take(pa.array(best))]
        self._scores, self._lines = self._scores[best], self._lines[best]

    def result(self) -> pa.Array | None:
        """The kept rows, most likely first; None when no row was added."""
        self._compact()
        return self._rows[0] if self._rows else None
