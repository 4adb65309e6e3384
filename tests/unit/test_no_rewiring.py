"""Parts are handed in where objects are built, never swapped in afterwards: no module of shared/ assigns a
port, the event hook or a method of an object other than itself (what monitoring and the local host did:
`auto.deployer = ...`, `auto.on_event = ...`, `stats.add = ...`, `slot.loader = ...`, `app.build_middleware_stack = ...`)."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from shared.automation.handlers import Automation

SHARED = Path(__file__).resolve().parents[2] / "shared"
WIRED = {f.name for f in dataclasses.fields(Automation)} - {"settings", "ranges"} | {
    "add", "loader", "build_middleware_stack", "middleware_stack", "on_add", "key_name"}


def _rewirings(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            for sub in ast.walk(target):
                owner = sub.value if isinstance(sub, ast.Attribute) else None
                if isinstance(sub, ast.Attribute) and sub.attr in WIRED and not (isinstance(owner, ast.Name) and owner.id == "self"):
                    found.append((node.lineno, ast.unparse(sub)))
    return found


def test_the_check_finds_a_swapped_port_and_a_replaced_method() -> None:
    assert _rewirings("auto.deployer = HostDeployer(auto.deployer)\napp.build_middleware_stack = outer\n") == [
        (1, "auto.deployer"), (2, "app.build_middleware_stack")]
    assert _rewirings("self.deployer = deployer\nrecord.state = 'done'\n") == []


def test_no_module_of_shared_swaps_a_part_into_a_built_object() -> None:
    found = [f"{path.relative_to(SHARED.parent)}:{line}: {target}"
             for path in sorted(SHARED.rglob("*.py")) for line, target in _rewirings(path.read_text())]
    assert found == [], "hand the part in where the object is built instead:\n" + "\n".join(found)
