"""decide_held: a decision made from memory alone, its audit rows stored later; anything
that needs the store is left, undone, to decide()."""

from __future__ import annotations

from dataclasses import replace

from simtrust.alerts import MemorySink
from simtrust.subscriber import (
    AttachPolicy,
    BindingMode,
    Plmn,
    Reason,
    SubscriberServices,
    decision_history,
)

from .conftest import TENANT, feed_not_due, imei, imsi, spec

HOME = Plmn("001", "01")


def _exact_pair(s: SubscriberServices) -> None:
    s.inventory.set_policy(replace(AttachPolicy(TENANT), binding_mode=BindingMode.EXACT_PAIR),
                           actor="test")
    s.inventory.add_sim(TENANT, spec(1), actor="test")


def _stored(s: SubscriberServices) -> int:
    return len(decision_history(s.inventory.audit, tenant_id=None))


def test_a_held_decision_is_stored_by_commit_deferred(lite: SubscriberServices) -> None:
    _exact_pair(lite)
    feed_not_due(lite.attach)
    assert Reason.OK_BOUND == lite.attach.decide(imsi(1), imei(1), HOME, actor="t").reason
    lite.attach.decide(imsi(1), imei(1), HOME, actor="t")  # reloads the new binding
    heard: list[str] = []
    lite.attach.add_listener(lambda decision: heard.append(decision.reason))
    before = _stored(lite)
    made = lite.attach.decide_held(imsi(1), imei(1), HOME, actor="t")
    assert made is not None
    decision, held = made
    assert (True, Reason.OK) == (decision.allowed, decision.reason)
    assert (before, []) == (_stored(lite), heard)
    lite.attach.commit_deferred([held])
    assert (before + 1, [Reason.OK]) == (_stored(lite), heard)
    assert "t" == decision_history(lite.inventory.audit, tenant_id=None)[-1]["actor"]


def test_a_due_change_feed_is_left_to_decide_uncounted(lite: SubscriberServices) -> None:
    """With the change feed due, decide_held declines before counting a decision (it had
    taken one off the count it never made); the next decide syncs and counts."""
    _exact_pair(lite)
    lite.attach.decide(imsi(1), imei(1), HOME)  # binds
    lite.attach.decide(imsi(1), imei(1), HOME)  # the binding cached
    lite.attach._sync_interval = 0.0
    lite.attach.sync()  # the next sync is due at once
    counted, before = lite.attach.decisions, _stored(lite)
    assert lite.attach.decide_held(imsi(1), imei(1), HOME) is None
    assert (counted, before) == (lite.attach.decisions, _stored(lite))
    assert Reason.OK == lite.attach.decide(imsi(1), imei(1), HOME).reason
    assert counted + 1 == lite.attach.decisions


def test_what_needs_the_store_is_left_undone(lite: SubscriberServices,
                                             alerts: MemorySink) -> None:
    """A SIM not cached, a first use (binding) and a SIM swap (alert, audit at once):
    None, with no decision counted, stored, bound or alerted."""
    _exact_pair(lite)
    lite.attach.invalidate()
    counted, before = lite.attach.decisions, _stored(lite)
    assert lite.attach.decide_held(imsi(1), imei(1), HOME) is None  # SIM not cached
    lite.attach.sim_view(imsi(1).value)
    assert lite.attach.decide_held(imsi(1), imei(1), HOME) is None  # would bind
    assert (counted, before) == (lite.attach.decisions, _stored(lite))
    assert Reason.OK_BOUND == lite.attach.decide(imsi(1), imei(1), HOME).reason
    assert lite.attach.decide_held(imsi(1), imei(2), HOME) is None  # a SIM swap
    lite.alerts.flush()
    assert ([], before + 1) == (alerts.alerts, _stored(lite))
    swap = lite.attach.decide(imsi(1), imei(2), HOME)
    lite.alerts.flush()
    assert ((False, True), 1) == ((swap.allowed, swap.swap), len(alerts.alerts))
