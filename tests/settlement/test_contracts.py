"""Contracts on the ledger (issue 15 items 1, 2): a roaming agreement signed by both parties
as a state chain, a stale or refused transition recorded as rejected with its reason and
never half-applied, and the same finalized order giving the same states everywhere."""

from __future__ import annotations

import json

import pytest

from simtrust.errors import InvalidInput, NotFound
from simtrust.identity import did_key
from simtrust.ledger import Ed25519Signer
from simtrust.runtime import Runtime
from simtrust.settlement import (
    ContractEngine,
    code_hash,
    create_payload,
    roaming_agreement_code,
    transition_payload,
)

HOME, VISITED, STRANGER = (Ed25519Signer(bytes([n]) * 32) for n in (11, 12, 13))
CODE = code_hash(roaming_agreement_code)
INITIAL = {"agreement": {"id": "ra-1", "tolerance_percent": 2},
           "parties": {"home": did_key(HOME.public_key), "visited": did_key(VISITED.public_key)},
           "signed": [], "status": "proposed"}


def test_agreement_chain_on_the_ledger(sqlite_runtime: Runtime) -> None:
    node = sqlite_runtime.ledger
    engine = ContractEngine([roaming_agreement_code])
    engine.attach(node)

    def issue(payload: bytes) -> None:
        node.issue("contract", payload, signer=node.signer)

    issue(create_payload("ra-1", CODE, INITIAL))
    first = engine.state("ra-1")
    assert (0, "proposed") == (first["seq"], first["state"]["status"])
    issue(transition_payload("ra-1", first["state_hash"], {"action": "sign"}, [HOME]))
    # A second transition consuming the same state loses: stale, recorded, no effect.
    issue(transition_payload("ra-1", first["state_hash"], {"action": "sign"}, [VISITED]))
    second = engine.state("ra-1")
    assert [did_key(HOME.public_key)] == second["state"]["signed"]
    issue(transition_payload("ra-1", second["state_hash"], {"action": "sign"}, [STRANGER]))
    issue(transition_payload("ra-1", second["state_hash"], {"action": "sign"}, [VISITED]))
    final = engine.state("ra-1")
    assert ("active", 2) == (final["state"]["status"], final["seq"])
    history = engine.history("ra-1")
    assert ["applied", "applied", "rejected", "rejected", "applied"] == [
        h["status"] for h in history]
    assert ["stale-state", "not-a-party"] == [h["reason"] for h in history if "reason" in h]
    issue(create_payload("other", "00" * 32, {}))
    issue(b"not json")
    assert {"unknown-code", "malformed"} <= {r["reason"] for r in engine.rejected}
    with pytest.raises(NotFound):
        engine.state("other")

    # Four validators applying the same finalized order hold identical states.
    replicas = [ContractEngine([roaming_agreement_code]) for _ in range(4)]
    for replica in replicas:
        replica.attach(node)
    assert {engine.fingerprint()} == {r.fingerprint() for r in replicas}
    assert all(r.history("ra-1") == history for r in replicas)


def test_states_refuse_floats() -> None:
    with pytest.raises(InvalidInput):
        create_payload("x", CODE, {"amount": 1.5})
    assert json.loads(create_payload("x", CODE, {"amount": 15}))["state"] == {"amount": 15}
