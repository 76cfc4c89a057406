"""Imports point down the layers of DESIGN.md only (interfaces > solutions >
security services > trust > base); a module may import from its own layer.

Imports under ``if TYPE_CHECKING:`` are annotations only (a service typed
against the composition root's ``Runtime``) and are not dependencies.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "simtrust"

LAYERS = {
    "errors": 0, "config": 0, "benchmark": 0, "crypto": 0, "store": 0,
    "identity": 1, "ledger": 1,
    "subscriber": 2, "bootstrap": 2, "aaa": 2, "policy": 2, "detect": 2, "audit": 2,
    "market": 3, "settlement": 3, "streams": 3,
    "api": 4, "cli": 4, "diameter": 4, "sbi": 4, "web": 4, "demo": 4, "runtime": 4, "__main__": 4,
    "testing": 5,
}
NAMES = {0: "base", 1: "trust", 2: "security services", 3: "solutions", 4: "interfaces", 5: "testing gear"}


def _top(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "simtrust" or len(parts) < 2:
        return None
    return parts[1]


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes under ``if TYPE_CHECKING:`` (annotations only, no runtime import)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (
            (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
            or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
        ):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _owner(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


FILES = sorted(p for p in SRC.rglob("*.py") if _owner(p) != "__init__")


def test_every_package_has_a_layer() -> None:
    owners = {_owner(p) for p in FILES}
    assert set() == owners - set(LAYERS)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path: Path) -> None:
    own = LAYERS[_owner(path)]
    upward = []
    for line, module in _imports(path):
        top = _top(module)
        if top is None or top not in LAYERS:
            continue
        if LAYERS[top] > own:
            upward.append(f"line {line}: {module} ({NAMES[LAYERS[top]]} > {NAMES[own]})")
    assert [] == upward
