"""``anchored`` means the batch root is finalized on the ledger, not merely issued: a
batch whose anchor the ledger has not finalized yet leaves ``anchored`` false, and the
anchoring scheduler's ``confirm_anchors`` annotates it once the ledger finalized it (the
score rises by the weight of ``anchored``, once)."""

from __future__ import annotations

from fractions import Fraction

from simtrust.runtime import Runtime
from tests.streams.test_energy_market import _meter, _read
from tests.streams.world import TENANT, setup_tenant


def _anchored(rt: Runtime, datum: str) -> list[bool]:
    node = rt.streams.provenance(datum)["nodes"][datum]
    return [a["satisfied"] for a in node["annotations"] if a["kind"] == "anchored"]


def test_anchored_holds_once_the_ledger_finalized_the_anchor(sqlite_runtime: Runtime) -> None:
    rt = sqlite_runtime
    setup_tenant(rt)
    meter, channel = _meter(rt, 1)
    first = _read(rt, meter, channel, 1_000, 100)
    streams = rt.streams
    # A stand-in for a consortium ledger that has not finalized the anchor yet.
    ledger_state = streams._anchor_state
    finalized: set[bytes] = set()
    streams._anchor_state = (
        lambda message: "finalized" if message in finalized else "pending")
    before = streams.score(first)
    batch = streams.anchor(channel, actor="t")
    assert [False] == _anchored(rt, first)
    assert before == streams.score(first)
    assert 0 == streams.confirm_anchors()

    anchor = bytes.fromhex(batch["anchor"])
    assert "finalized" == ledger_state(anchor)  # the sole validator finalizes at once
    finalized.add(anchor)
    assert 1 == streams.confirm_anchors()
    assert 0 == streams.confirm_anchors()
    assert [False, True] == _anchored(rt, first)
    weights = streams.policy(TENANT).weights
    assert Fraction(weights["anchored"], sum(weights.values())) == (
        streams.score(first) - before)

    # With the ledger's own answer, a final anchor is annotated at once.
    streams._anchor_state = ledger_state
    second = _read(rt, meter, channel, 1_010, 110)
    streams.anchor(channel, actor="t")
    assert [True] == _anchored(rt, second)
    assert 0 == streams.confirm_anchors()
