"""The public surface of simtrust.policy is exactly what ``__all__`` says."""

from __future__ import annotations

import simtrust.policy as policy


def test_all_names_exist_once() -> None:
    assert len(set(policy.__all__)) == len(policy.__all__)
    for name in policy.__all__:
        assert hasattr(policy, name), name


def test_no_public_name_outside_all() -> None:
    public = {n for n in vars(policy) if not n.startswith("_")}
    modules = {"flow"}
    assert set(policy.__all__) == public - modules
