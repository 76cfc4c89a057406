"""The consensus package's ``__all__`` is its sorted, importable public surface."""

from __future__ import annotations

import simtrust.ledger.consensus as consensus
from simtrust.testing.ledger import consensus_sim as sim


def _isort_key(name: str) -> tuple[int, str]:
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


def test_all_is_sorted_and_resolves() -> None:
    for module in (consensus, sim):
        assert sorted(module.__all__, key=_isort_key) == list(module.__all__)
        for name in module.__all__:
            assert hasattr(module, name), name


def test_no_unlisted_public_names() -> None:
    public = {
        n
        for n, v in vars(consensus).items()
        if not n.startswith("_") and getattr(v, "__module__", "").startswith(consensus.__name__)
    }
    assert public - {"sim"} <= set(consensus.__all__)
