"""Arbitrary and mutated bytes into the node never crash it or corrupt its state."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.ledger import LedgerNode, Output, PayloadType, encode_transaction, output_id

_fixture_ok = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)


@_fixture_ok
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_arbitrary_batches(node: LedgerNode, batch: list[bytes]) -> None:
    before = node.snapshot()
    results = node.submit_many(batch)
    assert len(batch) == len(results)
    assert {"rejected"} >= {r.status for r in results}
    assert before == node.snapshot()


@_fixture_ok
@given(st.data())
def test_mutated_valid_messages(node: LedgerNode, data: st.DataObject) -> None:
    tx = encode_transaction([output_id(node.genesis_id, 0)], [Output(b"\x05" * 32, 10**15)])
    raw = bytearray(node.build(PayloadType.TRANSACTION, tx))
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    results = node.submit_many([bytes(raw)])
    assert results[0].status in ("rejected", "pending", "accepted", "duplicate")
    assert node.snapshot() == node.recompute()
    assert node.utxo.total_supply() == 10**15
