"""The command line's modules import in no cycle, counting imports inside functions and
under TYPE_CHECKING (they are cycles all the same, only deferred)."""

from __future__ import annotations

import ast
from pathlib import Path

import conveyor

PACKAGE = Path(conveyor.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every conveyor module that `path` imports anywhere in its text."""
    found: set[str] = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path.parent)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found & modules


def test_no_import_cycle_runs_through_the_cli() -> None:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(paths)
    graph = {name: imports_of(path, modules) for name, path in paths.items()}
    for start in sorted(name for name in modules if name.startswith("conveyor.cli")):
        trail: dict[str, str] = {}
        frontier = [start]
        while frontier:
            current = frontier.pop()
            for imported in graph[current]:
                if imported == start:
                    cycle = [current]
                    while cycle[-1] != start:
                        cycle.append(trail[cycle[-1]])
                    raise AssertionError(" imports ".join([*reversed(cycle), start]))
                if imported not in trail:
                    trail[imported] = current
                    frontier.append(imported)
    assert "conveyor.cli.main" in modules
