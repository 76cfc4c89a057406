"""The identity package's public surface is exactly its sorted ``__all__``."""

from __future__ import annotations

import simtrust.identity as identity


def test_all_is_sorted_and_complete() -> None:
    public = {name for name in dir(identity) if not name.startswith("_")}
    exported = set(identity.__all__)
    # Submodules imported by the package show up as attributes; they are not API.
    modules = {name for name in public if type(getattr(identity, name)).__name__ == "module"}
    assert public - modules == exported

    # isort-style order (ruff RUF022): CONSTANTS, then Classes, then functions.
    def rank(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert sorted(identity.__all__, key=rank) == identity.__all__


def test_no_private_key_accessor_on_secure_elements() -> None:
    names = set(dir(identity.SecureElement)) | set(dir(identity.SoftwareSecureElement))
    assert not {n for n in names if "private" in n.lower() and not n.startswith("_")}
