"""The one Automation of this function app process, built on first use (not at import: cold starts)."""

from __future__ import annotations

from shared.automation.handlers import Automation

_current: list[Automation] = []


def automation() -> Automation:
    if not _current:
        from shared.bootstrap import build_automation
        from shared.monitoring.telemetry import configure_telemetry

        built = build_automation()
        configure_telemetry(built.settings.applicationinsights_connection_string, "bankops-functions")  # once, at start-up
        _current.append(built)
    return _current[0]


def use(auto: Automation) -> None:
    """Run the triggers against a given Automation (tests; a host that built one already)."""
    _current[:] = [auto]
