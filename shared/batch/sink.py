"""CSV out: each input line passed through as it is, the scores appended; files appear whole or not at all."""

from __future__ import annotations

import contextlib
import csv
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def csv_line(values: Sequence[object]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()


def scored_lines(text: pa.Array, labels: pa.Array, p: np.ndarray, version: str) -> pa.Array:
    """`<input line>,<label>,<probability>,<version>\\n` for each row."""
    return pc.binary_join_element_wise(text, labels, pc.cast(pa.array(p, pa.float64()), pa.string()), f"{version}\n", ",")


def write_lines(sink: BinaryIO, lines: pa.Array) -> None:
    """Write the values of a string array (each ending in a line break) back to back, without a copy."""
    if len(lines) == 0:
        return
    lines = lines.cast(pa.string())
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    sink.write(memoryview(lines.buffers()[2])[offsets[0]:offsets[-1]])


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[BinaryIO]:
    """A file written under a temporary name in the same folder and renamed over `path` on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
