"""The package's shape: no import cycles, no private names borrowed across modules, a complete module map."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "cinescene"


def modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the package (packages by their __init__)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _resolve(current: str, is_package: bool, node: ast.ImportFrom | ast.Import, known: dict[str, Path]) -> set[str]:
    """The cinescene modules an import statement loads (a name that is a submodule counts as that module)."""
    targets: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.startswith("cinescene"):
                targets.add(alias.name)
        return targets & set(known)
    if node.level:
        base = current.split(".") if is_package else current.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        module = ".".join([*base, *(node.module.split(".") if node.module else [])])
    else:
        module = node.module or ""
        if not module.startswith("cinescene"):
            return targets
    for alias in node.names:
        sub = f"{module}.{alias.name}"
        targets.add(sub if sub in known else module)
    return targets & set(known)


def import_graph() -> dict[str, set[str]]:
    """Every import, at module level or inside functions: a cycle through a lazy import is still a cycle."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                edges |= _resolve(name, path.name == "__init__.py", node, known)
        # A submodule needs its package initialised first; that is Python's doing, not a cycle.
        graph[name] = {e for e in edges if e != name and not name.startswith(e + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_lazy_imports_count():
    graph = import_graph()
    # loading imports speed inside load_model; it must still show up as an edge.
    assert "cinescene.speed" in graph["cinescene.loading"]
    assert "cinescene.training.config" in graph["cinescene.cli.train"]


def test_no_module_borrows_another_modules_private_names():
    known = modules()
    offences = []
    for name, path in known.items():
        tree = ast.parse(path.read_text())
        imported_modules: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and _resolve(name, path.name == "__init__.py", node, known):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        offences.append(f"{name} imports {alias.name}")
                    else:
                        imported_modules.add(alias.asname or alias.name)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in imported_modules and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                offences.append(f"{name} uses {node.value.id}.{node.attr}")
    assert not offences, offences


def test_readme_module_map_lists_every_module():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([a-z_.]+)`", section))
    missing = [name.removeprefix("cinescene.") for name in modules()
               if name != "cinescene" and name.removeprefix("cinescene.") not in listed]
    assert not missing, f"README's module map does not list: {', '.join(missing)}"
