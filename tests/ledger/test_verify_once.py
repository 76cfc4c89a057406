"""Each message's signatures are verified once per node (docs/ledger.md, "Ingest pipeline").

A message verified but not stored (refused by a later rule, or evicted while
waiting for parents) comes back with the same id and the same bytes; the node
remembers the outcome instead of verifying again, and every other rule still
applies to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

import simtrust.ledger._ingest as ingest_module
from simtrust.ledger import (
    Ed25519Signer,
    LedgerNode,
    PayloadType,
    decode_message,
    encode_tagged_data,
    message_id,
    signing_bytes,
)
from simtrust.ledger._pool import SignatureMemo, UnlockJob, verify_chunk
from tests.ledger.conftest import ManualClock, NodeFactory
from tests.ledger.test_validation import data_msg


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every raw message the node hands to signature verification, in order."""
    seen: list[bytes] = []

    def counting(raws: Sequence[bytes], unlocks: Sequence[UnlockJob]) -> tuple[bytes, bytes]:
        seen.extend(raws)
        return verify_chunk(raws, unlocks)

    monkeypatch.setattr(ingest_module, "verify_chunk", counting)
    return seen


def test_a_message_refused_for_its_time_is_not_verified_again(
    node: LedgerNode, clock: ManualClock, verified: list[bytes]
) -> None:
    raw = data_msg(node, issued_at_ms=clock.ms + 60_000)  # a minute ahead: too early
    assert "timestamp-skew" == node.submit_many([raw])[0].reason
    assert "timestamp-skew" == node.submit_many([raw])[0].reason
    assert [raw] == verified
    clock.advance(seconds=45)  # now within the skew window: admitted, still not re-verified
    assert "accepted" == node.submit_many([raw])[0].status
    assert [raw] == verified


def test_a_forged_message_is_refused_again_without_verifying(
    node: LedgerNode, verified: list[bytes]
) -> None:
    forged = bytearray(data_msg(node))
    forged[-1] ^= 1
    for _ in range(3):
        result = node.submit_many([bytes(forged)])[0]
        assert ("rejected", "signature") == (result.status, result.reason)
    assert 1 == len(verified)
    assert node.snapshot().messages == 0


def test_an_evicted_message_comes_back_without_a_second_check(
    make_node: NodeFactory, verified: list[bytes]
) -> None:
    node = make_node(buffer_max=1)
    first = data_msg(node, parents=[b"\x07" * 32])
    second = data_msg(node, parents=[b"\x08" * 32])
    assert ["pending", "pending"] == [r.status for r in node.submit_many([first, second])]
    assert 1 == node.stats["evicted"]  # ``first`` made room for ``second``
    assert "pending" == node.submit_many([first])[0].status
    assert [first, second] == verified


def test_ids_given_by_the_caller_give_the_same_results(node: LedgerNode) -> None:
    raws = [data_msg(node) for _ in range(5)]
    results = node.submit_many(raws, [message_id(r) for r in raws])
    assert [message_id(r) for r in raws] == [r.message_id for r in results]
    assert {"accepted"} == {r.status for r in results}
    assert ["duplicate"] * 5 == [r.status for r in node.submit_many(raws)]


def test_decode_message_takes_a_known_id() -> None:
    signer = Ed25519Signer(b"\x05" * 32)
    body = signing_bytes(b"\x00" * 8, signer.public_key, 1, [b"\x01" * 32],
                         PayloadType.TAGGED_DATA, encode_tagged_data(b"t", b"x"))
    raw = body + signer.sign(body)
    assert decode_message(raw) == decode_message(raw, message_id(raw))


def test_signature_memo_forgets_the_oldest_beyond_its_limit() -> None:
    memo = SignatureMemo(limit=2)
    memo.put(b"a", True)
    memo.put(b"b", False)
    memo.put(b"c", True)
    assert (None, False, True) == (memo.get(b"a"), memo.get(b"b"), memo.get(b"c"))
    assert 2 == len(memo)
