"""No ledger module grows past about 600 lines unless its docstring says why it is one piece."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LEDGER = Path(__file__).resolve().parents[2] / "src" / "simtrust" / "ledger"
LIMIT = 620  # "about 600"
MODULES = sorted(LEDGER.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(LEDGER)))
def test_large_modules_say_why_they_are_one_piece(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if text.count("\n") <= LIMIT:
        return
    doc = ast.get_docstring(ast.parse(text)) or ""
    assert "One piece" in doc, f"{path.name}: {text.count(chr(10))} lines and no reason given"
