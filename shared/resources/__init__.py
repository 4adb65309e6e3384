"""Files that ship inside the package: the UCI bank marketing training data and the endpoint's example records."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def shipped_data() -> Path:
    """The UCI bank marketing training CSV that ships with the package (CC BY 4.0, see its README)."""
    return Path(str(resources.files(__name__) / "bankmarketing_train.csv"))
