"""``simtrust vc capability-check`` receipts; ``simtrust audit receipt | check-receipt``."""

from __future__ import annotations

import json
from pathlib import Path

from simtrust.identity import Ed25519Signer, did_key
from tests.identity.test_cli import simtrust


def test_cli_receipt_fetch_prove_and_verify(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert 0 == simtrust("init", home=home).returncode
    grantee = did_key(Ed25519Signer.generate().public_key)
    granted = simtrust("vc", "capability-grant", grantee, "urn:simtrust:stream:s9", "--action",
                       "read", home=home)  # fmt: skip
    chain = tmp_path / "chain.json"
    chain.write_text(json.dumps([json.loads(granted.stdout)]))
    denied = simtrust("vc", "capability-check", str(chain), "--action", "write", "--resource",
                      "urn:simtrust:stream:s9", home=home)  # fmt: skip
    answer = json.loads(denied.stdout)
    assert (1, "deny") == (denied.returncode, answer["decision"])

    fetched = simtrust("audit", "receipt", answer["receiptId"], "--json", home=home)
    assert (0, answer["receipt"]) == (fetched.returncode, json.loads(fetched.stdout)["receipt"])
    compact = tmp_path / "receipt.txt"
    compact.write_text(answer["receipt"])
    ok = simtrust("audit", "check-receipt", str(compact), "--json", home=home)
    assert (0, "deny") == (ok.returncode, json.loads(ok.stdout)["receipt"]["decision"])
    head, payload, signature = answer["receipt"].split(".")
    flipped = "B" if signature[10] != "B" else "C"
    compact.write_text(f"{head}.{payload}.{signature[:10]}{flipped}{signature[11:]}")
    bad = simtrust("audit", "check-receipt", str(compact), "--json", home=home)
    assert (1, False) == (bad.returncode, json.loads(bad.stdout)["verified"])

    assert 0 == simtrust("audit", "anchor", "--json", home=home).returncode
    proved = simtrust("audit", "receipt", answer["receiptId"], "--proof", "--json", home=home)
    document = json.loads(proved.stdout)
    proof = tmp_path / "proof.json"
    proof.write_text(proved.stdout)
    node = json.loads(ok.stdout)["receipt"]["node"]
    checked = simtrust("audit", "check-receipt", str(proof), "--node", node, "--json", home=home)
    assert (0, document["proof"]["anchor"]["message_id"]) == (
        checked.returncode, json.loads(checked.stdout)["anchor"]["message_id"])
    stranger = "00" * 32
    refused = simtrust("audit", "check-receipt", str(proof), "--node", stranger, "--json",
                       home=home)  # fmt: skip
    assert 1 == refused.returncode
