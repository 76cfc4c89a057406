"""Tenants and API keys: validation, hashing at rest, authentication, revocation, the
authentication cache and its background check."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from simtrust.errors import AuthenticationRequired, Conflict, InvalidInput, NotFound, StoreError
from simtrust.runtime import Runtime
from simtrust.store import AUTH_CACHE_SECONDS, AUTH_REFRESH_SECONDS, NewApiKey, TenantStore


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


# -- the cache checked again before it ends (a key in steady use never waits) -----------


class _Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Checks:
    """Background checks kept until the test runs them (no thread, no timing)."""

    def __init__(self) -> None:
        self.waiting: list[Callable[[], None]] = []

    def __call__(self, work: Callable[[], None]) -> None:
        self.waiting.append(work)

    def run(self) -> int:
        done, self.waiting = self.waiting, []
        for work in done:
            work()
        return len(done)


def _stores(runtime: Runtime) -> tuple[TenantStore, TenantStore, _Clock, _Checks]:
    """This process's store (hand clock, held checks) and another process's (same db)."""
    clock, checks = _Clock(), _Checks()
    return TenantStore(runtime.db, clock=clock, spawn=checks), TenantStore(runtime.db), \
        clock, checks


def _near_the_end(runtime: Runtime) -> tuple[TenantStore, TenantStore, _Clock, _Checks,
                                             NewApiKey]:
    """A key accepted here, used with less than AUTH_REFRESH_SECONDS left: its check is
    started (held in the returned checks)."""
    here, elsewhere, clock, checks = _stores(runtime)
    new = here.create_key("operator-admin", "root")
    here.authenticate(new.secret)
    clock.now += AUTH_CACHE_SECONDS - AUTH_REFRESH_SECONDS + 0.5
    assert new.key.id == here.authenticated_recently(new.secret).id  # type: ignore[union-attr]
    assert 1 == len(checks.waiting)
    return here, elsewhere, clock, checks, new


def test_a_key_in_use_near_the_end_of_its_time_is_checked_again(runtime: Runtime) -> None:
    here, _elsewhere, clock, checks = _stores(runtime)
    new = here.create_key("operator-admin", "root")
    here.authenticate(new.secret)
    clock.now += AUTH_CACHE_SECONDS - AUTH_REFRESH_SECONDS - 0.5
    assert here.authenticated_recently(new.secret) is not None
    assert [] == checks.waiting  # not yet near the end: no store access
    clock.now += 1.0
    assert new.key.id == here.authenticated_recently(new.secret).id  # type: ignore[union-attr]
    assert new.key.id == here.authenticated_recently(new.secret).id  # type: ignore[union-attr]
    assert 1 == checks.run()  # one check per key at a time
    # Taken for AUTH_CACHE_SECONDS from the check: past the first entry's end.
    clock.now += AUTH_CACHE_SECONDS - 0.1
    assert new.key.id == here.authenticated_recently(new.secret).id  # type: ignore[union-attr]
    clock.now += 0.2
    assert here.authenticated_recently(new.secret) is None


def test_an_unused_key_still_ends_after_auth_cache_seconds(runtime: Runtime) -> None:
    here, _elsewhere, clock, checks = _stores(runtime)
    new = here.create_key("operator-admin", "root")
    here.authenticate(new.secret)
    clock.now += AUTH_CACHE_SECONDS
    assert here.authenticated_recently(new.secret) is None
    assert [] == checks.waiting


def test_a_key_revoked_elsewhere_is_dropped_by_the_check(runtime: Runtime) -> None:
    here, elsewhere, _clock, checks, new = _near_the_end(runtime)
    elsewhere.revoke_key(new.key.id)  # another process: this cache is not told
    assert here.authenticated_recently(new.secret) is not None  # as before the change
    checks.run()
    assert here.authenticated_recently(new.secret) is None  # dropped before its end
    with pytest.raises(AuthenticationRequired, match="revoked"):
        here.authenticate(new.secret)


def test_a_key_revoked_elsewhere_ends_within_auth_cache_seconds(runtime: Runtime) -> None:
    """Checked again while live, then revoked elsewhere: refused AUTH_CACHE_SECONDS after
    the last check at the latest, however often it is used."""
    here, elsewhere, clock, checks, new = _near_the_end(runtime)
    checked_at = clock.now
    checks.run()
    elsewhere.revoke_key(new.key.id)
    while clock.now < checked_at + AUTH_CACHE_SECONDS - 0.05:
        assert here.authenticated_recently(new.secret) is not None
        clock.now += 0.1  # no check runs: the entry keeps its end
    clock.now = checked_at + AUTH_CACHE_SECONDS
    assert here.authenticated_recently(new.secret) is None
    assert checks.run() == 1  # the one started and never run
    with pytest.raises(AuthenticationRequired, match="revoked"):
        here.authenticate(new.secret)


def test_a_failing_check_leaves_the_end_where_it_was(runtime: Runtime) -> None:
    here, _elsewhere, clock, checks, new = _near_the_end(runtime)
    ends = clock.now + AUTH_REFRESH_SECONDS - 0.5

    def broken(*_args: object) -> None:
        raise StoreError("the store is down")

    here._db = type("Broken", (), {"query_one": broken})()
    checks.run()
    assert here.authenticated_recently(new.secret) is not None
    clock.now = ends
    assert here.authenticated_recently(new.secret) is None


def test_a_check_read_before_a_revocation_here_is_not_kept(runtime: Runtime) -> None:
    """A check whose read raced this process's own revocation does not put the key
    back: revoked here means refused at once, as before."""
    here, _elsewhere, _clock, checks, new = _near_the_end(runtime)
    real = here._db

    class RevokedDuringRead:
        def query_one(self, sql: str, params: tuple[str]) -> object:
            row = real.query_one(sql, params)  # read while the key was live
            here._db = real
            here.revoke_key(new.key.id)
            return row

    here._db = RevokedDuringRead()  # type: ignore[assignment]
    checks.run()
    assert here.authenticated_recently(new.secret) is None
    with pytest.raises(AuthenticationRequired, match="revoked"):
        here.authenticate(new.secret)


def test_the_default_check_runs_on_a_thread_of_its_own(runtime: Runtime) -> None:
    here = TenantStore(runtime.db, clock=(clock := _Clock()))
    new = here.create_key("operator-admin", "root")
    here.authenticate(new.secret)
    clock.now += AUTH_CACHE_SECONDS - AUTH_REFRESH_SECONDS + 0.5
    before = set(threading.enumerate())
    assert here.authenticated_recently(new.secret) is not None
    started = [t for t in threading.enumerate() if t not in before
               and t.name == "api-key-check"]
    for thread in started:
        thread.join(30)
    clock.now += AUTH_REFRESH_SECONDS  # past the first entry's end
    assert new.key.id == here.authenticated_recently(new.secret).id  # type: ignore[union-attr]
