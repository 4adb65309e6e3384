"""The one Automation of this function app process, built on first use (not at import: cold starts)."""

from __future__ import annotations

from functools import lru_cache

from shared.automation.handlers import Automation


@lru_cache(maxsize=1)
def automation() -> Automation:
    from shared.bootstrap import build_automation

    return build_automation()
