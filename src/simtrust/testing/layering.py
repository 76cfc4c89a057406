"""The import rules of DESIGN.md "Layers", checked over a source tree by reading it (AST).

``tests/test_layers.py`` runs these checks over ``src/simtrust``;
``tools/draw_layers.py`` draws the package graph they build. Everything is
computed from the source text, nothing is imported, so a synthetic tree in a
temporary directory can be checked the same way (the tests do, to show that a
cycle or a private import is caught).

The rules:

* imports point down the layers (a package may import its own layer);
* no import cycle between packages (a strongly connected component of the
  package graph with more than one member, Tarjan's algorithm);
* no import of another package's private (``_x``) module;
* no import inside a function, except the heavy optional dependencies named in
  an allow-list with the reason;
* no product module imports ``simtrust.testing``.

Imports under ``if TYPE_CHECKING:`` are annotations only and are not
dependencies of the running program; they still must not form cycles with the
composition root (a module below the interfaces layer may not name
``simtrust.runtime`` at all).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Import",
    "cycles",
    "function_imports",
    "gear_imports",
    "package_graph",
    "private_imports",
    "scan",
    "upward_imports",
]


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement of one module of the tree."""

    path: Path  # file, relative to the tree root's parent (``simtrust/x/_y.py``)
    owner: str  # the top-level package (or module) of the tree the file belongs to
    line: int
    module: str  # fully qualified module imported (``simtrust.policy._store``)
    names: tuple[str, ...]  # the names of ``from module import names``
    in_function: bool
    type_checking: bool


def _type_checking_ids(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (
            (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
            or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
        ):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def _function_ids(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            for child in ast.iter_child_nodes(node):
                inside.update(id(n) for n in ast.walk(child))
    return inside


def _resolve(package_parts: list[str], node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = package_parts[: len(package_parts) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def scan(root: Path) -> list[Import]:
    """Every import of every module under ``root`` (a package directory, e.g. ``src/simtrust``)."""
    top = root.name
    found: list[Import] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        owner = rel.parts[0].removesuffix(".py")
        parts = [top, *rel.with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
            package_parts = parts
        else:
            package_parts = parts[:-1]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        checking = _type_checking_ids(tree)
        functions = _function_ids(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.append(Import(Path(top) / rel, owner, node.lineno, alias.name, (),
                                        id(node) in functions, id(node) in checking))
            elif isinstance(node, ast.ImportFrom):
                module = _resolve(package_parts, node)
                names = tuple(alias.name for alias in node.names)
                found.append(Import(Path(top) / rel, owner, node.lineno, module, names,
                                    id(node) in functions, id(node) in checking))
    return found


def _target(imp: Import, top: str) -> str | None:
    parts = imp.module.split(".")
    if parts[0] != top or len(parts) < 2:
        return None
    return parts[1]


def package_graph(imports: Iterable[Import], top: str = "simtrust",
                  *, with_type_checking: bool = False) -> dict[str, set[str]]:
    """Package → packages it imports (first level below ``top``; itself excluded)."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.owner, set())
        if imp.type_checking and not with_type_checking:
            continue
        target = _target(imp, top)
        if target is not None and target not in (imp.owner, "__init__"):
            graph[imp.owner].add(target)
    graph.pop("__init__", None)
    for targets in graph.values():
        targets.discard("__init__")
    return graph


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one package (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _is_private(parts: list[str]) -> bool:
    return any(p.startswith("_") and not p.startswith("__") for p in parts)


def private_imports(imports: Iterable[Import], top: str = "simtrust") -> list[Import]:
    """Imports of another package's private module (``simtrust.<other>._x``, also ``from
    simtrust.<other> import _x``)."""
    bad = []
    for imp in imports:
        target = _target(imp, top)
        if target is None or target == imp.owner:
            continue
        parts = imp.module.split(".")[1:]
        if _is_private(parts) or any(_is_private([n]) for n in imp.names):
            bad.append(imp)
    return bad


def function_imports(imports: Iterable[Import],
                     allowed: Mapping[str, str]) -> list[Import]:
    """Imports inside a function whose module is not in ``allowed`` (module → reason).

    A key of ``allowed`` covers the module and its submodules."""
    bad = []
    for imp in imports:
        if not imp.in_function:
            continue
        if any(imp.module == key or imp.module.startswith(key + ".") for key in allowed):
            continue
        bad.append(imp)
    return bad


def gear_imports(imports: Iterable[Import], top: str = "simtrust",
                    gear: str = "testing") -> list[Import]:
    """Product modules that import the test gear package."""
    return [imp for imp in imports
            if imp.owner != gear and _target(imp, top) == gear]


def upward_imports(imports: Iterable[Import], layers: Mapping[str, int],
                   top: str = "simtrust") -> list[Import]:
    """Imports of a package of a higher layer (``layers``: package → layer number).

    Annotation-only imports count too when they name a higher layer: a service
    typed against the composition root depends on it in all but name."""
    bad = []
    for imp in imports:
        target = _target(imp, top)
        if target is None or target not in layers or imp.owner not in layers:
            continue
        if layers[target] > layers[imp.owner]:
            bad.append(imp)
    return bad
