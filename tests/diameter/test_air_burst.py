"""AIRs sent back to back are served as one batch: each answered as if alone, all audited.

The MME (python-diameter) writes a burst of AIRs in one send; the listener
hands them to the HSS together (one group commit of the AuC). Every request
still gets its own answer: vectors that verify with the tests' MILENAGE and
distinct SQNs for one SIM, the §7.4 refusal for a suspended or unknown SIM,
5005 for a malformed one, and one audit record per issued vector set.
"""

from __future__ import annotations

import threading
from typing import Any

from diameter.message import Message as PdMessage

from simtrust.diameter import Message, decode_message
from simtrust.subscriber import SimState

from ..subscriber.conftest import TENANT, imsi, spec
from .conftest import S6A, Env, Mme
from .reference import check_eutran_vector
from .test_s6a import HOME, air, experimental


def test_a_burst_of_airs_is_answered_one_by_one(env: Env, mme: Mme) -> None:
    inv = env.subs.inventory
    inv.add_sim(TENANT, spec(1), actor="test")
    inv.add_sim(TENANT, spec(2, state=SimState.SUSPENDED), actor="test")
    requests = [air(imsi(1).value), air(imsi(1).value, count=2), air(imsi(2).value),
                air(imsi(99).value), air(imsi(1).value)]
    stamped = [mme.stamp(r) for r in requests]
    # a request whose Requested-EUTRAN-Authentication-Info is absent: 5005
    bad = decode_message(mme.stamp(air(imsi(1).value)).as_bytes())
    bad_raw = Message(bad.code, bad.flags, bad.app_id, bad.hop_by_hop, bad.end_to_end,
                      [a for a in bad.avps if a.code != 1408]).encode()
    items_before = env.subs.auth.group_commit.items
    mme.send_raw(b"".join(r.as_bytes() for r in stamped) + bad_raw)
    answers: dict[int, Any] = {}
    raw_answers: dict[int, bytes] = {}
    for _ in range(len(stamped) + 1):
        raw = mme.read_raw()
        hbh = int.from_bytes(raw[12:16], "big")
        raw_answers[hbh] = raw
        answers[hbh] = PdMessage.from_bytes(raw)
    by_request = [answers[r.header.hop_by_hop_identifier] for r in stamped]
    assert [2001, 2001, None, None, 2001] == [getattr(a, "result_code", None)
                                              for a in by_request]
    assert [None, None, 5420, 5001, None] == [experimental(a) for a in by_request]
    sqns = []
    for answer, count in zip(by_request, [1, 2, 0, 0, 1], strict=True):
        vectors = answer.authentication_info.e_utran_vector if count else []
        assert count == len(vectors)
        sqns += [check_eutran_vector(v.rand, v.xres, v.autn, v.kasme, HOME) for v in vectors]
    assert 4 == len(set(sqns))
    refused = decode_message(raw_answers[bad.hop_by_hop])
    assert 5005 == refused.u32(268)
    assert refused.find(279) is not None  # Failed-AVP
    issued = [e for e in env.rt.audit.iter_all() if e.action == "auc.eps-vectors"]
    assert 3 == len(issued)
    assert {"diameter:mme.test.realm"} == {e.actor for e in issued}
    assert 3 == env.subs.auth.group_commit.items - items_before


def test_messages_split_and_joined_across_reads_are_each_answered_once(
    env: Env, mme: Mme
) -> None:
    """The node frames messages from whatever the reads return: a message cut inside
    its header and inside its AVPs, two messages glued together, each answered once."""
    env.subs.inventory.add_sim(TENANT, spec(1), actor="test")
    stamped = [mme.stamp(air(imsi(1).value)) for _ in range(3)]
    wire = b"".join(r.as_bytes() for r in stamped)
    first = len(stamped[0].as_bytes())
    for piece in (wire[:7], wire[7:first + 30], wire[first + 30:]):
        mme.send_raw(piece)
    hbhs = []
    for _ in stamped:
        raw = mme.read_raw()
        assert 2001 == decode_message(raw).u32(268)
        hbhs.append(int.from_bytes(raw[12:16], "big"))
    assert sorted(r.header.hop_by_hop_identifier for r in stamped) == sorted(hbhs)


def test_airs_arriving_while_a_batch_runs_wait_and_form_the_next_batch(
    env: Env, mme: Mme
) -> None:
    """One AIR batch runs at a time: AIRs that arrive meanwhile queue on the event loop
    and are handed over together once it ends, each answered with its own vectors."""
    env.subs.inventory.add_sim(TENANT, spec(1), actor="test")
    node = env.listener.node
    command = (S6A, 318)
    inner = node._batch_handlers[command]
    entered, release = threading.Event(), threading.Event()
    running, most, sizes = [0], [0], []
    lock = threading.Lock()

    def handler(requests: Any) -> Any:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            sizes.append(len(requests))
        entered.set()
        release.wait(30)
        try:
            return inner(requests)
        finally:
            with lock:
                running[0] -= 1

    node._batch_handlers[command] = handler
    first = [mme.stamp(air(imsi(1).value))]
    mme.send_raw(b"".join(r.as_bytes() for r in first))
    assert entered.wait(30)
    second = [mme.stamp(air(imsi(1).value)) for _ in range(3)]
    mme.send_raw(b"".join(r.as_bytes() for r in second))
    for _ in range(3000):  # the second burst queued on the loop, not started
        if len(node._batch_queue.get(command, [])) == len(second):
            break
        threading.Event().wait(0.01)
    assert len(node._batch_queue[command]) == len(second)
    assert [len(first)] == sizes  # nothing handed to a second batch meanwhile
    release.set()
    sqns = []
    for _ in range(len(first) + len(second)):
        answer = PdMessage.from_bytes(mme.read_raw())
        assert 2001 == answer.result_code
        v = answer.authentication_info.e_utran_vector[0]
        sqns.append(check_eutran_vector(v.rand, v.xres, v.autn, v.kasme, HOME))
    assert [len(first), len(second)] == sizes
    assert 1 == most[0]
    assert len(set(sqns)) == len(first) + len(second)
