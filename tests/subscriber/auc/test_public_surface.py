"""``simtrust.subscriber.auc.__all__`` is sorted, resolves, and names every public module name."""

from __future__ import annotations

import importlib
import pkgutil

import simtrust.subscriber.auc as auc


def _kind(name: str) -> tuple[int, str]:
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2), name


def test_all_is_sorted_and_resolves() -> None:
    assert sorted(auc.__all__, key=_kind) == list(auc.__all__)
    assert [n for n in auc.__all__ if not hasattr(auc, n)] == []


def test_every_module_declares_its_public_names() -> None:
    for info in pkgutil.iter_modules(auc.__path__):
        module = importlib.import_module(f"{auc.__name__}.{info.name}")
        exported = getattr(module, "__all__", None)
        assert exported is not None, info.name
        assert [n for n in exported if not hasattr(module, n)] == [], info.name
