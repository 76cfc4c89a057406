"""Receipts of access decisions (issue 18 item 5): returned, verifiable, provable from the
ledger after anchoring, tampering refused, denials receipted, durable across kill -9."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from simtrust.audit.receipts import issue_receipt, verify_receipt, verify_receipt_proof
from simtrust.config import load_settings
from simtrust.errors import InvalidInput, InvalidSignature
from simtrust.identity import Ed25519Signer, capability_token, did_key
from simtrust.ledger import Ed25519Signer as LedgerSigner
from simtrust.runtime import Runtime

REPO = Path(__file__).resolve().parents[2]
STREAM = "urn:simtrust:stream:meter-7"


def _granted_token(api: Any, headers: dict[str, str]) -> tuple[str, dict[str, Any]]:
    partner = Ed25519Signer.from_seed(bytes(range(5, 37)))
    granted = api.post("/capabilities", headers=headers, json={
        "grantee": did_key(partner.public_key), "resource": STREAM, "actions": ["read"]})
    assert 201 == granted.status_code, granted.text
    root = granted.json()["verifiableCredential"]
    return capability_token([root]), root


def _check(api: Any, headers: dict[str, str], token: str, action: str = "read") -> Any:
    return api.post("/capabilities/check", headers=headers,
                    json={"capability": token, "action": action, "resource": STREAM})


def _reencode(receipt: str, **changes: Any) -> str:
    _, payload, signature = receipt.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    body = json.dumps(claims, sort_keys=True, separators=(",", ":")).encode()
    return f"v1.{base64.urlsafe_b64encode(body).rstrip(b'=').decode()}.{signature}"


def test_permit_is_receipted_and_the_receipt_verifies(
    api: Any, operator_headers: dict[str, str], sqlite_runtime: Runtime
) -> None:
    token, root = _granted_token(api, operator_headers)
    answer = _check(api, operator_headers, token)
    assert 200 == answer.status_code, answer.text
    receipt, receipt_id = answer.headers["Simtrust-Receipt"], answer.headers["Simtrust-Receipt-Id"]
    assert (receipt, receipt_id) == (answer.json()["receipt"], answer.json()["receiptId"])
    node = sqlite_runtime.ledger.signer.public_key
    claims = verify_receipt(receipt, trusted_node=node)
    assert {"decision": "permit", "resource": STREAM, "action": "read", "capability": root["id"],
            "event_id": receipt_id, "node": node.hex()}.items() <= claims.items()
    assert claims["requester"].startswith("apikey:")
    assert len(claims["chain_digest"]) == 64
    checked = api.post("/capabilities/receipts/verify", headers=operator_headers,
                       json={"receipt": receipt})
    assert (200, True) == (checked.status_code, checked.json()["valid"]), checked.text
    again = api.get(f"/capabilities/receipts/{receipt_id}", headers=operator_headers)
    assert receipt == again.json()["receipt"]  # issued again, byte for byte, from the record
    assert 404 == api.get("/capabilities/receipts/nope", headers=operator_headers).status_code
    sqlite_runtime.tenants.create_tenant("acme", "Acme")
    other = sqlite_runtime.tenants.create_key("tenant-admin", "acme admin", "acme")
    stranger = {"Authorization": f"Bearer {other.secret}"}  # not the requester, not operator
    assert 404 == api.get(f"/capabilities/receipts/{receipt_id}", headers=stranger).status_code


def test_proof_from_the_ledger_after_anchoring(
    api: Any, operator_headers: dict[str, str], sqlite_runtime: Runtime
) -> None:
    token, _ = _granted_token(api, operator_headers)
    receipt_id = _check(api, operator_headers, token).headers["Simtrust-Receipt-Id"]
    early = api.get(f"/capabilities/receipts/{receipt_id}/proof", headers=operator_headers)
    assert 409 == early.status_code
    assert early.headers["content-type"].startswith(
        "application/problem+json")
    assert 200 == api.post("/v1/audit/anchor", headers=operator_headers).status_code
    got = api.get(f"/capabilities/receipts/{receipt_id}/proof", headers=operator_headers)
    assert 200 == got.status_code, got.text
    document = got.json()
    node = sqlite_runtime.ledger.signer.public_key
    offline = verify_receipt_proof(json.loads(json.dumps(document)), trusted_node=node)
    assert offline["receipt"]["event_id"] == receipt_id
    online = verify_receipt_proof(document, trusted_node=node, ledger=sqlite_runtime.ledger)
    assert online["anchor"]["issuer"] == node.hex()
    via_api = api.post("/capabilities/receipts/verify", headers=operator_headers, json=document)
    assert (200, receipt_id) == (via_api.status_code, via_api.json()["receipt"]["event_id"])


def test_tampered_receipts_and_proofs_are_refused(
    api: Any, operator_headers: dict[str, str], sqlite_runtime: Runtime
) -> None:
    token, _ = _granted_token(api, operator_headers)
    answer = _check(api, operator_headers, token)
    receipt = answer.headers["Simtrust-Receipt"]
    api.post("/v1/audit/anchor", headers=operator_headers)
    document = api.get(f"/capabilities/receipts/{answer.headers['Simtrust-Receipt-Id']}/proof",
                       headers=operator_headers).json()
    forged = _reencode(receipt, decision="deny")
    with pytest.raises(InvalidSignature):
        verify_receipt(forged)
    refused = api.post("/capabilities/receipts/verify", headers=operator_headers,
                       json={"receipt": forged})
    assert 422 == refused.status_code
    assert "signature" in refused.json()["detail"]
    stranger = LedgerSigner(bytes(32))
    event = sqlite_runtime.audit.get(answer.headers["Simtrust-Receipt-Id"])
    assert event is not None
    foreign = issue_receipt(event, stranger)
    with pytest.raises(InvalidSignature):
        verify_receipt(foreign, trusted_node=sqlite_runtime.ledger.signer.public_key)
    altered = json.loads(json.dumps(document))
    altered["event"]["details"]["action"] = "write"
    with pytest.raises(InvalidInput, match="does not match its hash"):
        verify_receipt_proof(altered)
    swapped = dict(document, receipt=issue_receipt(event, stranger))
    with pytest.raises(InvalidSignature):  # anchor not issued by the receipt's signer
        verify_receipt_proof(swapped)
    for bad in ("", "v1.x", "v2.a.b", "v1.!!.!!"):
        assert 422 == api.post("/capabilities/receipts/verify", headers=operator_headers,
                               json={"receipt": bad or "x"}).status_code


def test_denied_decisions_are_receipted(
    api: Any, operator_headers: dict[str, str], sqlite_runtime: Runtime
) -> None:
    token, root = _granted_token(api, operator_headers)
    denied = _check(api, operator_headers, token, action="write")
    assert 403 == denied.status_code
    claims = verify_receipt(denied.headers["Simtrust-Receipt"])
    assert ("deny", "write", root["id"]) == (
        claims["decision"], claims["action"], claims["capability"])
    malformed = _check(api, operator_headers, "!!")
    claims = verify_receipt(malformed.headers["Simtrust-Receipt"])
    assert ("deny", None, None) == (claims["decision"], claims["capability"],
                                    claims["chain_digest"])
    assert claims["reason"].startswith("malformed")


def test_receipts_survive_kill_9(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'src'}")
    proc = subprocess.Popen([sys.executable, "-m", "tests.audit.receipt_child", str(home)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    acked: dict[str, str] = {}
    assert proc.stdout is not None
    try:
        while len(acked) < 40:
            raw = proc.stdout.readline()
            if not raw:
                break
            _, event_id, receipt = raw.decode().split()
            acked[event_id] = receipt
        os.kill(proc.pid, signal.SIGKILL)
        rest, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    for tail in rest.decode().splitlines():
        parts = tail.split()
        if len(parts) == 3 and parts[0] == "ACK":
            acked[parts[1]] = parts[2]
    assert len(acked) >= 40, err.decode()[-2000:]
    rt = Runtime.open(load_settings(env={}, home=home))
    try:
        for event_id, receipt in acked.items():
            event = rt.audit.get(event_id)
            assert event is not None, f"answered decision {event_id} lost"
            assert receipt == issue_receipt(event, rt.ledger.signer)
        assert not rt.audit.verify()
    finally:
        rt.close()
