"""Every C extension the project builds imports, where CI requires them.

The packages fall back to Python when an extension is missing, and the tests of the
fast paths skip then; with ``SIMTRUST_REQUIRE_NATIVE=1`` (set by ``.ci/run``) a build
that silently fell back is a failure here instead of a row of skips.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
EXTENSIONS = sorted(
    ".".join(path.relative_to(SRC).with_suffix("").parts)
    for path in SRC.rglob("*.c")
)


def test_the_extension_list_is_the_source_tree() -> None:
    # what setup.py builds: one extension per C file under src/
    assert "simtrust.detect._fast" in EXTENSIONS
    assert "simtrust.policy._counters" in EXTENSIONS
    assert len(EXTENSIONS) >= 7


@pytest.mark.parametrize("module", EXTENSIONS)
def test_extension_imports(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        if os.environ.get("SIMTRUST_REQUIRE_NATIVE") == "1":
            pytest.fail(f"SIMTRUST_REQUIRE_NATIVE=1 but {module} does not import: {exc}")
        pytest.skip(f"{module} is not built ({exc}); set SIMTRUST_REQUIRE_NATIVE=1 to fail")
