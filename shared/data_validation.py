"""Check a bank marketing CSV against the schema before anything is registered.

Every problem of the rows is collected (not just the first), each naming the column and what to
do, so a user fixes the file in one go. A file that is not a bank marketing CSV at all (too big,
binary, a line of megabytes, a header of a million columns, the wrong header) is refused at the
first such finding, before its rows are parsed. Every check is linear in the file's size and
bounded by `ReadLimits`; a message never copies the input (values are escaped and clipped).
Success returns the typed frame and warnings.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from shared import schema
from shared.errors import InvalidDataset
from shared.untrusted_text import clip, escape, shown

_SHOWN = 5
_INT64_MAX = 2**63 - 1
_INT64_END = 2.0**63  # the first float past int64


@dataclass(frozen=True)
class ValidatedData:
    """A frame that passed validation, typed per the schema, plus what the user should know."""

    frame: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def positive_share(self) -> float:
        return float((self.frame[schema.TARGET] == schema.POSITIVE).mean())


def _lines(mask: pd.Series) -> str:
    """The first few 1-based file line numbers (the header is line 1) where `mask` holds."""
    lines = [str(i + 2) for i in mask[mask].index[:_SHOWN]]
    more = int(mask.sum()) - len(lines)
    return ", ".join(lines) + (f" and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class ReadLimits:
    """How much of a file bankops reads before judging it: the time and memory one file may cost.

    Every check below is linear in the file's size, so these caps bound both. A line longer than
    `max_line_bytes` (a bank marketing row is about 200 bytes) or a header wider than `max_columns`
    is refused before any parsing; so is a file over `max_bytes`, unread.
    """

    max_bytes: int = 64 * 1024 * 1024
    max_line_bytes: int = 64 * 1024  # under the csv module's field-size limit (128 KiB), so the header always parses
    max_columns: int = 256
    max_value_chars: int = 1024  # one cell (a quoted value may span lines); the longest category is 13 characters


DEFAULT_LIMITS = ReadLimits()


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n:,} bytes"


def size_problem(size: int, limits: ReadLimits = DEFAULT_LIMITS) -> str | None:
    """Why a file of `size` bytes is not read at all, or None."""
    if size <= limits.max_bytes:
        return None
    return (f"the file is {_size(size)}, over the {_size(limits.max_bytes)} bankops reads in one go "
            "(BANKOPS_MAX_DATA_MB): split it into smaller files and drop them one after the other")


def _check_lines(raw: bytes, limits: ReadLimits) -> int:
    """Refuse a line over the cap, found in one linear pass (numpy over the bytes, no copy per line); the longest line."""
    ends = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == 0x0A)
    starts = np.concatenate(([0], ends + 1))
    lengths = np.concatenate((ends, [len(raw)])) - starts
    long = np.flatnonzero(lengths > limits.max_line_bytes)
    if long.size:
        line = int(long[0]) + 1
        what = "the header line" if line == 1 else f"line {line}"
        raise InvalidDataset(
            f"{what} is {int(lengths[long[0]]):,} bytes long, over the {limits.max_line_bytes:,} bankops accepts "
            f"(a bank marketing row is about 200 bytes; {long.size} line(s) are too long): this is not a bank "
            "marketing CSV, or a value in it is far too long"
        )
    return int(lengths.max())


def _header(raw: bytes, limits: ReadLimits) -> list[str]:
    first = raw.split(b"\n", 1)[0].rstrip(b"\r")  # bounded by the line check above
    try:
        names = next(csv.reader(io.StringIO(first.decode("utf-8-sig"))), [])
    except (csv.Error, UnicodeDecodeError) as exc:
        raise InvalidDataset(f"the header line cannot be read ({clip(str(exc), 200)}): save the file as UTF-8 CSV") from exc
    if len(names) > limits.max_columns:
        raise InvalidDataset(
            f"the header has {len(names):,} columns, over the {limits.max_columns} bankops reads; "
            f"the schema has {len(schema.COLUMNS)}: {', '.join(schema.COLUMNS)}"
        )
    return [name.strip() for name in names]


def _read_text_frame(source: Path | bytes, limits: ReadLimits = DEFAULT_LIMITS) -> pd.DataFrame:
    if isinstance(source, Path):
        problem = size_problem(source.stat().st_size, limits)
        if problem:
            raise InvalidDataset(problem)
        raw = source.read_bytes()
    else:
        raw = source
    if problem := size_problem(len(raw), limits):
        raise InvalidDataset(problem)
    if not raw.strip():
        raise InvalidDataset(
            "the file is empty: expected a CSV with a header line and one row per client",
        )
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise InvalidDataset(f"the file holds binary data (a NUL byte at byte {nul}): save it as UTF-8 CSV text")
    longest = _check_lines(raw, limits)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidDataset(f"the file is not UTF-8 text ({exc.reason} at byte {exc.start}): save it as UTF-8 CSV") from exc
    header = _header(raw, limits)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        raise InvalidDataset(f"the file is not a readable comma-separated file: {clip(escape(str(exc)), 300)}") from exc
    # pandas renames a repeated header ("age" -> "age.1"); keep the names as written so it is reported.
    frame.columns = header if len(header) == len(frame.columns) else [str(c).strip() for c in frame.columns]
    if longest > limits.max_value_chars or b'"' in raw:  # else no value can be longer than its line
        _check_values(frame, limits)
    return frame


def _check_values(frame: pd.DataFrame, limits: ReadLimits) -> None:
    """Refuse a cell over the cap (a quoted value spanning many short lines passes the line check)."""
    for position, name in enumerate(frame.columns):
        lengths = frame.iloc[:, position].str.len()
        if len(lengths) and int(lengths.max()) > limits.max_value_chars:
            line = int(lengths.to_numpy().argmax()) + 2
            raise InvalidDataset(
                f"column {shown(str(name))} holds a value of {int(lengths.max()):,} characters on line {line}, over the "
                f"{limits.max_value_chars:,} bankops accepts: this is not a bank marketing value"
            )


def _names(names: Sequence[str]) -> str:
    """Column names from a file, as a bounded list: the first few, escaped and clipped."""
    shown_names = ", ".join(clip(escape(n), 40) for n in names[:_SHOWN])
    return shown_names + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def column_problems(columns: Sequence[str], required: Sequence[str], *, allow_unexpected: bool = False) -> list[str]:
    """What is wrong with a header: missing, unexpected (unless allowed) and repeated columns (linear in its width)."""
    names = list(columns)
    present, counts, known = set(names), Counter(names), set(schema.COLUMNS)
    problems = []
    missing = [c for c in required if c not in present]
    unexpected = [] if allow_unexpected else [c for c in dict.fromkeys(names) if c not in known]
    duplicated = sorted(c for c, n in counts.items() if n > 1)
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)} — add them; the schema is: {', '.join(required)}")
    if unexpected:
        problems.append(f"unexpected column(s): {_names(unexpected)} — remove or rename them")
    if duplicated:
        problems.append(f"duplicated column(s): {_names(duplicated)}")
    return problems


def _sample(values: pd.Series) -> str:
    """A few offending values, each escaped and clipped: a 200 MB cell shows as its first characters."""
    return ", ".join(shown(str(v)) for v in values.unique()[:_SHOWN])


def _typed_column(values: pd.Series, name: str, problems: list[str]) -> pd.Series:
    kind = schema.kind_of(name)
    stripped = values.str.strip()
    empty = stripped == ""
    if empty.any():
        problems.append(f"column '{name}': {int(empty.sum())} empty value(s) on line(s) {_lines(empty)} — fill them in")
    if kind == "categorical":
        return stripped
    numbers = pd.to_numeric(stripped.where(~empty), errors="coerce")
    bad = (numbers.isna() | numbers.isin([np.inf, -np.inf])) & ~empty  # 'inf' parses, but is no usable number
    if bad.any():
        problems.append(
            f"column '{name}' must be {'an integer' if kind == 'integer' else 'a number'}: "
            f"{int(bad.sum())} value(s) are not (e.g. {_sample(stripped[bad])}) on line(s) {_lines(bad)}"
        )
        return numbers
    if kind == "integer":
        fractional = numbers.notna() & (numbers % 1 != 0)
        if fractional.any():
            problems.append(f"column '{name}' must hold whole numbers: line(s) {_lines(fractional)} have fractions")
            return numbers
        # beyond int64 pandas keeps floats (1e19) or uint64 (2**63): stored as int64 they would wrap around
        big = (numbers >= _INT64_END) | (numbers < -_INT64_END) if numbers.dtype.kind == "f" else numbers > _INT64_MAX
        if big.any():
            problems.append(
                f"column '{name}' must hold integers from {-_INT64_MAX - 1:,} to {_INT64_MAX:,}: {int(big.sum())} value(s) "
                f"are out of that range (e.g. {_sample(stripped[big])}) on line(s) {_lines(big)}"
            )
            return numbers
        return numbers.astype("Int64") if numbers.isna().any() else numbers.astype("int64")
    return numbers.astype("float64")


def _check_target(target: pd.Series, min_rows_per_class: int) -> list[str]:
    problems = []
    normalized = target.str.strip().str.lower()
    bad = ~normalized.isin(schema.CLASSES)
    if bad.any():
        problems.append(
            f"column '{schema.TARGET}' must be 'yes' or 'no': {int(bad.sum())} value(s) are not "
            f"(e.g. {_sample(target[bad])}) on line(s) {_lines(bad)}"
        )
        return problems
    counts = normalized.value_counts()
    present = [c for c in schema.CLASSES if counts.get(c, 0) > 0]
    if min_rows_per_class == 0:  # an increment to append to a dataset: one class alone is fine
        return problems
    if len(present) < 2:
        problems.append(
            f"column '{schema.TARGET}' holds a single class ({present[0] if present else 'none'}): "
            "a classifier needs both 'yes' and 'no' examples"
        )
    else:
        for cls in schema.CLASSES:
            if counts.get(cls, 0) < min_rows_per_class:
                problems.append(
                    f"column '{schema.TARGET}' has only {counts.get(cls, 0)} '{cls}' row(s); "
                    f"at least {min_rows_per_class} are needed for a holdout and cross-validation"
                )
    return problems


def validate_frame(
    text_frame: pd.DataFrame,
    *,
    min_rows: int = 100,
    min_rows_per_class: int = 10,
    require_target: bool = True,
) -> ValidatedData:
    """Validate a frame of strings (as read from CSV) and return it typed, or raise with every problem."""
    required = schema.COLUMNS if require_target else schema.FEATURES
    problems = column_problems(list(text_frame.columns), required)
    if problems:
        raise InvalidDataset("the file does not match the bank marketing schema", details=problems)
    problems += _row_count_problems(len(text_frame), min_rows)
    typed = {name: _typed_column(text_frame[name].astype(str), name, problems) for name in schema.FEATURES}
    if require_target:
        problems += _check_target(text_frame[schema.TARGET].astype(str), min_rows_per_class)
        typed[schema.TARGET] = text_frame[schema.TARGET].str.strip().str.lower()
    if problems:
        raise InvalidDataset("the file does not match the bank marketing schema", details=problems)
    return ValidatedData(frame=pd.DataFrame(typed), warnings=_WARNINGS)


_WARNINGS = [
    f"'{name}' is only known after the call ends: a model trained with it cannot be used to choose "
    f"whom to call; train with --exclude-columns {name} for a pre-call model"
    for name in schema.LEAKY_FEATURES
]


def _row_count_problems(rows: int, min_rows: int) -> list[str]:
    if rows == 0:
        raise InvalidDataset("the file has a header but no rows: add client rows below the header")
    if rows < min_rows:
        return [f"too few rows: {rows}, at least {min_rows} are needed to train and hold out a test set"]
    return []


def check_rows(typed: pd.DataFrame, *, min_rows: int = 100, min_rows_per_class: int = 10) -> ValidatedData:
    """The row-count rules of `validate_frame` for a frame already typed (validated parts merged): no re-parse."""
    problems = _row_count_problems(len(typed), min_rows) + _check_target(typed[schema.TARGET], min_rows_per_class)
    if problems:
        raise InvalidDataset("the data does not match the bank marketing schema", details=problems)
    return ValidatedData(frame=typed, warnings=_WARNINGS)


def validate_csv(
    source: Path | bytes, *, min_rows: int = 100, min_rows_per_class: int = 10, limits: ReadLimits = DEFAULT_LIMITS
) -> ValidatedData:
    """Read and validate a training CSV (features plus target `y`)."""
    return validate_frame(
        _read_text_frame(source, limits), min_rows=min_rows, min_rows_per_class=min_rows_per_class
    )
