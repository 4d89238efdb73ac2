"""How the package's modules connect: no module imports, directly or through others, one that imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

import thinkedit

PACKAGE = Path(thinkedit.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that `path` imports anywhere in it (inside functions too: a lazy import is still a
    dependency), with the packages each one's import runs first (`a.b.c` runs `a.b`'s __init__), except the
    packages that hold `path` itself: those are already running when it is imported."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    running = {".".join(package.split(".")[:n]) for n in range(1, len(package.split(".")) + 1)}
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            while target:
                if target in modules and target not in running:
                    found.add(target)
                target = target.rpartition(".")[0]
    return found - {name}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    return {module_name(path): imported(path, modules) for path in paths}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "thinkedit.loop" in graph["thinkedit.cli"], "the walk sees imports"
    assert "thinkedit.editors" in graph["thinkedit.registry"], "a submodule's import runs its package"
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle_made_by_a_lazy_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_function_is_longer_than_80_lines():
    """The project's rule beside ruff's complexity limit (C901 ≤ 12): a function a reader takes in at once."""
    project = PACKAGE.parent
    long = []
    for path in [*sorted(PACKAGE.rglob("*.py")), project / "app.py", *sorted((project / "scripts").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                long.append(f"{path.relative_to(project)}:{node.lineno} {node.name}")
    assert long == []
