"""The rooms of tether (its subpackages and top-level modules) import each other without a
circle, read from the source: only imports that run (not those under TYPE_CHECKING)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "tether"


def _room(module: str) -> str:
    """``tether.pool._state`` -> ``pool``; ``tether.metrics`` -> ``metrics``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "tether"


def _imports(path: Path) -> set[str]:
    relative = path.relative_to(SRC.parent).with_suffix("")
    module = ".".join(relative.parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    package = package.removesuffix(".__init__")
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue  # for the type checker only: never runs
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                # ``from .. import metrics`` imports the module tether.metrics
                found.update(f"{base}.{alias.name}" if not node.module else base for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, field, None)
                if isinstance(inner, list):
                    visit(inner)

    visit(ast.parse(path.read_text()).body)
    return {name for name in found if name.startswith("tether.")}


def _room_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        room = _room(".".join(path.relative_to(SRC.parent).with_suffix("").parts))
        for target in _imports(path):
            if _room(target) != room:
                graph.setdefault(room, set()).add(_room(target))
    return graph


def _a_circle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def walk(room: str, path: list[str]) -> list[str] | None:
        if room in path:
            return [*path[path.index(room):], room]
        if room in done:
            return None
        for nxt in sorted(graph.get(room, ())):
            circle = walk(nxt, [*path, room])
            if circle:
                return circle
        done.add(room)
        return None

    for room in sorted(graph):
        circle = walk(room, [])
        if circle:
            return circle
    return None


def test_no_import_circle_between_rooms() -> None:
    graph = _room_graph()
    assert "pool" in graph and "session" in graph["pool"]  # the reading itself works
    assert _a_circle(graph) is None, " -> ".join(_a_circle(graph) or [])


def test_the_shared_vocabulary_imports_nothing_of_tether_but_its_errors() -> None:
    assert _room_graph().get("vocab", set()) <= {"errors"}


def test_the_session_does_not_know_the_pool_nor_the_dialects_the_pool() -> None:
    graph = _room_graph()
    assert "pool" not in graph["session"]
    assert "pool" not in graph["dialects"] and "session" not in graph["dialects"]
    assert "pool" not in graph["drivers"] and "session" not in graph["drivers"]
