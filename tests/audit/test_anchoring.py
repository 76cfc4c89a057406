"""Audit anchoring: batches anchored as Merkle roots; proofs checked by an independent verifier."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from simtrust.audit.anchoring import (
    anchor_pending,
    anchor_records,
    leaf_data,
    prove_event,
    verify_event_proof,
)
from simtrust.crypto.merkle import MerkleProofError, merkle_root
from simtrust.errors import IntegrityError, InvalidInput, InvalidSignature, NotFound
from simtrust.ledger import Anchor, decode_message
from simtrust.runtime import Runtime


def _events(rt: Runtime, n: int, start: int = 0) -> list[Any]:
    return [
        rt.audit.append(actor="test", action="sim.attach", subject=f"sim-{i}", outcome="allow")
        for i in range(start, start + n)
    ]


def test_prove_and_verify_each_event(runtime: Runtime) -> None:
    events = _events(runtime, 13)
    receipt = anchor_pending(runtime.audit, runtime.ledger)
    assert receipt is not None
    assert (1, 13) == (receipt.first, receipt.last)
    assert merkle_root([leaf_data(e.seq, e.hash) for e in events]) == receipt.root
    node = runtime.ledger
    for e in events:
        proof = json.loads(json.dumps(prove_event(runtime.audit, runtime.ledger, e.event_id)))  # as printed
        verified = verify_event_proof(proof, trusted_issuer=node.signer.public_key, event=e,
                                      ledger=node)
        assert (e.seq, e.hash) == (verified.seq, verified.record_hash)
        assert receipt.message_id == verified.anchor_message_id


def test_later_batches_anchor_only_new_records(runtime: Runtime) -> None:
    _events(runtime, 3)
    anchor_pending(runtime.audit, runtime.ledger)
    assert anchor_pending(runtime.audit, runtime.ledger) is None
    late = _events(runtime, 4, start=3)
    receipt = anchor_pending(runtime.audit, runtime.ledger)
    assert receipt is not None
    assert (4, 7) == (receipt.first, receipt.last)
    proof = prove_event(runtime.audit, runtime.ledger, late[2].event_id)
    assert 2 == proof["proof"]["leaf_index"]
    verify_event_proof(proof, event=late[2])


def test_unanchored_and_unknown_events(sqlite_runtime: Runtime) -> None:
    (e,) = _events(sqlite_runtime, 1)
    with pytest.raises(NotFound):
        prove_event(sqlite_runtime.audit, sqlite_runtime.ledger, e.event_id)
    with pytest.raises(NotFound):
        prove_event(sqlite_runtime.audit, sqlite_runtime.ledger, "no-such-event")


@pytest.fixture
def proven(sqlite_runtime: Runtime) -> tuple[Runtime, Any, dict[str, Any]]:
    events = _events(sqlite_runtime, 6)
    anchor_pending(sqlite_runtime.audit, sqlite_runtime.ledger)
    return sqlite_runtime, events[4], prove_event(sqlite_runtime.audit, sqlite_runtime.ledger, events[4].event_id)


def test_tampered_proofs_fail(proven: tuple[Runtime, Any, dict[str, Any]]) -> None:
    rt, event, proof = proven
    bad = copy.deepcopy(proof)
    bad["event"]["record_hash"] = "00" * 32
    with pytest.raises(MerkleProofError):
        verify_event_proof(bad)
    bad = copy.deepcopy(proof)
    bad["proof"]["audit_path"][0] = "11" * 32
    with pytest.raises(MerkleProofError):
        verify_event_proof(bad)
    bad = copy.deepcopy(proof)
    msg = bytearray.fromhex(bad["anchor"]["message"])
    msg[-70] ^= 1  # inside the anchored root
    bad["anchor"]["message"] = msg.hex()
    with pytest.raises(InvalidSignature):
        verify_event_proof(bad)
    bad = copy.deepcopy(proof)
    bad["event"]["seq"] = event.seq + 1
    with pytest.raises(InvalidInput):
        verify_event_proof(bad)
    with pytest.raises(InvalidSignature):
        verify_event_proof(proof, trusted_issuer=b"\x00" * 32)
    other = rt.audit.get(_events(rt, 1, start=50)[0].event_id)
    with pytest.raises(InvalidInput):
        verify_event_proof(proof, event=other)


def test_altered_log_cannot_be_proven(proven: tuple[Runtime, Any, dict[str, Any]]) -> None:
    rt, event, _ = proven
    rt.db.execute("UPDATE audit_events SET hash = ? WHERE seq = 2", (b"\x00" * 32,))
    with pytest.raises(IntegrityError):
        prove_event(rt.audit, rt.ledger, event.event_id)


def test_anchor_records_checks_contiguity(sqlite_runtime: Runtime) -> None:
    node = sqlite_runtime.ledger
    with pytest.raises(InvalidInput):
        anchor_records(node, [(1, b"\x00" * 32), (3, b"\x00" * 32)])
    receipt = anchor_records(node, [(1, b"\x01" * 32), (2, b"\x02" * 32)], domain="streams")
    body = decode_message(node.get_raw(receipt.message_id)).body
    assert Anchor("streams", 1, 2, 2, receipt.root) == body
