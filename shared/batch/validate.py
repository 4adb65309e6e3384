"""Check each row of a chunk against the schema, so one bad row is rejected and the rest scored.

The rules are the training validation's (shared/data_validation.py), applied per row: every
feature filled in, numbers finite, integers whole; the kinds come from shared/schema.py.
Unknown categories are valid: the model scores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shared import schema

NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


@dataclass
class CheckedRows:
    """What a chunk's rows hold: which to score, why the others are rejected, the parsed values."""

    rows: int
    numbers: dict[str, np.ndarray] = field(default_factory=dict)  # float64, NaN where invalid
    categories: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)  # stripped values, row codes
    blank: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # rows with every feature empty
    problems: dict[int, list[str]] = field(default_factory=dict)  # row -> what is wrong

    @property
    def ok(self) -> np.ndarray:
        good = ~self.blank.copy()
        if self.problems:
            good[list(self.problems)] = False
        return good

    def reason(self, row: int) -> str:
        return "; ".join(self.problems[row])


def _numbers(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(values, empty) of a text column: NaN where a value is not a number."""
    try:  # the common case: every value parses as it is
        values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        return values, np.zeros(len(values), dtype=bool)
    except pa.ArrowInvalid:
        pass
    trimmed = pc.utf8_trim_whitespace(column)
    empty = pc.equal(trimmed, "").to_numpy(zero_copy_only=False)
    parsable = pc.match_substring_regex(trimmed, NUMBER)
    values = pc.cast(pc.if_else(parsable, trimmed, pa.scalar(None, pa.string())), pa.float64())
    return values.to_numpy(zero_copy_only=False).astype(np.float64), empty


def _add(problems: dict[int, list[str]], rows: np.ndarray, message: str, column: pa.Array | None = None) -> None:
    for row in rows.tolist():
        text = message.format(value=column[row].as_py()) if column is not None else message
        problems.setdefault(row, []).append(text)


def check_rows(table: pa.Table, columns: Sequence[str] = schema.FEATURES) -> CheckedRows:
    """Validate and parse the features a model uses (`columns`) of every row of a chunk; the
    other columns are not looked at."""
    n = table.num_rows
    checked = CheckedRows(rows=n)
    empties = np.ones(n, dtype=bool)
    pending: list[tuple[np.ndarray, str, pa.Array | None]] = []
    for name in columns:
        column = table.column(name).combine_chunks()
        kind = schema.kind_of(name)
        if kind == "categorical":
            if not isinstance(column, pa.DictionaryArray):
                column = pc.dictionary_encode(column)
            values = [str(v).strip() for v in column.dictionary.to_pylist()]
            codes = column.indices.to_numpy(zero_copy_only=False).astype(np.int64)
            empty_values = np.array([v == "" for v in values] + [False])
            empty = empty_values[codes] if n else np.zeros(0, dtype=bool)
            checked.categories[name] = (values, codes)
        else:
            numbers, empty = _numbers(column)
            invalid = ~np.isfinite(numbers) & ~empty
            what = "an integer" if kind == "integer" else "a number"
            pending.append((np.flatnonzero(invalid), f"column '{name}' must be {what}, not {{value!r}}", column))
            if kind == "integer":
                fraction = np.isfinite(numbers) & (numbers != np.floor(numbers))
                pending.append((np.flatnonzero(fraction), f"column '{name}' must hold a whole number, not {{value!r}}", column))
            checked.numbers[name] = numbers
        empties &= empty
        pending.append((np.flatnonzero(empty), f"column '{name}' is empty: fill it in", None))
    checked.blank = empties
    for rows, message, column in pending:
        rows = rows[~empties[rows]]
        if rows.size:
            _add(checked.problems, rows, message, column)
    return checked
