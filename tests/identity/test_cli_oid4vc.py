"""``simtrust vc offer | request | statement | capability-grant | capability-check``."""

from __future__ import annotations

import json
from pathlib import Path

from simtrust.identity import Ed25519Signer, did_key

from .test_cli import simtrust


def test_identity_service_commands(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert 0 == simtrust("init", home=home).returncode
    claims = tmp_path / "claims.json"
    claims.write_text(json.dumps({"kyc_level": "basic", "given_name": "Ada"}))
    made = simtrust("vc", "offer", "SimtrustKyc", "--claims", str(claims), "--tx-code", home=home)
    assert 0 == made.returncode, made.stderr
    offer = json.loads(made.stdout)
    assert offer["offerUrl"].startswith("openid-credential-offer://")
    assert 6 == len(offer["txCode"])
    bad = simtrust("vc", "offer", "Nope", "--claims", str(claims), home=home)
    assert (2, 1) == (bad.returncode, len(bad.stderr.strip().splitlines()))

    query = tmp_path / "q.json"
    query.write_text(json.dumps({"credentials": [{"id": "kyc", "format": "dc+sd-jwt",
                                                  "meta": {"vct_values": ["x"]}}]}))  # fmt: skip
    asked = json.loads(simtrust("vc", "request", "--dcql", str(query), "--relying-party",
                                "did:web:rp.example", home=home).stdout)  # fmt: skip
    assert asked["authorizationRequest"].startswith("openid4vp://")
    looked = simtrust("vc", "request-result", asked["id"], home=home)
    assert 0 == looked.returncode, looked.stderr
    result = json.loads(looked.stdout)
    assert "pending" == result["status"]

    stated = simtrust("vc", "statement", "--start", "2026-01-01T00:00:00Z", "--end",
                      "2027-01-01T00:00:00Z", "--price", "50", home=home)  # fmt: skip
    assert (0, "VerificationStatement") == (stated.returncode, json.loads(stated.stdout)["type"])
    assert 2 == simtrust("vc", "statement", "--start", "yesterday", "--end", "x", "--price", "1",
                         home=home).returncode  # fmt: skip

    grantee = did_key(Ed25519Signer.generate().public_key)
    granted = simtrust("vc", "capability-grant", grantee, "urn:simtrust:stream:s1", "--action",
                       "read", home=home)  # fmt: skip
    assert 0 == granted.returncode, granted.stderr
    chain = tmp_path / "chain.json"
    chain.write_text(json.dumps([json.loads(granted.stdout)]))
    permit = simtrust("vc", "capability-check", str(chain), "--action", "read", "--resource",
                      "urn:simtrust:stream:s1", home=home)  # fmt: skip
    deny = simtrust("vc", "capability-check", str(chain), "--action", "write", "--resource",
                    "urn:simtrust:stream:s1", home=home)  # fmt: skip
    assert (0, "permit", 1, "deny") == (
        permit.returncode, json.loads(permit.stdout)["decision"],
        deny.returncode, json.loads(deny.stdout)["decision"],
    )  # fmt: skip


def test_offer_flags_and_vc_jwt_issue(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert 0 == simtrust("init", home=home).returncode
    claims = tmp_path / "claims.json"
    claims.write_text(json.dumps({"kyc_level": "basic", "given_name": "Ada"}))
    made = simtrust("vc", "offer", "SimtrustKyc", "--claims", str(claims), "--tenant", "acme",
                    "--authorization-code", "--deferred", home=home)  # fmt: skip
    assert 0 == made.returncode, made.stderr
    grants = json.loads(made.stdout)["credentialOffer"]["grants"]
    assert ["authorization_code"] == list(grants)
    assert grants["authorization_code"]["issuer_state"]
    refused = simtrust("vc", "offer", "SimtrustKyc", "--claims", str(claims),
                       "--authorization-code", home=home)  # fmt: skip
    assert (2, 1) == (refused.returncode, len(refused.stderr.strip().splitlines()))
    assert "tenant" in refused.stderr

    unsigned = tmp_path / "vc.json"
    unsigned.write_text(json.dumps({
        "@context": ["https://www.w3.org/ns/credentials/v2",
                     "https://www.w3.org/ns/credentials/examples/v2"],
        "type": ["VerifiableCredential", "ExampleCredential"],
        "credentialSubject": {"id": "did:example:s", "name": "Ada"}}))  # fmt: skip
    issued = simtrust("vc", "issue", str(unsigned), "--securing", "vc+jwt", "--json", home=home)
    assert 0 == issued.returncode, issued.stderr
    envelope = json.loads(issued.stdout)
    assert envelope["id"].startswith("data:application/vc+jwt,")
    envelope_file = tmp_path / "enveloped.json"
    envelope_file.write_text(issued.stdout)
    assert 0 == simtrust("vc", "verify", str(envelope_file), "--json", home=home).returncode
    bad = simtrust("vc", "issue", str(unsigned), "--securing", "cose", home=home)
    assert (2, 1) == (bad.returncode, len(bad.stderr.strip().splitlines()))
