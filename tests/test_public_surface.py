"""Each package's ``__all__`` is exactly its public surface, sorted, and importable."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import simtrust
from simtrust.cli import app

PACKAGES = sorted(
    info.name for info in pkgutil.iter_modules(simtrust.__path__, "simtrust.") if info.ispkg
)


def _isort_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions."""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_resolves(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert sorted(exported, key=_isort_key) == list(exported), f"{name}.__all__ is not sorted"
    for symbol in exported:
        assert hasattr(module, symbol), f"{name}.__all__ names missing {symbol}"


@pytest.mark.parametrize("name", PACKAGES)
def test_no_unlisted_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(getattr(module, "__all__", []))
    public = {
        n for n, v in vars(module).items()
        if not n.startswith("_") and getattr(v, "__module__", "").startswith(name)
        and not isinstance(v, type(simtrust))
    }
    assert public <= exported, f"{name} exposes names missing from __all__: {public - exported}"


def test_every_cli_module_mounts() -> None:

    names = {group.name for group in app.registered_groups}
    assert {"audit", "keys"} <= names
