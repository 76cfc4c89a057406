"""Tip selection: uniform among recent tips, bounded by age; the tangle's children index."""

from __future__ import annotations

import random
from collections import Counter

from simtrust.ledger import LedgerNode
from simtrust.ledger._tangle import TipPool
from tests.ledger.conftest import ManualClock


def test_select_is_uniform_among_recent_tips() -> None:
    pool = TipPool()
    tips = [bytes([i]) * 32 for i in range(10)]
    for i, t in enumerate(tips):
        pool.add(t, 1_000 + i, [])
    rng = random.Random(1)
    counts: Counter[bytes] = Counter()
    for _ in range(4_000):
        counts.update(pool.select(rng, 1_009, 10_000, 2))
    assert set(tips) == set(counts)
    assert max(counts.values()) < 1.25 * min(counts.values())


def test_select_skips_tips_older_than_the_bound() -> None:
    pool = TipPool()
    pool.add(b"\x01" * 32, 1_000, [])
    pool.add(b"\x02" * 32, 9_000, [])
    assert [b"\x02" * 32] == pool.select(random.Random(0), 10_000, 5_000, 4)


def test_approved_messages_leave_the_tip_set(node: LedgerNode) -> None:
    a = node.issue_data(b"t", b"a")
    assert [a] == node.tips()
    b = node.issue_data(b"t", b"b")
    assert [b] == node.tips()
    assert [b] == node.children(a)
    assert (a,) == node.get_message(b).parents


def test_submit_chooses_recent_parents(node: LedgerNode, clock: ManualClock) -> None:
    old = node.issue_data(b"t", b"old")
    clock.advance(seconds=301)  # beyond tip_max_age: no recent tip
    assert [node.genesis_id] == node.select_parents()
    fresh = node.issue_data(b"t", b"fresh")
    assert (node.genesis_id,) == node.get_message(fresh).parents
    assert sorted([old, fresh]) == node.tips()
    nxt = node.issue_data(b"t", b"next")
    assert (fresh,) == node.get_message(nxt).parents


def test_parents_are_at_most_the_configured_count(node: LedgerNode) -> None:
    for i in range(12):
        node.issue(0, bytes([0, 0, 0, 0, 1, i]), parents=[node.genesis_id])
    assert 12 == len(node.tips())
    chosen = node.select_parents()
    assert 4 == len(chosen)
    assert chosen == sorted(chosen)
