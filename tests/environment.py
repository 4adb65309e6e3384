"""The BANKOPS_* switches the test session sets for itself, which a child's environment keeps.

The tests start `bankops` subprocesses with the developer's BANKOPS_* variables dropped; the switches set
by tests/conftest.py (compiling trees at registration: off) must still reach them, or every `bankops up`
that trains would start detached compilers that outlive the test.
"""

from __future__ import annotations

import os

NATIVE_AT_REGISTRATION = "BANKOPS_NATIVE_AT_REGISTRATION"


def session_switches() -> dict[str, str]:
    """The switches as this test has them (a test that switches one on passes it on too)."""
    return {key: os.environ[key] for key in (NATIVE_AT_REGISTRATION,) if key in os.environ}
