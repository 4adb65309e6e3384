"""The one Automation of this function app process, built on first use (not at import: cold starts)."""

from __future__ import annotations

from shared.automation.handlers import Automation

_current: list[Automation] = []


def automation() -> Automation:
    if not _current:
        from shared.bootstrap import build_automation

        _current.append(build_automation())
    return _current[0]


def use(auto: Automation) -> None:
    """Run the triggers against a given Automation (tests; a host that built one already)."""
    _current[:] = [auto]
