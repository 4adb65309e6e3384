"""No import circle among `shared/` modules: a circle makes the import order matter and hides which side owns a name.

Walks every module's imports, those inside functions too (a lazy import keeps a heavy dependency out of
start-up, but two modules that need each other are still one idea split in two; only `if TYPE_CHECKING:`
blocks, which never run, are left out) and fails on any strongly connected group of modules, naming it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "shared"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The `shared` modules this module imports, at its top or inside its functions and classes."""
    found: set[str] = set()

    def resolve(name: str) -> str | None:
        while name and name not in known:  # `from shared.x import y`: y may be a name, not a module
            name = name.rpartition(".")[0]
        return name or None

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == PACKAGE and (target := resolve(alias.name)):
                        found.add(target)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module if is_package else module.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        base = base.rpartition(".")[0]
                    source = f"{base}.{node.module}" if node.module else base
                else:
                    source = node.module or ""
                if source.split(".")[0] != PACKAGE:
                    continue
                for alias in node.names:
                    if target := resolve(f"{source}.{alias.name}"):
                        found.add(target)
            elif isinstance(node, ast.If) and _is_type_checking(node):
                visit(node.orelse)
            else:
                visit([child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt)])
                for handler in getattr(node, "handlers", ()):
                    visit(handler.body)

    visit(tree.body)
    found.discard(module)
    # importing a.b.c runs a/__init__ and a/b/__init__ first, which is not a dependency of a.b.c on its parents
    return {m for m in found if not module.startswith(m + ".")}


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in (ROOT / PACKAGE).rglob("*.py")}
    known = set(files)
    return {name: _imports(ast.parse(path.read_text(encoding="utf-8")), name, path.name == "__init__.py", known)
            for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return groups


def test_the_walker_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_walker_sees_the_package() -> None:
    graph = import_graph()
    assert "shared.bootstrap" in graph and "shared.config" in graph["shared.bootstrap"]


def test_no_import_circle_among_shared_modules() -> None:
    found = cycles(import_graph())
    assert not found, "import circles among shared/ modules: " + "; ".join(" <-> ".join(g) for g in found)
