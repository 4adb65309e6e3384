"""Check a bank marketing CSV against the schema before anything is registered.

Every problem is collected (not just the first), each naming the column and what to do, so a
user fixes the file in one go. Success returns the typed frame and warnings.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from shared import schema
from shared.errors import InvalidDataset

_SHOWN = 5


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


def _read_text_frame(source: Path | bytes) -> pd.DataFrame:
    raw = source.read_bytes() if isinstance(source, Path) else source
    if not raw.strip():
        raise InvalidDataset(
            "the file is empty: expected a CSV with a header line and one row per client",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidDataset(f"the file is not UTF-8 text ({exc.reason} at byte {exc.start}): save it as UTF-8 CSV") from exc
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        raise InvalidDataset(f"the file is not a readable comma-separated file: {exc}") from exc
    # pandas renames a repeated header ("age" -> "age.1"); keep the names as written so it is reported.
    header = [name.strip() for name in next(csv.reader(io.StringIO(text)), [])]
    frame.columns = header if len(header) == len(frame.columns) else [str(c).strip() for c in frame.columns]
    return frame


def column_problems(columns: Sequence[str], required: Sequence[str], *, allow_unexpected: bool = False) -> list[str]:
    """What is wrong with a header: missing, unexpected (unless allowed) and repeated columns."""
    names = list(columns)
    problems = []
    missing = [c for c in required if c not in names]
    unexpected = [] if allow_unexpected else [c for c in names if c not in schema.COLUMNS]
    duplicated = sorted({c for c in names if names.count(c) > 1})
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)} — add them; the schema is: {', '.join(required)}")
    if unexpected:
        problems.append(f"unexpected column(s): {', '.join(unexpected)} — remove or rename them")
    if duplicated:
        problems.append(f"duplicated column(s): {', '.join(duplicated)}")
    return problems


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
        sample = ", ".join(repr(v) for v in stripped[bad].unique()[:_SHOWN])
        problems.append(
            f"column '{name}' must be {'an integer' if kind == 'integer' else 'a number'}: "
            f"{int(bad.sum())} value(s) are not (e.g. {sample}) on line(s) {_lines(bad)}"
        )
        return numbers
    if kind == "integer":
        fractional = numbers.notna() & (numbers % 1 != 0)
        if fractional.any():
            problems.append(f"column '{name}' must hold whole numbers: line(s) {_lines(fractional)} have fractions")
            return numbers
        return numbers.astype("Int64") if numbers.isna().any() else numbers.astype("int64")
    return numbers.astype("float64")


def _check_target(target: pd.Series, min_rows_per_class: int) -> list[str]:
    problems = []
    normalized = target.str.strip().str.lower()
    bad = ~normalized.isin(schema.CLASSES)
    if bad.any():
        sample = ", ".join(repr(v) for v in target[bad].unique()[:_SHOWN])
        problems.append(
            f"column '{schema.TARGET}' must be 'yes' or 'no': {int(bad.sum())} value(s) are not "
            f"(e.g. {sample}) on line(s) {_lines(bad)}"
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
    if len(text_frame) == 0:
        raise InvalidDataset("the file has a header but no rows: add client rows below the header")
    if len(text_frame) < min_rows:
        problems.append(f"too few rows: {len(text_frame)}, at least {min_rows} are needed to train and hold out a test set")
    typed = {name: _typed_column(text_frame[name].astype(str), name, problems) for name in schema.FEATURES}
    if require_target:
        problems += _check_target(text_frame[schema.TARGET].astype(str), min_rows_per_class)
        typed[schema.TARGET] = text_frame[schema.TARGET].str.strip().str.lower()
    if problems:
        raise InvalidDataset("the file does not match the bank marketing schema", details=problems)
    warnings = [
        f"'{name}' is only known after the call ends: a model trained with it cannot be used to choose "
        f"whom to call; train with --exclude-columns {name} for a pre-call model"
        for name in schema.LEAKY_FEATURES
    ]
    return ValidatedData(frame=pd.DataFrame(typed), warnings=warnings)


def validate_csv(source: Path | bytes, *, min_rows: int = 100, min_rows_per_class: int = 10) -> ValidatedData:
    """Read and validate a training CSV (features plus target `y`)."""
    return validate_frame(
        _read_text_frame(source), min_rows=min_rows, min_rows_per_class=min_rows_per_class
    )
