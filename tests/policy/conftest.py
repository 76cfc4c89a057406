"""Fixtures of the policy tests: the ``exporter`` marker and binary checks."""

from __future__ import annotations

import os
import shutil

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "exporter: runs real flow exporters (softflowd, nfdump)")


def require_binaries(*names: str) -> None:
    """Skip when a binary is missing, unless SIMTRUST_REQUIRE_SERVICES is set (then fail)."""
    missing = [n for n in names if shutil.which(n) is None]
    if not missing:
        return
    message = f"missing binaries: {', '.join(missing)}"
    if os.environ.get("SIMTRUST_REQUIRE_SERVICES", "") not in ("", "0"):
        pytest.fail(message + " and SIMTRUST_REQUIRE_SERVICES is set")
    pytest.skip(message)
