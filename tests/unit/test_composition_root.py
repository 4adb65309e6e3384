"""The composition root builds a real adapter for every port the handlers use: no port of the Automation is
optional ("None: the handler does it itself"), and the local backend's are objects with the port's methods."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

from shared.automation.handlers import Automation
from shared.bootstrap import build_automation
from shared.config import load_settings


def _is_port(hint: object) -> bool:
    return isinstance(hint, type) and getattr(hint, "_is_protocol", False) and hint.__module__ == "shared.ports"


def test_every_port_of_the_automation_is_required_and_the_local_backend_builds_each(tmp_path: Path) -> None:
    hints = typing.get_type_hints(Automation)
    ports = {f.name: hints[f.name] for f in dataclasses.fields(Automation) if _is_port(hints[f.name])}
    assert set(ports) == {"datasets", "registry", "tracker", "datastore", "deployer", "queue", "trainer", "batch_runner",
                          "run_lookup"}, "a port field is optional (`X | None`) or missing"
    for f in dataclasses.fields(Automation):
        if f.name in ports:
            assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, f"{f.name} has a default"
    auto = build_automation(load_settings(home=tmp_path / "home"))
    for name, port in ports.items():
        adapter = getattr(auto, name)
        methods = [m for m in vars(port) if not m.startswith("_") and callable(vars(port)[m])]
        missing = [m for m in methods if not callable(getattr(adapter, m, None))]
        assert methods and not missing, f"the local {name} ({type(adapter).__name__}) lacks {missing}"
