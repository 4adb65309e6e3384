"""Software versions for a benchmark's results file: the numbers mean little without them."""

from __future__ import annotations

import platform
from collections.abc import Iterable
from importlib import metadata


def package_version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions(packages: Iterable[str]) -> dict[str, str]:
    """Python's version and each package's, "not installed" for the missing ones."""
    return {"python": platform.python_version(), **{name: package_version(name) for name in packages}}
