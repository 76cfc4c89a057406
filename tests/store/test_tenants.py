"""Tenants and API keys: validation, hashing at rest, authentication, revocation."""

from __future__ import annotations

import pytest

from simtrust.errors import AuthenticationRequired, Conflict, InvalidInput, NotFound
from simtrust.runtime import Runtime


def test_tenant_round_trip_and_duplicate(runtime: Runtime) -> None:
    created = runtime.tenants.create_tenant("acme", "Acme Corp")
    assert created == runtime.tenants.get_tenant("acme")
    assert ["acme"] == [t.id for t in runtime.tenants.list_tenants()]
    with pytest.raises(Conflict):
        runtime.tenants.create_tenant("acme", "Again")


@pytest.mark.parametrize("bad", ["", "UPPER", "-lead", "trail-", "a" * 64, "sp ace", "ü"])
def test_tenant_ids_are_validated(runtime: Runtime, bad: str) -> None:
    with pytest.raises(InvalidInput):
        runtime.tenants.create_tenant(bad, "x")


def test_key_secret_is_not_stored_and_authenticates(runtime: Runtime) -> None:
    runtime.tenants.create_tenant("acme", "Acme")
    new = runtime.tenants.create_key("tenant-admin", "ci", "acme")
    assert new.secret.startswith(f"stk_{new.key.id}_")
    assert new.secret not in repr(new)
    stored = runtime.db.query("SELECT digest FROM api_keys")
    assert all(new.secret.encode() not in bytes(row[0]) for row in stored)
    key = runtime.tenants.authenticate(new.secret)
    assert ("tenant-admin", "acme") == (key.role, key.tenant_id)


def test_wrong_unknown_and_revoked_keys_fail(runtime: Runtime) -> None:
    new = runtime.tenants.create_key("operator-admin", "root")
    tampered = new.secret[:-1] + ("A" if new.secret[-1] != "A" else "B")
    with pytest.raises(AuthenticationRequired, match="unknown"):
        runtime.tenants.authenticate(tampered)
    with pytest.raises(AuthenticationRequired, match="malformed"):
        runtime.tenants.authenticate("password123")
    runtime.tenants.revoke_key(new.key.id)
    with pytest.raises(AuthenticationRequired, match="revoked"):
        runtime.tenants.authenticate(new.secret)


def test_key_role_rules(runtime: Runtime) -> None:
    runtime.tenants.create_tenant("acme", "Acme")
    with pytest.raises(InvalidInput):
        runtime.tenants.create_key("operator-admin", "x", "acme")
    with pytest.raises(InvalidInput):
        runtime.tenants.create_key("tenant-viewer", "x", None)
    with pytest.raises(InvalidInput):
        runtime.tenants.create_key("superuser", "x", None)
    with pytest.raises(NotFound):
        runtime.tenants.create_key("tenant-admin", "x", "ghost")


def test_cached_authentication_still_sees_revocation(runtime: Runtime) -> None:
    new = runtime.tenants.create_key("operator-admin", "root")
    assert new.key.id == runtime.tenants.authenticate(new.secret).id
    assert new.key.id == runtime.tenants.authenticate(new.secret).id  # served from the cache
    runtime.tenants.revoke_key(new.key.id)
    with pytest.raises(AuthenticationRequired, match="revoked"):
        runtime.tenants.authenticate(new.secret)


def test_cache_never_admits_a_wrong_key(runtime: Runtime) -> None:
    new = runtime.tenants.create_key("operator-admin", "root")
    runtime.tenants.authenticate(new.secret)
    wrong = new.secret[:-2] + ("AA" if not new.secret.endswith("AA") else "BB")
    with pytest.raises(AuthenticationRequired):
        runtime.tenants.authenticate(wrong)
