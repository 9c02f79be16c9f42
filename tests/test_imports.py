"""The grader's modules import each other without circles, and none reaches into another's private (_) names.

Every import counts, also one inside a function; relative imports are resolved against the importing module."""

import ast
from pathlib import Path

from grader.paths import ROOT

PACKAGE = ROOT / "grader"



def _name(path: Path) -> str:
    """grader/cli/bench.py -> grader.cli.bench; grader/cli/__init__.py -> grader.cli"""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _tree(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text(encoding="utf-8"))


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _base(module: str, node: ast.ImportFrom) -> str:
    """The module `from X import ...` names, dots resolved: `from ..engine` in grader.cli.bench -> grader.engine."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if _is_package(module) else module.split(".")[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def _imports(module: str, tree: ast.Module) -> list[tuple[str, str | None, str]]:
    """(grader module imported, name taken from it or None, name bound here) for each import in the module's tree.
    `import grader.cli.bench` binds grader: then the name bound is "grader.cli.bench", read as a dotted chain."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    found.append((alias.name, None, alias.asname or alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, node)
            if base not in MODULES:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                bound = alias.asname or alias.name
                found.append((sub, None, bound) if sub in MODULES else (base, alias.name, bound))
    return found


def _graph() -> dict[str, set[str]]:
    return {module: {target for target, _, _ in _imports(module, _tree(module)) if target != module}
            for module in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The shortest import circle through each module that lies on one, each circle once: [a, b, a] for a <-> b."""
    circles = []
    for start in sorted(graph):
        circle = _shortest_circle(graph, start)
        if circle and not any(set(circle) == set(c) and len(circle) == len(c) for c in circles):
            circles.append(circle)
    return circles


def _shortest_circle(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """Breadth first from start back to it: [start, ..., start], or None."""
    paths, frontier = {start: [start]}, [start]
    while frontier:
        step = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    step.append(w)
        frontier = step
    return None


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _dotted(node: ast.expr) -> str | None:
    """a.b.c for an attribute chain on a plain name, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def _private_reaches(module: str, tree: ast.Module) -> set[str]:
    """grader.x._y for each private name of another grader module that this module imports or reads."""
    reaches, bound = set(), {}
    for target, name, local in _imports(module, tree):
        if target == module:
            continue
        if name is not None and _private(name):
            reaches.add(f"{target}.{name}")
        elif name is None and _private(target.rsplit(".", 1)[-1]):
            reaches.add(target)
        if name is None:
            bound[local] = target
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            chain = _dotted(node.value)
            if chain is None:
                continue
            owner = next((bound[local] + chain[len(local):] for local in bound
                          if chain == local or chain.startswith(local + ".")), None)
            if owner in MODULES and owner != module:
                reaches.add(f"{owner}.{node.attr}")
    return reaches


def test_the_scan_sees_imports_inside_functions_and_relative_ones():
    edges = _graph()
    assert "grader.errors" in edges["grader.cli"]  # from ..errors import KitError, at module level
    assert "grader.paths" in edges["grader.formats.checkpoint"]  # from ..paths import ...
    assert "grader.engine.impl" in edges["grader.cli.chat"]  # from ..engine import impl as impls, in a function


def test_the_cycle_finder_finds_every_circle():
    graph = {"a": {"b", "d"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"a"}}
    assert _cycles(graph) == [["a", "d", "a"], ["b", "c", "a", "b"]]  # a's shortest is through d; b's and c's the same


def test_the_private_finder_sees_from_imports_and_attributes():
    source = """
from .timing import _median, Steps
from . import bench
from ..engine import calls as c
from .. import paths
import grader.formats.checkpoint

def f():
    grader.formats.checkpoint._read_json(None, "")
    bench._read_pass([])
    c._tensors(1)
    paths.__file__
    bench.report({})
"""
    found = _private_reaches("grader.cli.bench_int8", ast.parse(source))
    assert found == {"grader.cli.timing._median", "grader.cli.bench._read_pass", "grader.engine.calls._tensors",
                     "grader.formats.checkpoint._read_json"}
    assert _private_reaches("grader.cli.bench", ast.parse("def _own(): pass\n_own()\n")) == set()


def test_no_import_circles():
    cycles = _cycles(_graph())
    assert cycles == [], "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_module_reaches_into_another_modules_privates():
    reaches = sorted((module, reach) for module in MODULES for reach in _private_reaches(module, _tree(module)))
    assert reaches == [], "private reaches:\n" + "\n".join(f"{m} uses {r}" for m, r in reaches)
