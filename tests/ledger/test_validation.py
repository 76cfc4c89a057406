"""Every rejection reason of docs/ledger.md "Validation", one test each, plus solidification."""

from __future__ import annotations

import multiprocessing

import pytest

from simtrust.errors import Rejected
from simtrust.ledger import (
    Ed25519Signer,
    LedgerNode,
    Output,
    PayloadType,
    Unlock,
    decode_message,
    encode_tagged_data,
    encode_transaction,
    network_id_from_name,
    output_id,
    signing_bytes,
)
from tests.ledger.conftest import ManualClock, NodeFactory

DATA = encode_tagged_data(b"t", b"payload")


_counter = [0]


def data_msg(node: LedgerNode, signer: Ed25519Signer | None = None, **kw: object) -> bytes:
    """A fresh tagged-data message (a counter keeps every one distinct)."""
    _counter[0] += 1
    payload = encode_tagged_data(b"t", _counter[0].to_bytes(8, "big"))
    return node.build(PayloadType.TAGGED_DATA, payload, signer=signer, **kw)  # type: ignore[arg-type]


def reason_of(node: LedgerNode, raw: bytes) -> str:
    with pytest.raises(Rejected) as info:
        node.submit(raw)
    return info.value.reason


def test_accepts_and_finalizes_a_valid_message(node: LedgerNode) -> None:
    result = node.submit(data_msg(node))
    assert "accepted" == result.status
    assert "finalized" == node.status(result.message_id or b"")["state"]


def test_duplicate_is_idempotent(node: LedgerNode) -> None:
    raw = data_msg(node)
    node.submit(raw)
    assert "duplicate" == node.submit(raw).status
    assert 1 == node.info()["messages"]


def test_reason_encoding(node: LedgerNode) -> None:
    assert "encoding" == reason_of(node, b"\x01garbage")


def test_reason_size(node: LedgerNode) -> None:
    assert "size" == reason_of(node, b"\x01" * 40_000)


def test_reason_signature(node: LedgerNode) -> None:
    raw = bytearray(data_msg(node))
    raw[-1] ^= 1
    assert "signature" == reason_of(node, bytes(raw))


def test_reason_signature_of_unlock(node: LedgerNode, operator: Ed25519Signer) -> None:
    other = Ed25519Signer(b"\x11" * 32)
    inputs = [output_id(node.genesis_id, 0)]
    outputs = [Output(other.public_key, 10**15)]
    forged = Unlock(other.public_key, b"\x00" * 64)
    raw = node.build(PayloadType.TRANSACTION, encode_transaction(inputs, outputs, [forged]))
    assert "signature" == reason_of(node, raw)


def test_reason_signature_checked_in_pool_batches(make_node: NodeFactory) -> None:
    """The batched, multi-process path reports the same reason as the inline one."""
    node = make_node(quota_burst=10_000, pool_threshold=64, chunk=64, workers=2)
    raws = [data_msg(node) for _ in range(150)]
    bad = bytearray(raws[77])
    bad[-5] ^= 0x40
    raws[77] = bytes(bad)
    results = node.submit_many(raws)
    assert ["signature"] == [r.reason for r in results if r.status == "rejected"]
    assert 149 == sum(r.status == "accepted" for r in results)


def test_reason_network(node: LedgerNode, operator: Ed25519Signer) -> None:
    body = signing_bytes(network_id_from_name("other-net"), operator.public_key,
                         node._now_ms(), [node.genesis_id], 0, DATA)
    assert "network" == reason_of(node, body + operator.sign(body))


def test_reason_timestamp_skew_future_and_past(node: LedgerNode, clock: ManualClock) -> None:
    future = data_msg(node, issued_at_ms=clock.ms + 31_000)
    assert "timestamp-skew" == reason_of(node, future)
    past = data_msg(node, issued_at_ms=clock.ms - 601_000)
    assert "timestamp-skew" == reason_of(node, past)
    ok = data_msg(node, issued_at_ms=clock.ms + 29_000)
    assert "accepted" == node.submit(ok).status


def test_reason_parents_age_too_old(node: LedgerNode, clock: ManualClock) -> None:
    old = node.submit(data_msg(node)).message_id
    assert old is not None
    clock.advance(seconds=601)
    assert "parents-age" == reason_of(node, data_msg(node, parents=[old]))


def test_reason_parents_age_parent_newer(node: LedgerNode, clock: ManualClock) -> None:
    parent = node.submit(data_msg(node, issued_at_ms=clock.ms + 10_000)).message_id
    assert parent is not None
    assert "parents-age" == reason_of(node, data_msg(node, parents=[parent]))


def test_reason_rate_limit(make_node: NodeFactory, clock: ManualClock) -> None:
    node = make_node(quota_rate=1.0, quota_burst=3)
    spammer = Ed25519Signer(b"\x22" * 32)
    for _ in range(3):
        node.submit(data_msg(node, spammer))
    assert "rate-limit" == reason_of(node, data_msg(node, spammer))
    assert "accepted" == node.submit(data_msg(node)).status  # other issuers unaffected
    clock.advance(seconds=1)
    assert "accepted" == node.submit(data_msg(node, spammer)).status


def test_reason_payload(node: LedgerNode, operator: Ed25519Signer) -> None:
    """An unlock by the issuer itself is not canonical (its signature already unlocks)."""
    inputs = [output_id(node.genesis_id, 0)]
    outputs = [Output(operator.public_key, 10**15)]
    unlock = node.sign_unlock(operator, inputs, outputs)
    raw = node.build(PayloadType.TRANSACTION, encode_transaction(inputs, outputs, [unlock]))
    assert "payload" == reason_of(node, raw)


def test_missing_parents_wait_then_solidify(node: LedgerNode) -> None:
    unseen = data_msg(node, issued_at_ms=node._now_ms() - 1)
    unseen_id = decode_message(unseen).id
    child = data_msg(node, parents=[unseen_id])
    result = node.submit(child)
    assert "pending" == result.status
    assert (unseen_id,) == result.missing
    assert [unseen_id] == node.missing()
    assert "pending" == node.status(result.message_id or b"")["state"]
    node.submit(unseen)
    assert [] == node.missing()
    assert "finalized" == node.status(result.message_id or b"")["state"]


def test_buffer_evicts_by_count(make_node: NodeFactory) -> None:
    node = make_node(buffer_max=3)
    ghosts = [bytes([i]) * 32 for i in range(1, 6)]
    for g in ghosts:
        assert "pending" == node.submit(data_msg(node, parents=[g])).status
    assert 3 == node.info()["pending"]
    assert 2 == node.stats["evicted"]
    assert ghosts[2:] == node.missing()


def test_buffer_evicts_by_age(make_node: NodeFactory, clock: ManualClock) -> None:
    node = make_node(buffer_max_age_ms=5_000)
    node.submit(data_msg(node, parents=[b"\x09" * 32]))
    assert [b"\x09" * 32] == node.missing()
    clock.advance(seconds=6)
    assert [] == node.missing()
    assert 0 == node.info()["pending"]


def test_rejected_reasons_do_not_store(node: LedgerNode) -> None:
    before = node.snapshot()
    for raw in (b"", b"\x01" * 300):
        node.submit_many([raw])
    assert before == node.snapshot()


def test_stuck_verifier_pool_falls_back_to_inline(make_node: NodeFactory) -> None:
    """A pool that never answers (a worker died) does not hang ingest."""

    class Stuck:
        def get(self, timeout: float) -> tuple[bytes, bytes]:
            raise multiprocessing.TimeoutError

    class StuckPool:
        closed = False

        def submit(self, raws: object, unlocks: object) -> Stuck:
            return Stuck()

        def close(self) -> None:
            self.closed = True

    node = make_node(quota_burst=10_000, pool_threshold=8, chunk=8)
    pool = StuckPool()
    node.ingest._pool = pool  # type: ignore[assignment]
    raws = [data_msg(node) for _ in range(20)]
    bad = bytearray(raws[3])
    bad[-1] ^= 1
    raws[3] = bytes(bad)
    results = node.submit_many(raws)
    assert ["signature"] == [r.reason for r in results if r.status == "rejected"]
    assert 19 == sum(r.status == "accepted" for r in results)
    assert pool.closed
