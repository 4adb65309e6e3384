"""Command-line tools the infra tests run from their own venv (checkov pins packages the project's venv must not get)."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS_VENV = ROOT / ".cache" / "tools-venv"
CHECKOV = "checkov>=3.2,<4"


def checkov() -> Path:
    """.cache/tools-venv/bin/checkov, installed from the package registry on first use (about a minute; pip's cache after)."""
    exe = TOOLS_VENV / "bin" / "checkov"
    if not exe.exists():
        if not (TOOLS_VENV / "bin" / "python").exists():
            venv.EnvBuilder(with_pip=True, clear=True).create(TOOLS_VENV)
        subprocess.run([str(TOOLS_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", CHECKOV],
                       check=True, stdout=sys.stderr)
    return exe
