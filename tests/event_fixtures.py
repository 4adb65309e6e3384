"""The documented Event Grid payloads in tests/fixtures/events/, without their `_source` notes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "events"


def load(name: str) -> list[dict[str, Any]]:
    """The body Event Grid POSTs (a JSON array) for fixture `name` (file name without .json)."""
    document = json.loads((FIXTURES / f"{name}.json").read_text())
    assert "_source" in document, f"fixture {name} must name its source"
    body: list[dict[str, Any]] = document["body"]
    return body


def names() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.json"))
