"""No module under ``src/simtrust`` grows past about 600 lines unless its docstring says why.

Issue #11 ("no module over ~600 lines unless its docstring says why it must be
one piece"). The files are read as text, nothing is imported, so the check is
cheap enough to run on every change. A module over the limit passes only when
its docstring has a paragraph that starts with ``One piece`` and then gives a
reason of some substance (at least :data:`MIN_REASON_WORDS` words after the
colon), e.g.::

    One piece, although it is over 600 lines: the in-memory indexes ... are
    written by ingest and finalization under one lock ...
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "simtrust"
LIMIT = 620  # "about 600"
MIN_REASON_WORDS = 20
MODULES = sorted(SRC.rglob("*.py"))
#: Modules over the limit that are still to be split (xfail; remove a name once
#: its module is split or states its reason). Not strict: a module that another
#: change brings under the limit meanwhile does not fail the suite.
NOT_YET_SPLIT = frozenset({
    "identity/_service.py",
})

_REASON = re.compile(r"(?:^|\n\n)One piece\b[^:\n]*:(?P<why>.+?)(?:\n\n|$)", re.S)


def one_piece_reason(doc: str) -> str | None:
    """The reason paragraph of a module docstring, or ``None`` if it has none worth the name."""
    m = _REASON.search(doc)
    if m is None:
        return None
    why = " ".join(m.group("why").split())
    return why if len(why.split()) >= MIN_REASON_WORDS else None


def lines(text: str) -> int:
    return text.count("\n")


def test_modules_are_found() -> None:
    assert len(MODULES) > 100, SRC


def _param(path: Path) -> object:
    name = path.relative_to(SRC).as_posix()
    marks = [pytest.mark.xfail(strict=False, reason="not yet split")] if name in NOT_YET_SPLIT else []
    return pytest.param(path, id=name, marks=marks)


@pytest.mark.parametrize("path", [_param(p) for p in MODULES])
def test_large_modules_say_why_they_are_one_piece(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    n = lines(text)
    if n <= LIMIT:
        return
    doc = ast.get_docstring(ast.parse(text)) or ""
    assert one_piece_reason(doc) is not None, (
        f"{path.relative_to(SRC)}: {n} lines (limit {LIMIT}) and its docstring gives no "
        f"'One piece, although it is over 600 lines: <reason>' paragraph; split it by responsibility"
    )


def test_reason_must_have_substance() -> None:
    assert one_piece_reason("Summary.\n\nOne piece: because.") is None
    assert one_piece_reason("Summary.\n\nSays One piece: " + "word " * 30) is None
    why = one_piece_reason("Summary.\n\nOne piece, although it is over 600 lines: " + "word " * 25 + "\n\nMore.")
    assert why is not None
    assert why.startswith("word")
