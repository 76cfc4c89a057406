"""The layering rules of DESIGN.md "Layers", enforced over ``src/simtrust``.

Imports point down (interfaces > solutions > security services > trust >
base; a module may import from its own layer); packages never import each
other in a circle; no module imports another package's private (``_x``)
module; imports sit at module level except heavy optional dependencies in
:data:`FUNCTION_IMPORTS_ALLOWED`; product code never imports the test gear
(``simtrust.testing``). Imports under ``if TYPE_CHECKING:`` count too: a
service typed against the composition root depends on it in all but name.

The checker itself (:mod:`simtrust.testing.layering`) is exercised on small
synthetic trees below, so a deliberately added cycle or private import is
shown to fail the rules.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from simtrust.testing.layering import (
    Import,
    cycles,
    function_imports,
    gear_imports,
    package_graph,
    private_imports,
    scan,
    upward_imports,
)

SRC = Path(__file__).resolve().parents[1] / "src" / "simtrust"

LAYERS = {
    "errors": 0, "config": 0, "benchmark": 0, "handoff": 0, "crypto": 0, "store": 0, "domain": 0, "alerts": 0,
    "identity": 1, "ledger": 1,
    "subscriber": 2, "bootstrap": 2, "aaa": 2, "policy": 2, "detect": 2, "audit": 2,
    "flows": 2, "devices": 2,
    "market": 3, "settlement": 3, "streams": 3, "fraudshare": 3,
    "api": 4, "cli": 4, "diameter": 4, "sbi": 4, "web": 4, "demo": 4, "runtime": 4, "__main__": 4,
    "testing": 5,
}
NAMES = {0: "base", 1: "trust", 2: "security services", 3: "solutions", 4: "interfaces",
         5: "testing gear"}

#: Modules a function may import lazily, with the reason. Everything else is imported
#: at module level (ruff PLC0415 enforces the same in src, tests and bench).
FUNCTION_IMPORTS_ALLOWED = {
    "uvicorn": "the ASGI server: loaded only by the commands that serve HTTP",
    "simtrust.api": "the FastAPI app with every route: loaded only where it is served",
    "simtrust.web": "the API with the dashboard mounted: loaded only where it is served",
    "fastapi": "FastAPI's test client: only the HTTP demo step uses it",
    "psycopg": "the PostgreSQL driver is optional; SQLite-only installs never load it",
    "pyld": "the JSON-LD processor is heavy and needed only for RDF canonicalisation",
    "matplotlib": "plotting: loaded only to draw figures",
    "polars": "dataframes: loaded only for bulk settlement reconciliation",
    "simtrust.sbi": "the HTTP/2 SBI app (Starlette, h2): loaded only to serve it",
}

IMPORTS = scan(SRC)
FILES = sorted({imp.path for imp in IMPORTS})


def _where(found: list[Import]) -> list[str]:
    return [f"{imp.path}:{imp.line}: {imp.module} {list(imp.names) or ''}".rstrip()
            for imp in found]


def test_every_package_has_a_layer() -> None:
    owners = {imp.owner for imp in IMPORTS} | {
        p.name.removesuffix(".py") for p in SRC.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists()) or p.suffix == ".py"}
    assert set() == owners - set(LAYERS) - {"__init__"}


def test_imports_point_down() -> None:
    found = upward_imports(IMPORTS, LAYERS)
    upward = [f"{line} ({NAMES[LAYERS[imp.module.split('.')[1]]]} > {NAMES[LAYERS[imp.owner]]})"
              for imp, line in zip(found, _where(found), strict=True)]
    assert [] == upward


def test_no_import_cycle_between_packages() -> None:
    graph = package_graph(IMPORTS, with_type_checking=True)
    assert [] == cycles(graph)


def test_no_private_module_of_another_package() -> None:
    assert [] == _where(private_imports(IMPORTS))


def test_imports_at_module_level_unless_allowed() -> None:
    assert [] == _where(function_imports(IMPORTS, FUNCTION_IMPORTS_ALLOWED))


def test_product_code_never_imports_the_test_gear() -> None:
    assert [] == _where(gear_imports(IMPORTS))


def test_below_interfaces_nothing_names_the_composition_root() -> None:
    named = [imp for imp in IMPORTS
             if imp.module.startswith("simtrust.runtime") and LAYERS[imp.owner] < 4]
    assert [] == _where(named)


# -- the checker on synthetic trees: each rule catches what it is for ------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "simtrust"
    for rel, text in files.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return pkg


CLEAN = {
    "__init__.py": "",
    "base/__init__.py": "from simtrust.base._value import Value\n__all__ = ['Value']\n",
    "base/_value.py": "class Value: ...\n",
    "upper/__init__.py": "from simtrust.base import Value\n",
}


def test_checker_passes_a_clean_tree(tmp_path: Path) -> None:
    imports = scan(_tree(tmp_path, CLEAN))
    assert [] == cycles(package_graph(imports, with_type_checking=True))
    assert [] == private_imports(imports)
    assert [] == function_imports(imports, {})
    assert [] == upward_imports(imports, {"base": 0, "upper": 1})


def test_checker_catches_a_deliberate_cycle(tmp_path: Path) -> None:
    tree = _tree(tmp_path, {**CLEAN, "base/_back.py": "from simtrust.upper import thing\n"})
    imports = scan(tree)
    assert [["base", "upper"]] == cycles(package_graph(imports))
    assert ["simtrust/base/_back.py"] == [str(i.path) for i in
                                          upward_imports(imports, {"base": 0, "upper": 1})]


def test_checker_catches_a_cycle_through_type_checking(tmp_path: Path) -> None:
    back = """\
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from simtrust.upper import Root
        """
    imports = scan(_tree(tmp_path, {**CLEAN, "base/_typed.py": back}))
    assert [] == cycles(package_graph(imports))
    assert [["base", "upper"]] == cycles(package_graph(imports, with_type_checking=True))


def test_checker_catches_a_deliberate_private_import(tmp_path: Path) -> None:
    files = {**CLEAN, "upper/_peek.py": "from simtrust.base._value import Value\n",
             "upper/_peek2.py": "from simtrust.base import _value\n",
             "upper/_own.py": "from simtrust.upper import _peek\n"}
    found = private_imports(scan(_tree(tmp_path, files)))
    assert ["simtrust/upper/_peek.py", "simtrust/upper/_peek2.py"] == sorted(
        str(i.path) for i in found)


def test_checker_catches_function_imports_outside_the_allow_list(tmp_path: Path) -> None:
    lazy = """\
        def serve():
            import uvicorn
            from simtrust.base import Value
            return uvicorn, Value
        """
    imports = scan(_tree(tmp_path, {**CLEAN, "upper/_lazy.py": lazy}))
    found = function_imports(imports, {"uvicorn": "heavy"})
    assert ["simtrust.base"] == [i.module for i in found]


def test_checker_catches_product_code_importing_the_gear(tmp_path: Path) -> None:
    files = {**CLEAN, "testing/__init__.py": "", "testing/sim.py": "",
             "upper/_uses.py": "from simtrust.testing import sim\n",
             "testing/_own.py": "from simtrust.testing import sim\n"}
    found = gear_imports(scan(_tree(tmp_path, files)))
    assert ["simtrust/upper/_uses.py"] == [str(i.path) for i in found]


@pytest.mark.parametrize("relative", ["from ..base import _value", "from ..base._value import Value"])
def test_checker_resolves_relative_imports(tmp_path: Path, relative: str) -> None:
    imports = scan(_tree(tmp_path, {**CLEAN, "upper/_rel.py": relative + "\n"}))
    assert ["simtrust/upper/_rel.py"] == [str(i.path) for i in private_imports(imports)]


def test_the_layer_picture_is_drawn_from_the_graph(tmp_path: Path) -> None:
    out = tmp_path / "packages.svg"
    tool = SRC.parents[1] / "tools" / "draw_layers.py"
    subprocess.run([sys.executable, str(tool), str(out)], check=True, capture_output=True,
                   timeout=120)
    svg = out.read_text(encoding="utf-8")
    assert svg.startswith("<?xml")
    assert "<svg" in svg
