"""Contracts on the ledger (issue 15 items 1, 2): a roaming agreement signed by both parties
as a state chain, a stale or refused transition recorded as rejected with its reason and
never half-applied, and the same finalized order giving the same states everywhere."""

from __future__ import annotations

import json
from typing import Any

import pytest

from simtrust.errors import InvalidInput, NotFound
from simtrust.identity import did_key
from simtrust.ledger import Ed25519Signer
from simtrust.runtime import Runtime
from simtrust.settlement import (
    ContractEngine,
    ContractRejected,
    TransitionContext,
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


def _deadline_code(state: dict[str, Any], data: dict[str, Any], signers: frozenset[str],
                   context: TransitionContext) -> dict[str, Any]:
    """Test code: a bid accepted until the state's deadline, by the ledger's time."""
    if context.time_ms >= state["deadline_ms"]:
        raise ContractRejected("too-late")
    return {**state, "bids": [*state["bids"], [context.order, context.time_ms, data["bid"]]]}


def test_time_comes_from_the_finalized_order(sqlite_runtime: Runtime) -> None:
    """Code asking for a context gets the order and the ledger time (the latest signed issue
    time so far): the same on every replica, never earlier than an earlier transition's."""
    node = sqlite_runtime.ledger
    engine = ContractEngine([_deadline_code, roaming_agreement_code])
    engine.attach(node)
    code = code_hash(_deadline_code)
    node.issue("contract", create_payload("auction", code, {"deadline_ms": 2**52, "bids": []}),
               signer=node.signer)
    node.issue("contract", create_payload("closed", code, {"deadline_ms": 0, "bids": []}),
               signer=node.signer)
    for bid in (5, 7):
        state = engine.state("auction")
        node.issue("contract", transition_payload("auction", state["state_hash"], {"bid": bid},
                                                  [HOME]), signer=node.signer)
    node.issue("contract", transition_payload("closed", engine.state("closed")["state_hash"],
                                              {"bid": 1}, [HOME]), signer=node.signer)
    bids = engine.state("auction")["state"]["bids"]
    assert [5, 7] == [b[2] for b in bids]
    assert bids[0][0] < bids[1][0]
    assert bids[0][1] <= bids[1][1] <= engine.time_ms()
    history = engine.history("auction")
    assert [h["order"] for h in history[1:]] == [b[0] for b in bids]
    assert all(h["at"].endswith("Z") for h in history)
    assert ["too-late"] == [h.get("reason") for h in engine.history("closed")[1:]]
    # codes without a fourth parameter keep their three-argument call (the roaming agreement)
    node.issue("contract", create_payload("ra-9", CODE, INITIAL), signer=node.signer)
    node.issue("contract", transition_payload("ra-9", engine.state("ra-9")["state_hash"],
                                              {"action": "sign"}, [HOME]), signer=node.signer)
    assert [did_key(HOME.public_key)] == engine.state("ra-9")["state"]["signed"]
    replicas = [ContractEngine([_deadline_code, roaming_agreement_code]) for _ in range(3)]
    for replica in replicas:
        replica.attach(node)
    assert {engine.fingerprint()} == {r.fingerprint() for r in replicas}
    assert all(r.history("auction") == history and r.time_ms() == engine.time_ms()
               for r in replicas)


def test_integers_beyond_json_precision_are_rejected_not_raised(sqlite_runtime: Runtime) -> None:
    """A payload whose state or input holds an integer beyond 2**53 − 1 is recorded as
    rejected on the ledger (it would otherwise escape the handler) and refused locally."""
    node = sqlite_runtime.ledger
    engine = ContractEngine([roaming_agreement_code])
    engine.attach(node)
    big = b'{"code":"%s","contract":"big","op":"create","state":{"n":9007199254740993}}' % (
        CODE.encode())
    node.issue("contract", big, signer=node.signer)
    assert "rejected" == engine.rejected[-1]["status"]
    with pytest.raises(NotFound):
        engine.state("big")
    with pytest.raises(InvalidInput):
        create_payload("big", CODE, {"n": 2**60})
    node.issue("contract", create_payload("ra-2", CODE, INITIAL), signer=node.signer)
    assert "proposed" == engine.state("ra-2")["state"]["status"]
