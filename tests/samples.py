"""Samples of the shipped UCI bank marketing data, as the text a user's CSV file would hold."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from shared import schema
from shared.resources import shipped_data

FIXTURES = Path(__file__).parent / "fixtures"


@cache
def _shipped_text_frame() -> pd.DataFrame:
    return pd.read_csv(shipped_data(), dtype=str, keep_default_na=False)


def shipped_frame() -> pd.DataFrame:
    """The shipped data as strings, exactly as in the file (a copy: callers may change it)."""
    return _shipped_text_frame().copy()


def stratified_sample(rows: int, seed: int = 0) -> pd.DataFrame:
    """`rows` rows of the shipped data with its share of "yes", in file order, as strings."""
    frame = _shipped_text_frame()
    picked, _ = train_test_split(frame.index.to_numpy(), train_size=rows, random_state=seed, stratify=frame[schema.TARGET])
    return frame.loc[sorted(picked)].reset_index(drop=True)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def endpoint_records() -> list[dict[str, Any]]:
    """Two records in the scoring payload shape: a client who said yes, then one who said no."""
    return json.loads((FIXTURES / "endpoint_records.json").read_text(encoding="utf-8"))["data"]
