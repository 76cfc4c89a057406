"""Versioned policy storage on SQLite and PostgreSQL; changes audited and applied live."""

from __future__ import annotations

from typing import Any

import pytest

from simtrust.domain import DeviceContext, FlowRecord
from simtrust.errors import InvalidInput, NotFound
from simtrust.policy import PolicyStore, Scope, build_policy_service, policy_from_dict
from simtrust.policy._schema import MIGRATIONS
from simtrust.runtime import Runtime
from simtrust.store import Database, apply_migrations

T = "acme"


def body(cidr: str, scope: str = "group:meters") -> dict[str, Any]:
    return {"tenant_id": T, "scope": scope, "rules": [
        {"kind": "destination", "allow": [{"cidrs": [cidr]}]}]}


class ListAudit:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def append(self, **fields: Any) -> object:
        self.events.append(fields)
        return fields


def test_every_change_is_a_new_version_and_old_ones_stay(db: Database) -> None:
    apply_migrations(db, MIGRATIONS)
    audit = ListAudit()
    store = PolicyStore(db, audit)
    scope = Scope.parse("group:meters")
    v1 = store.put(policy_from_dict(body("192.0.2.0/24")), actor="alice")
    v2 = store.put(policy_from_dict(body("198.51.100.0/24")), actor="bob")
    assert (1, 2) == (v1.version, v2.version)
    assert v2 == store.get(T, scope)
    assert v1 == store.get(T, scope, version=1)
    assert [("alice", 1), ("bob", 2)] == [(a, p.version) for p, a, _ in store.history(T, scope)]
    other = store.put(policy_from_dict(body("203.0.113.0/24", "tenant")), actor="alice")
    assert 1 == other.version
    assert {("group:meters", 2), ("tenant", 1)} == {
        (p.scope.key, p.version) for p in store.current(T)}
    deleted = store.delete(T, scope, actor="carol")
    assert (3, False) == (deleted.version, deleted.active)
    assert ["tenant"] == [p.scope.key for p in store.current(T)]
    with pytest.raises(NotFound):
        store.delete(T, scope, actor="carol")
    with pytest.raises(NotFound):
        store.get(T, scope, version=9)
    assert ["policy.change", "policy.change", "policy.change", "policy.delete"] == [
        e["action"] for e in audit.events]
    assert "version 2" == audit.events[1]["reason"]


def test_tenant_webhook_is_stored_and_audited(db: Database) -> None:
    apply_migrations(db, MIGRATIONS)
    audit = ListAudit()
    store = PolicyStore(db, audit)
    assert store.webhook(T) is None
    store.set_webhook(T, "https://hooks.example.com/acme?token=s3cret", actor="alice")
    assert "https://hooks.example.com/acme?token=s3cret" == store.webhook(T)
    assert "https://hooks.example.com/acme?token=s3cret" == PolicyStore(db).webhook(T)
    store.set_webhook(T, None, actor="alice")
    assert store.webhook(T) is None
    assert ["set", "cleared"] == [e["reason"] for e in audit.events]
    assert "s3cret" not in repr(audit.events), "the URL's secret query is not audited"
    with pytest.raises(InvalidInput):
        store.set_webhook(T, "ftp://x", actor="alice")


def test_service_on_runtime_audits_changes_and_violations(runtime: Runtime) -> None:
    service = build_policy_service(runtime.db, runtime.audit, runtime.clock)
    try:
        service.register(DeviceContext("001010000000001", T, apn="iot", group="meters"),
                         address="10.64.0.2")
        service.store.put(policy_from_dict(body("192.0.2.0/24")), actor="apikey:test")
        ok = service.engine.decide(src_addr="10.64.0.2", dst_addr="192.0.2.1", dst_port=1,
                                   protocol=6)
        bad = service.engine.decide(src_addr="10.64.0.2", dst_addr="203.0.113.1", dst_port=23,
                                    protocol=6)
        assert (True, False) == (ok.allowed, bad.allowed)
        verdicts = service.engine.ingest([FlowRecord(1.0, 2.0, "10.64.0.2", "203.0.113.2", 5,
                                                     2323, 6, 1, 60)])
        assert "destination" == verdicts[0].decision.reason
        service.dispatcher.flush()
        actions = [e.action for e in runtime.audit.query(tenant_id=T, limit=100)]
        assert "policy.change" in actions
        assert actions.count("policy.violation") == 2
        assert not runtime.audit.verify()
        # a fresh service (another process) sees the stored version
        again = build_policy_service(runtime.db, runtime.audit, runtime.clock)
        assert [1] == [p.version for p in again.policies.policies()]
        again.close()
    finally:
        service.close()
