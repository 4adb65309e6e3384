"""What the function app needs of a batch file without the scoring engine (pyarrow): its header check, its output names.

The Azure backend checks a dropped file's header before submitting the Azure ML batch job; scoring itself
(shared/batch/source.py, job.py) runs locally or on Azure ML, never in the function app.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import PurePosixPath

from shared import schema
from shared.data_validation import column_problems
from shared.errors import InvalidDataset

PREDICTIONS = "predictions"
KIND_TAG = "bankops.kind"  # a batch run's tracking tag is bankops.kind=batch
OUTPUT_COLUMNS = ("prediction", "probability_yes", "model_version")


def output_names(name: str) -> tuple[str, str]:
    """clients.csv -> (clients.predictions.csv, clients.predictions.rejects.csv)"""
    stem = PurePosixPath(name).stem
    return f"{stem}.predictions.csv", f"{stem}.predictions.rejects.csv"


def parse_header(first: bytes) -> list[str]:
    if not first.strip():
        raise InvalidDataset("the file is empty: expected a CSV with a header line and one row per client")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidDataset(f"the header is not UTF-8 text ({exc.reason}): save the file as UTF-8 CSV") from exc
    return [name.strip() for name in next(csv.reader([text]))]


HEADER_BYTES = 64 << 10  # a header line is a few hundred bytes; this is plenty


def check_header_bytes(head: bytes, required: Sequence[str] = schema.FEATURES) -> None:
    """Check a file's header from its first bytes (what a remote batch job would fail on later)
    against the features a model uses. Raises InvalidDataset naming every problem."""
    first = head.split(b"\n", 1)[0]
    if len(first) == len(head) == HEADER_BYTES:
        raise InvalidDataset(f"the first {HEADER_BYTES} bytes hold no line break: expected a CSV with a header line")
    check_header(parse_header(first), required)


def check_header(columns: list[str], required: Sequence[str] = schema.FEATURES) -> None:
    """Raise, naming every problem, unless the header has each feature the model uses (`required`)
    once and no output column (other columns, the features it does not use among them, pass through)."""
    problems = column_problems(columns, tuple(required), allow_unexpected=True)
    taken = [c for c in OUTPUT_COLUMNS if c in columns]
    if taken:
        problems.append(f"column(s) {', '.join(taken)} are written by the scoring: rename them in the input")
    if problems:
        raise InvalidDataset("the file does not match the bank marketing schema", details=problems)
