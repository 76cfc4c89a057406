"""CA labels are per tenant: a tenant registering a label another tenant uses
answers exactly as for an unused one; EST paths and CRL URLs name a CA by its
store-wide EST label ``<tenant>.<label>``, and an authenticated device may use
its own tenant's label alone. Stores from before keep their labels as EST
labels (bootstrap migration 3, on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from simtrust.api import create_app
from simtrust.bootstrap import CertProfile, EstRequest, parse_certs_only
from simtrust.bootstrap._schema import MIGRATIONS
from simtrust.errors import NotFound
from simtrust.store import Database, apply_migrations

from .conftest import LABEL, OTHER, TENANT, Env, add_sim


@pytest.fixture
def api(env: Env) -> Any:
    with TestClient(create_app(env.rt)) as client:
        yield client


def _key(env: Env, tenant: str) -> dict[str, str]:
    key = env.rt.tenants.create_key("tenant-admin", "k", tenant)
    return {"Authorization": f"Bearer {key.secret}"}


def _shape(body: dict[str, Any]) -> dict[str, Any]:
    """An answer with what differs between any two new CAs masked."""
    return dict(body, ca_id="X", subject="X", not_after="X", certificate_pem="X",
                label="L", est_label=body["est_label"].replace(body["label"], "L"))


def test_a_label_another_tenant_uses_answers_like_an_unused_one(env: Env, api: Any) -> None:
    globex = _key(env, OTHER)
    used = api.post("/v1/pki/cas", json={"label": LABEL, "common_name": "G"}, headers=globex)
    unused = api.post("/v1/pki/cas", json={"label": "fresh", "common_name": "G"},
                      headers=globex)
    assert (201, 201) == (used.status_code, unused.status_code), used.text
    assert _shape(used.json()) == _shape(unused.json())
    assert f"{OTHER}.{LABEL}" == used.json()["est_label"]
    again = api.post("/v1/pki/cas", json={"label": LABEL}, headers=globex)
    assert 409 == again.status_code  # its own label
    acme_ca = api.get(f"/v1/pki/cas/{LABEL}", headers=_key(env, TENANT)).json()
    globex_ca = api.get(f"/v1/pki/cas/{LABEL}", headers=globex).json()
    assert (TENANT, OTHER) == (acme_ca["tenant_id"], globex_ca["tenant_id"])


def test_an_est_label_of_another_tenant_answers_like_a_missing_one(env: Env, api: Any) -> None:
    globex = _key(env, OTHER)
    foreign = api.get(f"/v1/pki/cas/{TENANT}.{LABEL}", headers=globex)
    missing = api.get(f"/v1/pki/cas/{TENANT}.nothing", headers=globex)
    assert (404, 404) == (foreign.status_code, missing.status_code)
    assert foreign.json()["detail"].replace(LABEL, "X") == \
        missing.json()["detail"].replace("nothing", "X")
    operator = {"Authorization":
                f"Bearer {env.rt.tenants.create_key('operator-admin', 'op', None).secret}"}
    by_tenant = api.get(f"/v1/pki/cas/{LABEL}", params={"tenant_id": TENANT}, headers=operator)
    by_est = api.get(f"/v1/pki/cas/{TENANT}.{LABEL}", headers=operator)
    assert by_tenant.json() == by_est.json()
    assert 200 == api.get(f"/v1/pki/cas/{TENANT}.{LABEL}/crl").status_code


def test_est_resolves_a_bare_label_in_the_devices_own_tenant(env: Env) -> None:
    globex_ca = env.boot.cas.create_hosted(OTHER, LABEL, common_name="Globex Device CA",
                                           profile=CertProfile(), actor="test")
    acme_ca = env.boot.cas.find(TENANT, LABEL)
    add_sim(env.subs, 8, OTHER)
    with env.client(env.applet(8)) as globex_device:
        globex_device.bootstrap()
        cert = globex_device.enroll(LABEL, "tls")
    assert globex_ca.certificate.subject == cert.issuer
    with env.client(env.applet(1)) as acme_device:
        acme_device.bootstrap()
        cert = acme_device.enroll(LABEL, "tls")
        assert acme_ca.certificate == acme_device.cacerts(acme_ca.est_label)[0]
    assert acme_ca.certificate.subject == cert.issuer
    handle = env.boot.server.handle
    bare = handle(EstRequest("GET", f"/.well-known/est/{LABEL}/cacerts", {}))
    assert 404 == bare.status  # unauthenticated: only the EST label names the CA
    answer = handle(EstRequest("GET", f"/.well-known/est/{OTHER}.{LABEL}/cacerts", {}))
    assert globex_ca.certificate == parse_certs_only(answer.body)[0]


def test_migration_keeps_old_labels_as_est_labels(db: Database) -> None:
    apply_migrations(db, [m for m in MIGRATIONS if m.version < 3])
    db.execute(
        "INSERT INTO boot_cas (ca_id, tenant_id, label, mode, cert_pem, profile, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        ("ca-old", TENANT, "old-label", "hosted", "-", json.dumps({}), "2026-01-01T00:00:00"))
    apply_migrations(db, MIGRATIONS)
    row = db.query_one("SELECT tenant_id, name, label FROM boot_cas WHERE ca_id = 'ca-old'")
    assert (TENANT, "old-label", "old-label") == tuple(row or ())
    db.execute(
        "INSERT INTO boot_cas (ca_id, tenant_id, label, name, mode, cert_pem, profile,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ("ca-new", OTHER, f"{OTHER}.old-label", "old-label", "hosted", "-", "{}", "x"))
    with pytest.raises(Exception, match=r"(?i)unique"):
        db.execute(
            "INSERT INTO boot_cas (ca_id, tenant_id, label, name, mode, cert_pem, profile,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ("ca-dup", OTHER, f"{OTHER}.dup", "old-label", "hosted", "-", "{}", "x"))


def test_find_never_reads_another_tenants_label(env: Env) -> None:
    with pytest.raises(NotFound) as foreign:
        env.boot.cas.find(OTHER, LABEL)
    with pytest.raises(NotFound) as missing:
        env.boot.cas.find(OTHER, "nothing-here")
    assert foreign.value.detail.replace(LABEL, "X") == \
        missing.value.detail.replace("nothing-here", "X")
