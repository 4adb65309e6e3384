"""The batch step: a plain function of (model, input stream, output stream), and its file form.

Rows are read, checked, scored and written chunk by chunk, in input order; rejected rows go to
the rejects stream with their line and reason. A file with the wrong columns raises before a
byte is written, and `score_file` writes under temporary names, renamed only at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa

from shared.batch.files import OUTPUT_COLUMNS
from shared.batch.ranking import TopK
from shared.batch.scorer import BatchModel
from shared.batch.sink import atomic_output, csv_line, scored_lines, write_lines
from shared.batch.source import CHUNK_BYTES, Chunk, CsvChunks
from shared.batch.validate import CheckedRows, check_rows
from shared.errors import InvalidInput
from shared.model import input_columns

Progress = Callable[[int, int], None]  # (input bytes read, rows read)


@dataclass(frozen=True)
class BatchOptions:
    top: int | None = None  # only the K rows most likely to say yes, most likely first
    threshold: float | None = None  # only rows with probability_yes >= this
    chunk_bytes: int = CHUNK_BYTES

    def __post_init__(self) -> None:
        if self.top is not None and self.top < 1:
            raise InvalidInput(f"top must be at least 1, not {self.top}")
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise InvalidInput(f"threshold must be a probability between 0 and 1, not {self.threshold}")


@dataclass(frozen=True)
class BatchSummary:
    rows_read: int
    rows_scored: int
    rows_rejected: int
    rows_written: int
    model_version: str
    input_sha256: str
    input_bytes: int
    duration_s: float

    @property
    def rows_per_s(self) -> float:
        return self.rows_read / self.duration_s if self.duration_s > 0 else 0.0

    def as_fields(self) -> dict[str, Any]:
        """The fields only: `BatchSummary(**summary.as_fields())` rebuilds it."""
        return asdict(self)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"rows_per_s": round(self.rows_per_s, 1)}


@dataclass
class _Prepared:
    """A chunk read, checked and encoded, ready for the model."""

    chunk: Chunk
    checked: CheckedRows
    rows: np.ndarray  # the rows to score
    x: np.ndarray


def _prepare(model: BatchModel, chunk: Chunk) -> _Prepared:
    checked = check_rows(chunk.table, input_columns(model.model))
    rows = np.flatnonzero(checked.ok)
    return _Prepared(chunk, checked, rows, model.matrix(checked, rows))


class _Output:
    """Writes scored chunks in order: rejects, the cut-off, the ranking or the output stream; counts rows."""

    def __init__(self, model: BatchModel, sink: BinaryIO, rejects: BinaryIO | None, columns: list[str],
                 options: BatchOptions, progress: Progress | None) -> None:
        self.model, self.sink, self.rejects, self.options, self.progress = model, sink, rejects, options, progress
        self.rejects_header = csv_line(["line", "reason", *columns]).encode()
        self.ranking = TopK(options.top) if options.top else None
        self.read = self.scored = self.rejected = self.written = 0

    def _reject(self, items: list[tuple[int, str]]) -> None:
        """Write (line, CSV row) pairs in line order."""
        if self.rejects is not None and items:
            if self.rejected == 0:
                self.rejects.write(self.rejects_header)
            self.rejects.write("".join(row for _, row in sorted(items)).encode())
        self.rejected += len(items)

    def emit(self, item: _Prepared, p: np.ndarray, bytes_read: int) -> None:
        chunk, checked, rows = item.chunk, item.checked, item.rows
        self.read += int((~checked.blank).sum()) + len(chunk.bad_lines)
        bad = sorted(checked.problems)
        # a well-formed row passes through as it is; a malformed line is written field by field, quoted
        self._reject([(b.line, csv_line([b.line, b.reason, *b.fields])) for b in chunk.bad_lines]
                     + [(int(chunk.lines[r]), f"{csv_line([chunk.lines[r], checked.reason(r)])[:-1]},{chunk.text[r].as_py()}\n")
                        for r in bad])
        self.scored += rows.size
        if rows.size:
            text = chunk.text if rows.size == len(chunk.text) else chunk.text.take(pa.array(rows))
            lines = chunk.lines[rows]
            if self.options.threshold is not None:
                keep = p >= self.options.threshold
                text, p, lines = text.filter(pa.array(keep)), p[keep], lines[keep]
            out = scored_lines(text, self.model.labels(p), p, self.model.version)
            if self.ranking is not None:
                self.ranking.add(out, p, lines)
            else:
                write_lines(self.sink, out)
                self.written += len(out)
        if self.progress is not None:
            self.progress(bytes_read, self.read)

    def finish(self) -> None:
        if self.ranking is not None and (best := self.ranking.result()) is not None:
            write_lines(self.sink, best)
            self.written = len(best)


def score_stream(model: BatchModel, source: BinaryIO, sink: BinaryIO, rejects: BinaryIO | None = None,
                 options: BatchOptions | None = None, progress: Progress | None = None) -> BatchSummary:
    """Score every row of a CSV stream into `sink`: each input line, then prediction, probability_yes, model_version.

    Reading and checking the next chunk, and writing the previous one, overlap with the model's
    prediction (pyarrow and the boosters release the GIL).
    """
    options = options or BatchOptions()
    started = time.monotonic()
    chunks = CsvChunks(source, options.chunk_bytes, input_columns(model.model))  # raises on a wrong header, before any output
    sink.write(csv_line([*chunks.columns, *OUTPUT_COLUMNS]).encode())
    output = _Output(model, sink, rejects, chunks.columns, options, progress)
    prepared = (_prepare(model, chunk) for chunk in chunks)
    with ThreadPoolExecutor(1, "batch-read") as reader, ThreadPoolExecutor(1, "batch-write") as writer:
        reading = reader.submit(next, prepared, None)
        writing: Future[None] | None = None
        while (item := reading.result()) is not None:
            reading = reader.submit(next, prepared, None)
            p = model.proba(item.x)
            if writing is not None:
                writing.result()
            writing = writer.submit(output.emit, item, p, chunks.bytes_read)
        if writing is not None:
            writing.result()
    output.finish()
    return BatchSummary(rows_read=output.read, rows_scored=output.scored, rows_rejected=output.rejected,
                        rows_written=output.written, model_version=model.version, input_sha256=chunks.sha256.hexdigest(),
                        input_bytes=chunks.bytes_read, duration_s=time.monotonic() - started)


def rejects_path(output: Path) -> Path:
    """OUTPUT.csv -> OUTPUT.rejects.csv"""
    return output.with_name(f"{output.stem}.rejects{output.suffix or '.csv'}")


def score_file(model: BatchModel, input_path: Path, output_path: Path, options: BatchOptions | None = None,
               progress: Progress | None = None) -> BatchSummary:
    """`score_stream` between files: both outputs appear whole at the end (rejects only if any), or not at all."""
    rejects = rejects_path(output_path)
    with open(input_path, "rb") as source, atomic_output(output_path) as sink, atomic_output(rejects) as bad:
        summary = score_stream(model, source, sink, bad, options, progress)
    if summary.rows_rejected == 0:
        rejects.unlink(missing_ok=True)
    return summary
