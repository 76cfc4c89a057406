"""The OpenID4VCI/VP and capability state on both stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta

import pytest

from simtrust.identity import (
    KYC_VCT,
    PRE_AUTHORIZED_GRANT,
    EcdsaP256Signer,
    Ed25519Signer,
    ProtocolError,
    capability_token,
    create_presentation,
    key_proof,
    open_request_object,
    present_sd_jwt,
    verification_statement,
)
from simtrust.runtime import Runtime


def test_issue_present_bill_and_enforce(runtime: Runtime) -> None:
    service = runtime.identity
    now = service.now()
    wallet = EcdsaP256Signer.generate()
    made = service.oid4vci.create_offer(
        "SimtrustKyc", {"kyc_level": "basic", "given_name": "Ada"}, now=now, deferred=True
    )
    code = made["credentialOffer"]["grants"][PRE_AUTHORIZED_GRANT]["pre-authorized_code"]
    token = service.oid4vci.redeem({"pre-authorized_code": code}, now=now)["access_token"]

    def request() -> dict[str, object]:
        proof = key_proof(wallet, issuer_url=service.public_url,
                          nonce=service.oid4vci.nonce(now=now)["c_nonce"], now=now)  # fmt: skip
        return {"credential_configuration_id": "SimtrustKyc", "proofs": {"jwt": [proof]}}

    pending = service.oid4vci.credential(token, request(), now=now)
    transaction = {"transaction_id": pending["transaction_id"]}
    assert "transaction_id" in service.oid4vci.deferred_credential(token, transaction, now=now)
    service.oid4vci.approve(made["offerId"], now=now)
    sd_jwt = service.oid4vci.deferred_credential(token, transaction, now=now)["credentials"][0][
        "credential"
    ]
    with pytest.raises(ProtocolError, match="already issued"):
        service.oid4vci.deferred_credential(token, transaction, now=now)

    query = {"credentials": [{"id": "kyc", "format": "dc+sd-jwt",
                              "meta": {"vct_values": [KYC_VCT]},
                              "claims": [{"path": ["given_name"]}]}]}  # fmt: skip
    made_request = service.oid4vp.create_request("did:web:rp.example", now=now, dcql_query=query)
    asked = open_request_object(
        service.oid4vp.request_object(made_request["id"], now=now), service.resolver
    )
    shown = present_sd_jwt(sd_jwt, disclose=["given_name"], holder=wallet, nonce=asked["nonce"],
                           audience=asked["client_id"], now=now)  # fmt: skip
    service.oid4vp.respond(made_request["id"],
                           {"vp_token": json.dumps({"kyc": [shown]}), "state": asked["state"]},
                           now=now)  # fmt: skip
    outcome = service.oid4vp.result(made_request["id"], "did:web:rp.example")
    assert ("verified", "Ada") == (
        outcome["status"], outcome["credentials"]["kyc"][0]["claims"]["given_name"]
    )  # fmt: skip
    rows = service.receipts.between(now - timedelta(hours=1), now + timedelta(hours=1))
    statement = verification_statement(rows, start=now - timedelta(hours=1),
                                       end=now + timedelta(hours=1), price_minor_units=7,
                                       currency="EUR")  # fmt: skip
    line = statement["lines"][0]
    assert ("did:web:rp.example", KYC_VCT, 1) == (
        line["relyingParty"], line["credentialType"], line["verifications"] + line["pending"]
    )  # fmt: skip

    root = service.grant_capability(grantee="did:example:partner", resource="urn:r",
                                    actions=["read"])  # fmt: skip
    chain = capability_token([root])
    # The grant starts at the service clock's "now", which is later than ``now`` above.
    now = service.now()
    assert service.capabilities.check(chain, action="read", resource="urn:r/x", now=now).permit
    service.set_status(root["credentialStatus"], True)
    assert not service.capabilities.check(chain, action="read", resource="urn:r", now=now).permit


def test_w3c_device_credential_presented_over_oid4vp(sqlite_runtime: Runtime) -> None:
    """ldp_vc: a Data Integrity presentation with challenge = nonce, domain = client id (B.1)."""
    service = sqlite_runtime.identity
    now = service.now()
    wallet = Ed25519Signer.generate()
    made = service.oid4vci.create_offer(
        "DeviceCredential", {"imei": "490154203237518", "model": "meter-x1"}, now=now
    )
    code = made["credentialOffer"]["grants"][PRE_AUTHORIZED_GRANT]["pre-authorized_code"]
    token = service.oid4vci.redeem({"pre-authorized_code": code}, now=now)["access_token"]
    proof = key_proof(wallet, issuer_url=service.public_url,
                      nonce=service.oid4vci.nonce(now=now)["c_nonce"], now=now)  # fmt: skip
    credential = service.oid4vci.credential(
        token, {"credential_configuration_id": "DeviceCredential", "proofs": {"jwt": [proof]}},
        now=now,
    )["credentials"][0]["credential"]  # fmt: skip
    query = {"credentials": [{
        "id": "device", "format": "ldp_vc",
        "meta": {"type_values": [["VerifiableCredential", "DeviceCredential"]]},
        "claims": [{"path": ["credentialSubject", "model"], "values": ["meter-x1"]}],
    }]}  # fmt: skip

    def answer(signer: Ed25519Signer) -> dict[str, object]:
        made_request = service.oid4vp.create_request("tenant:t1", now=now, dcql_query=query)
        asked = open_request_object(
            service.oid4vp.request_object(made_request["id"], now=now), service.resolver
        )
        vp = create_presentation([credential], signer, now=now, challenge=asked["nonce"],
                                 domain=asked["client_id"])  # fmt: skip
        form = {"vp_token": json.dumps({"device": [vp]}), "state": asked["state"]}
        with contextlib.suppress(ProtocolError):
            service.oid4vp.respond(made_request["id"], form, now=now)
        return service.oid4vp.result(made_request["id"], "tenant:t1")

    good = answer(wallet)
    assert ("verified", "DeviceCredential") == (
        good["status"], good["credentials"]["device"][0]["credentialType"]
    )  # fmt: skip
    stolen = answer(Ed25519Signer.generate())  # not the subject: holder binding fails
    assert "failed" == stolen["status"]
    assert "holder" in stolen["error"]


def test_p256_issuer_key_is_sealed_in_the_store(runtime: Runtime) -> None:
    """The platform's P-256 key (ECDSA suites) is made once and kept sealed on both stores."""
    service = runtime.identity
    first = service.p256_issuer()
    assert first.public_key == service.p256_issuer().public_key
    rows = runtime.db.query(
        "SELECT public_key, sealed FROM identity_se_key WHERE label = 'assertion-p256'")
    assert [first.public_key] == [bytes(r[0]) for r in rows]
    assert first.public_key not in bytes(rows[0][1])
    credential = {"@context": ["https://www.w3.org/ns/credentials/v2",
                               "https://www.w3.org/ns/credentials/examples/v2"],
                  "type": ["VerifiableCredential", "ExampleCredential"],
                  "credentialSubject": {"id": "did:example:s", "name": "Ada"}}  # fmt: skip
    vc = service.issue(credential, {"cryptosuite": "ecdsa-rdfc-2019"})
    assert service.web_did() == service.verify_credential(vc).issuer
