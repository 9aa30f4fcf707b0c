"""The shape of the package: no import cycle, every module on the map, none too long."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from helpers import ROOT

import ragchat

PACKAGE = ROOT / "ragchat"
MODULES = {path.stem: path for path in PACKAGE.glob("*.py")}
LONGEST_MODULE = 800  # lines: split a module along a seam before it grows past this


def imported_modules(path: Path) -> set[str]:
    """The ragchat modules ``path`` imports anywhere: at module level, inside functions, under
    TYPE_CHECKING."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "ragchat":  # from ragchat import x: a module, or the package
                names = [
                    f"ragchat.{a.name}" if a.name in MODULES else "ragchat" for a in node.names
                ]
            else:
                names = [node.module]
        else:
            continue
        for name in names:
            if name == "ragchat":
                found.add("__init__")
            elif name.startswith("ragchat."):
                found.add(name.split(".")[1])
    return found - {path.stem}


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as the modules along it, or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        path.append(module)
        for target in sorted(graph.get(module, ())):
            cycle = visit(target)
            if cycle:
                return cycle
        path.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module)
        if cycle:
            return cycle
    return None


def test_no_import_cycle():
    graph = {name: imported_modules(path) for name, path in MODULES.items()}
    assert all(targets <= set(MODULES) for targets in graph.values())
    assert graph["app"] >= {"collection", "ingest", "retrieval"}  # the graph is really read
    cycle = import_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_cycles():
    assert import_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert import_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_every_module_is_on_the_package_map():
    assert ragchat.__doc__
    listed = re.findall(r"^    (\w+)\.py  ", ragchat.__doc__, flags=re.MULTILINE)
    assert len(listed) == len(set(listed)), "a module is listed twice"
    assert set(listed) == set(MODULES), (
        f"missing from the map: {sorted(set(MODULES) - set(listed))};"
        f" listed but absent: {sorted(set(listed) - set(MODULES))}"
    )


def test_the_readme_names_only_modules_that_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## How it works") : readme.index("### When things go wrong")]
    named = set(re.findall(r"`(?:ragchat/)?(\w+)\.py`", section))
    assert named, "the README's How it works names no module"
    assert named <= set(MODULES), f"named but absent: {sorted(named - set(MODULES))}"


def test_no_module_is_too_long():
    lengths = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert max(lengths.values()) <= LONGEST_MODULE, {
        n: length for n, length in lengths.items() if length > LONGEST_MODULE
    }
