"""Read a client CSV in chunks of whole lines: the header checked once, every data row numbered.

Chunks are parsed by pyarrow as text (categorical features dictionary-encoded). A chunk with a
line of the wrong number of fields, or bytes that are not UTF-8, is re-read line by line so
each bad line is reported with its number and the good ones still go through.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from shared import schema
from shared.batch.files import check_header
from shared.batch.files import parse_header as _header
from shared.errors import InvalidDataset

CHUNK_BYTES = 8 << 20


@dataclass(frozen=True)
class BadLine:
    """A line that is not a row of the header's shape: its number, why, and its fields as read."""

    line: int
    reason: str
    fields: list[str]


@dataclass
class Chunk:
    table: pa.Table  # the 20 features as text (categorical ones dictionary-encoded)
    lines: np.ndarray  # int64: the file line of each row (the header is line 1)
    text: pa.Array  # string: each row's line as it is in the file, passed through to the output
    bad_lines: list[BadLine] = field(default_factory=list)


class CsvChunks:
    """The rows of a CSV stream, chunk by chunk; also the input's SHA-256 and bytes read so far."""

    def __init__(self, source: BinaryIO, chunk_bytes: int = CHUNK_BYTES, required: Sequence[str] = schema.FEATURES) -> None:
        """`required`: the features the model uses (the columns parsed; the others pass through as text)."""
        self.source, self.chunk_bytes = source, chunk_bytes
        self.required = [c for c in schema.FEATURES if c in set(required)]
        self.sha256 = hashlib.sha256()
        first = source.readline()
        self.sha256.update(first)
        self.bytes_read = len(first)
        self.columns = _header(first)
        check_header(self.columns, self.required)
        self._types = {name: pa.dictionary(pa.int32(), pa.string()) if name in schema.CATEGORICAL_FEATURES else pa.string()
                       for name in self.required}

    def __iter__(self) -> Iterator[Chunk]:
        next_line, carry = 2, b""
        while True:
            block = self.source.read(self.chunk_bytes)
            self.sha256.update(block)
            self.bytes_read += len(block)
            data = carry + block
            if block:
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    carry = data
                    continue
                piece, carry = data[:cut], data[cut:]
            else:
                piece, carry = data, b""
            if piece.strip():
                yield self._parse(piece, next_line)
            next_line += piece.count(b"\n")
            if not block:
                return

    def _arrow(self, piece: bytes, invalid: list[object]) -> pa.Table:
        def skip(row: object) -> str:
            invalid.append(row)
            return "skip"

        table = pcsv.read_csv(
            pa.py_buffer(piece),
            read_options=pcsv.ReadOptions(column_names=self.columns, block_size=4 << 20),
            parse_options=pcsv.ParseOptions(invalid_row_handler=skip, ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(column_types=self._types, include_columns=self.required,
                                                strings_can_be_null=False),
        )
        return table.unify_dictionaries().combine_chunks()

    def _parse(self, piece: bytes, first_line: int) -> Chunk:
        invalid: list[object] = []
        lines = piece.count(b"\n") + (0 if piece.endswith(b"\n") else 1)
        try:
            table = self._arrow(piece, invalid)
            if not invalid and table.num_rows == lines:
                return Chunk(table, np.arange(first_line, first_line + lines, dtype=np.int64), _texts(piece.split(b"\n")[:lines]))
        except pa.ArrowInvalid:  # bytes that are not UTF-8
            pass
        return self._parse_line_by_line(piece, first_line)

    def _parse_line_by_line(self, piece: bytes, first_line: int) -> Chunk:
        good, numbers, bad = [], [], []
        width = len(self.columns)
        raw_lines = piece.split(b"\n")
        if piece.endswith(b"\n"):
            raw_lines.pop()
        for offset, raw in enumerate(raw_lines):
            line = first_line + offset
            try:
                text = raw.decode("utf-8").rstrip("\r")
            except UnicodeDecodeError as exc:
                bad.append(BadLine(line, f"not UTF-8 text ({exc.reason} at byte {exc.start}): save the file as UTF-8",
                                   [raw.decode("utf-8", "replace").rstrip("\r")]))
                continue
            fields = next(csv.reader([text]), [])
            if text.strip() and len(fields) != width:
                bad.append(BadLine(line, f"the line has {len(fields)} field(s); the header has {width}", fields))
                continue
            good.append(raw)
            numbers.append(line)
        table = self._arrow(b"\n".join(good) + b"\n", []) if good else self._empty()
        if table.num_rows != len(numbers):  # a quoted line break: the rows cannot be told apart
            raise InvalidDataset(f"lines {first_line}-{first_line + len(raw_lines) - 1} could not be split into rows: "
                                 "values must not contain line breaks")
        return Chunk(table, np.array(numbers, dtype=np.int64), _texts(good), bad)

    def _empty(self) -> pa.Table:
        return pa.schema([pa.field(n, t) for n, t in self._types.items()]).empty_table()



def _texts(raw_lines: list[bytes]) -> pa.Array:
    """The lines as a string array, without their line ends."""
    text = pa.array(raw_lines, pa.binary()).cast(pa.string())
    return pc.utf8_rtrim(text, "\r")
