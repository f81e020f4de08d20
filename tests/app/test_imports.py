"""The services' imports: no circles among the modules of nnctl.app (imports inside
functions included), and none of them imports the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "nnctl" / "app"


def _imports() -> dict[str, set[str]]:
    """Module name → the nnctl.app modules it imports anywhere in its text."""
    names = {p.stem for p in APP.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for name in names:
        found: set[str] = set()
        for node in ast.walk(ast.parse((APP / f"{name}.py").read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("nnctl.app."):
                    found.add(node.module.split(".")[2])
                elif node.module == "nnctl.app":
                    found.update(a.name for a in node.names if a.name in names)
                assert not node.module.startswith("nnctl.cli"), f"{name} imports {node.module}"
        graph[name] = found - {name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep, path + [dep])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_no_module_of_the_services_imports_itself_through_others() -> None:
    assert _cycle(_imports()) is None


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"restarts": {"selection"}, "selection": {"restarts"}}) == ["restarts", "selection", "restarts"]
