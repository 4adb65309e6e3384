"""The environment of a `python -m shared...` child process: this one's, with this tree importable.

A child started with `sys.executable -m shared.x` must run the same code as its parent, also when
the parent runs from a checkout on PYTHONPATH rather than the installed package.
"""

from __future__ import annotations

import os
from pathlib import Path


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ) | extra
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env
