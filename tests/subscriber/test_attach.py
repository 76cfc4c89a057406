"""Attach decisions: state, blocklist, roaming, the three binding modes, SIM swap, cache."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from simtrust.alerts import MemorySink
from simtrust.crypto import Keyring
from simtrust.runtime import Runtime
from simtrust.store import open_database
from simtrust.subscriber import (
    AttachEngine,
    AttachPolicy,
    BindingMode,
    ImportRejected,
    Plmn,
    Reason,
    Roaming,
    SimState,
    SubscriberServices,
    SwapAction,
    UnknownDevice,
    build_services,
    decision_history,
)

from .conftest import TENANT, iccid, imei, imsi, spec

HOME = Plmn("001", "01")


def decide(s: SubscriberServices, n_sim: int, n_dev: int, plmn: Plmn = HOME):
    return s.attach.decide(imsi(n_sim), imei(n_dev), plmn, actor="test")


def policy(s: SubscriberServices, **kwargs: object) -> None:
    s.inventory.set_policy(replace(AttachPolicy(TENANT), **kwargs), actor="test")  # type: ignore[arg-type]


def test_unknown_sim_and_states(lite: SubscriberServices) -> None:
    assert Reason.UNKNOWN_SIM == decide(lite, 1, 1).reason
    for n, state, reason in ((2, SimState.INVENTORY, Reason.SIM_INVENTORY),
                             (3, SimState.SUSPENDED, Reason.SIM_SUSPENDED),
                             (4, SimState.TERMINATED, Reason.SIM_TERMINATED)):
        lite.inventory.add_sim(TENANT, spec(n, state=state), actor="test")
        decision = decide(lite, n, 1)
        assert (False, reason) == (decision.allowed, decision.reason)
    lite.inventory.add_sim(TENANT, spec(5), actor="test")
    ok = decide(lite, 5, 1)
    assert (True, Reason.OK) == (ok.allowed, ok.reason)
    assert "allow" == ok.to_json()["decision"]


def test_every_decision_is_audited(lite: SubscriberServices) -> None:
    """Batch mode: plain decisions land in attach.decisions records, one row each,
    and each is stored before it is answered (one caller: one commit each)."""
    lite.inventory.add_sim(TENANT, spec(1), actor="test")
    for _ in range(5):
        decide(lite, 1, 1)
    decide(lite, 9, 1)
    records = lite.inventory.audit.query(action="attach.decisions")
    assert [f"tenant:{TENANT}"] * 5 + ["attach:unknown-sims"] == [r.subject for r in records]
    assert "1 allow, 0 deny" == records[0].reason
    history = decision_history(lite.inventory.audit, tenant_id=None)
    assert ["allow"] * 5 + ["deny"] == [row["outcome"] for row in history]
    assert "unknown-sim" == history[-1]["reason"]
    assert {"imsi": imsi(1).value, "imei": imei(1).value, "plmn": "00101",
            "iccid": iccid(1).value} .items() <= history[0].items()
    one_sim = decision_history(lite.inventory.audit, tenant_id=TENANT, imsi=imsi(1).value)
    assert 5 == len(one_sim)
    assert [] == lite.inventory.audit.verify()


def test_deferred_audit_stores_a_burst_in_one_write_when_the_block_ends(
    lite: SubscriberServices,
) -> None:
    """Decisions inside deferred_audit are not stored (nor heard by listeners) before
    the block ends; at its end they are, all in one group-commit write."""
    lite.inventory.add_sim(TENANT, spec(1), actor="test")
    decide(lite, 1, 1)  # first use binds (a state change, stored at once)
    heard: list[str] = []
    lite.attach.add_listener(lambda decision: heard.append(decision.reason))
    before = len(decision_history(lite.inventory.audit, tenant_id=None))
    batches = lite.attach.group_commit.batches
    with lite.attach.deferred_audit():
        for _ in range(3):
            assert decide(lite, 1, 1).allowed
        decide(lite, 9, 1)
        assert before == len(decision_history(lite.inventory.audit, tenant_id=None))
        assert [] == heard
    history = decision_history(lite.inventory.audit, tenant_id=None)
    assert ["allow"] * 3 + ["deny"] == [row["outcome"] for row in history[before:]]
    assert batches + 1 == lite.attach.group_commit.batches
    assert 4 == len(heard)
    assert [] == lite.inventory.audit.verify()


def test_record_mode_writes_one_record_per_decision(sqlite_runtime: Runtime) -> None:
    sqlite_runtime.tenants.create_tenant(TENANT, "Acme")
    services = build_services(sqlite_runtime.db, sqlite_runtime.keyring, sqlite_runtime.audit, sqlite_runtime.clock, sinks=[])
    engine = AttachEngine(services.inventory, services.blocklist, services.addresses,
                          services.alerts, audit_mode="record")
    try:
        services.inventory.add_sim(TENANT, spec(1), actor="test")
        for _ in range(3):
            engine.decide(imsi(1), imei(1), HOME, actor="test")
        engine.decide(imsi(2), imei(1), HOME, actor="test")
        events = services.inventory.audit.query(action="attach.decide")
        assert ["allow"] * 3 + ["deny"] == [e.outcome for e in events]
        assert f"sim:{iccid(1)}" == events[0].subject
        assert f"imsi:{imsi(2)}" == events[-1].subject
        history = decision_history(services.inventory.audit, tenant_id=None)
        assert 4 == len(history)
    finally:
        services.close()


def test_swap_then_rebind_after_mode_change(lite: SubscriberServices) -> None:
    lite.inventory.add_sim(TENANT, spec(1), actor="test")
    decide(lite, 1, 1)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not decision_history(lite.inventory.audit,
                                                              tenant_id=TENANT):
        time.sleep(0.05)
    assert 1 == len(decision_history(lite.inventory.audit, tenant_id=TENANT))


def test_blocklist_imei_and_tac_range(lite: SubscriberServices) -> None:
    lite.inventory.add_sim(TENANT, spec(1), actor="test")
    assert decide(lite, 1, 7).allowed
    lite.blocklist.add_imei(imei(7).value, actor="test", reason="stolen")
    denied = decide(lite, 1, 7)
    assert (False, Reason.IMEI_BLOCKED) == (denied.allowed, denied.reason)
    assert "stolen" in denied.detail
    lite.blocklist.add_tac_range("86000000", "86999999", actor="test", reason="insecure model")
    assert Reason.TAC_BLOCKED == lite.attach.decide(imsi(1), imei(1, tac="86123456"), HOME).reason
    assert decide(lite, 1, 8).allowed
    # A tenant-scoped entry does not block other tenants' SIMs.
    lite.blocklist.add_imei(imei(8).value, actor="test", tenant_id="other")
    assert decide(lite, 1, 8).allowed


def test_blocklist_csv_import(lite: SubscriberServices) -> None:

    text = (f"type,value,value_to,reason\nimei,{imei(3)},,lost\ntac,35209900,35209900,recall\n"
            "imei,123,,\nfoo,1,,\n")
    with pytest.raises(ImportRejected) as info:
        lite.blocklist.import_csv(text, actor="test")
    assert [4, 5] == [e.line for e in info.value.errors]
    assert [] == lite.blocklist.entries()
    good = "\n".join(text.splitlines()[:3]) + "\n"
    assert 2 == lite.blocklist.import_csv(good, actor="test")
    lite.inventory.add_sim(TENANT, spec(1), actor="test")
    assert Reason.IMEI_BLOCKED == decide(lite, 1, 3).reason
    assert Reason.TAC_BLOCKED == decide(lite, 1, 4).reason


def test_roaming_rules_sim_over_group_over_tenant(lite: SubscriberServices) -> None:
    inv = lite.inventory
    france, uk = Plmn("208", "01"), Plmn("234", "15")
    group = inv.create_group(TENANT, "eu", actor="test", roaming=Roaming.parse(["208"]))
    inv.add_sim(TENANT, spec(1), actor="test")
    inv.add_sim(TENANT, spec(2, group_id=group.id), actor="test")
    inv.add_sim(TENANT, spec(3, group_id=group.id, roaming=Roaming.parse(["234-15"])),
                actor="test")
    assert Reason.ROAMING == decide(lite, 1, 1, france).reason  # default: home only
    assert decide(lite, 2, 2, france).allowed
    assert not decide(lite, 2, 2, uk).allowed
    assert decide(lite, 3, 3, uk).allowed
    assert not decide(lite, 3, 3, france).allowed
    policy(lite, roaming=Roaming.parse(["*"]))
    assert decide(lite, 1, 1, uk).allowed


def test_exact_pair(lite: SubscriberServices, alerts: MemorySink) -> None:
    policy(lite, binding_mode=BindingMode.EXACT_PAIR)
    for n in (1, 2):
        lite.inventory.add_sim(TENANT, spec(n), actor="test")
    first = decide(lite, 1, 1)
    assert (True, Reason.OK_BOUND) == (first.allowed, first.reason)
    assert Reason.OK == decide(lite, 1, 1).reason
    moved = decide(lite, 1, 2)  # SIM 1 in another device
    assert (False, Reason.SIM_SWAP, True) == (moved.allowed, moved.reason, moved.swap)
    intruder = decide(lite, 2, 1)  # another SIM in SIM 1's device
    assert (False, Reason.DEVICE_BOUND) == (intruder.allowed, intruder.reason)
    lite.alerts.flush()
    assert ["sim-in-new-device", "device-with-new-sim"] == [a.kind for a in alerts.alerts]
    assert [imei(1).value] == alerts.alerts[0].bound_to
    assert f"simtrust/alerts/{TENANT}/{imsi(1)}" == alerts.alerts[0].topic
    swaps = lite.inventory.audit.query(action="attach.sim-swap")
    assert 2 == len(swaps)
    # SIM 2 may not bind to a device that has any binding (exact pair).
    assert Reason.OK_BOUND == decide(lite, 2, 3).reason


def test_iccid_primary(lite: SubscriberServices, alerts: MemorySink) -> None:
    policy(lite, binding_mode=BindingMode.ICCID_PRIMARY)
    lite.inventory.add_sim(TENANT, spec(1), actor="test")
    lite.inventory.add_sim(TENANT, spec(2, binding_mode=BindingMode.NONE), actor="test")
    assert Reason.OK_BOUND == decide(lite, 1, 1).reason
    assert Reason.SIM_SWAP == decide(lite, 1, 2).reason  # the SIM is locked
    other = decide(lite, 2, 1)  # the device is free to host other SIMs
    assert (True, Reason.OK) == (other.allowed, other.reason)


def test_imei_primary(lite: SubscriberServices, alerts: MemorySink) -> None:
    policy(lite, binding_mode=BindingMode.IMEI_PRIMARY)
    lite.inventory.add_sim(TENANT, spec(1), actor="test")
    lite.inventory.add_sim(TENANT, spec(2, binding_mode=BindingMode.NONE), actor="test")
    assert Reason.OK_BOUND == decide(lite, 1, 1).reason
    assert Reason.DEVICE_BOUND == decide(lite, 2, 1).reason  # the device is locked
    moved = decide(lite, 1, 2)  # the SIM is free: allowed, reported, new device bound
    assert (True, Reason.OK_BOUND, True) == (moved.allowed, moved.reason, moved.swap)
    assert Reason.DEVICE_BOUND == decide(lite, 2, 2).reason
    lite.alerts.flush()
    assert ["device-with-new-sim", "sim-in-new-device", "device-with-new-sim"] == \
        [a.kind for a in alerts.alerts]


def test_exact_pair_outranks_device_lock(lite: SubscriberServices) -> None:
    """A recorded pair decides even if the SIM's own mode changed meanwhile."""
    policy(lite, binding_mode=BindingMode.IMEI_PRIMARY)
    lite.inventory.add_sim(TENANT, spec(1), actor="test")
    assert Reason.OK_BOUND == decide(lite, 1, 1).reason
    policy(lite, binding_mode=BindingMode.EXACT_PAIR, unknown_device=UnknownDevice.DENY)
    assert Reason.OK == decide(lite, 1, 1).reason  # pair match beats unknown-device policy


def test_swap_actions(lite: SubscriberServices, alerts: MemorySink) -> None:
    inv = lite.inventory
    lenient = inv.create_group(TENANT, "lenient", actor="test",
                               binding_mode=BindingMode.ICCID_PRIMARY,
                               swap_action=SwapAction.ALLOW_AND_ALERT)
    strict = inv.create_group(TENANT, "strict", actor="test",
                              binding_mode=BindingMode.ICCID_PRIMARY,
                              swap_action=SwapAction.SUSPEND)
    inv.add_sim(TENANT, spec(1, group_id=lenient.id), actor="test")
    inv.add_sim(TENANT, spec(2, group_id=strict.id), actor="test")
    decide(lite, 1, 1)
    decide(lite, 2, 2)
    allowed = decide(lite, 1, 9)
    assert (True, Reason.OK_SWAP_ALERTED) == (allowed.allowed, allowed.reason)
    suspended = decide(lite, 2, 9)
    assert (False, Reason.SIM_SWAP_SUSPENDED) == (suspended.allowed, suspended.reason)
    assert SimState.SUSPENDED == inv.get_sim_by_imsi(imsi(2)).state
    assert Reason.SIM_SUSPENDED == decide(lite, 2, 2).reason  # cache saw the transition
    transitions = inv.audit.query(action="sim.transition")
    assert ["sim-swap"] == [e.reason for e in transitions]
    lite.alerts.flush()
    assert ["allow-and-alert", "suspend"] == [a.action for a in alerts.alerts]


def test_test_state_never_binds(lite: SubscriberServices) -> None:
    policy(lite, binding_mode=BindingMode.EXACT_PAIR)
    lite.inventory.add_sim(TENANT, spec(1, state=SimState.TEST), actor="test")
    assert Reason.OK_TEST == decide(lite, 1, 1).reason
    assert Reason.OK_TEST == decide(lite, 1, 2).reason


def test_unknown_and_foreign_devices(lite: SubscriberServices, sqlite_runtime: Runtime) -> None:
    sqlite_runtime.tenants.create_tenant("other", "Other")
    policy(lite, unknown_device=UnknownDevice.DENY)
    lite.inventory.add_sim(TENANT, spec(1), actor="test")
    assert Reason.UNKNOWN_DEVICE == decide(lite, 1, 1).reason
    lite.inventory.add_device(TENANT, imei(1), actor="test")
    assert decide(lite, 1, 1).allowed
    lite.inventory.add_device("other", imei(2), actor="test")
    assert Reason.FOREIGN_DEVICE == decide(lite, 1, 2).reason


def test_binding_mode_change_relearns(lite: SubscriberServices) -> None:
    lite.inventory.add_sim(TENANT, spec(1, binding_mode=BindingMode.EXACT_PAIR), actor="test")
    decide(lite, 1, 1)
    assert Reason.SIM_SWAP == decide(lite, 1, 2).reason
    sim = lite.inventory.get_sim_by_imsi(imsi(1))
    lite.inventory.update_sim(sim.iccid, actor="test", binding_mode=BindingMode.ICCID_PRIMARY)
    assert Reason.OK_BOUND == decide(lite, 1, 2).reason


def test_dry_run_changes_nothing(lite: SubscriberServices) -> None:
    policy(lite, binding_mode=BindingMode.EXACT_PAIR)
    lite.inventory.add_sim(TENANT, spec(1), actor="test")
    probe = lite.attach.decide(imsi(1), imei(1), HOME, dry_run=True)
    assert (True, Reason.WOULD_BIND) == (probe.allowed, probe.reason)
    assert [] == decision_history(lite.inventory.audit, tenant_id=None)
    assert Reason.OK_BOUND == decide(lite, 1, 1).reason


def test_addresses_from_pool_and_static(lite: SubscriberServices) -> None:
    inv = lite.inventory
    inv.create_apn(TENANT, "iot", actor="test", pool="10.9.0.0/30")
    inv.add_sim(TENANT, spec(1, apn="iot"), actor="test")
    inv.add_sim(TENANT, spec(2, apn="iot"), actor="test")
    inv.add_sim(TENANT, spec(3, apn="iot"), actor="test")
    inv.add_sim(TENANT, spec(4, static_ip="192.0.2.7"), actor="test")
    assert "10.9.0.1" == decide(lite, 1, 1).address
    assert "10.9.0.1" == decide(lite, 1, 1).address
    assert "10.9.0.2" == decide(lite, 2, 2).address
    exhausted = decide(lite, 3, 3)
    assert (False, Reason.ADDRESS) == (exhausted.allowed, exhausted.reason)
    assert "192.0.2.7" == decide(lite, 4, 4).address
    book = lite.addresses
    assert imsi(2).value == book.lookup("10.9.0.2")
    assert imsi(4).value == book.lookup("192.0.2.7")
    assert book.lookup("10.9.0.3") is None
    book.release(imsi(1).value)
    assert book.lookup("10.9.0.1") is None
    assert "10.9.0.1" == decide(lite, 3, 3).address


def test_bindings_persist_across_engines(subs: SubscriberServices, runtime: Runtime) -> None:
    """On SQLite and PostgreSQL: a new engine over the same store sees the bindings."""
    policy(subs, binding_mode=BindingMode.EXACT_PAIR)
    subs.inventory.add_sim(TENANT, spec(1), actor="test")
    assert Reason.OK_BOUND == decide(subs, 1, 1).reason
    fresh = build_services(runtime.db, runtime.keyring, runtime.audit, runtime.clock, sinks=[MemorySink()])
    try:
        assert Reason.OK == decide(fresh, 1, 1).reason
        assert Reason.SIM_SWAP == decide(fresh, 1, 2).reason
    finally:
        fresh.close()


def test_cache_follows_writes_of_another_process(tmp_path: Path) -> None:
    """Two runtimes on one SQLite file: B's cache learns A's writes from the change feed."""
    a = Runtime.ephemeral(tmp_path / "a")
    b = Runtime(a.settings, open_database(a.settings.store_url),
                Keyring.load(a.settings.master_key_file))
    try:
        a.tenants.create_tenant(TENANT, "Acme")
        sa = build_services(a.db, a.keyring, a.audit, a.clock, sinks=[MemorySink()])
        sb = build_services(b.db, b.keyring, b.audit, b.clock, sinks=[MemorySink()])
        sim = sa.inventory.add_sim(TENANT, spec(1), actor="test")
        assert decide(sb, 1, 1).allowed
        sa.inventory.transition(sim.iccid, SimState.SUSPENDED, actor="test")
        sa.blocklist.add_imei(imei(5).value, actor="test")
        assert decide(sb, 1, 1).allowed  # still cached until the next sync
        assert 2 <= sb.attach.sync()
        assert Reason.SIM_SUSPENDED == decide(sb, 1, 1).reason
        sa.inventory.transition(sim.iccid, SimState.ACTIVE, actor="test")
        sb.attach.sync()
        assert Reason.IMEI_BLOCKED == decide(sb, 1, 5).reason
        sa.close()
        sb.close()
    finally:
        b.close()
        a.close()


def test_concurrent_first_attaches(subs: SubscriberServices) -> None:
    """Threads binding and leasing at once (SQLite and PostgreSQL): no deadlock, one lock each."""

    policy(subs, binding_mode=BindingMode.EXACT_PAIR)
    subs.inventory.create_apn(TENANT, "iot", actor="test", pool="10.50.0.0/24")
    for n in range(1, 41):
        subs.inventory.add_sim(TENANT, spec(n, apn="iot"), actor="test")
    results: list[tuple[int, int, str]] = []
    lock = threading.Lock()

    def worker(offset: int) -> None:
        # Every thread tries every SIM in its own device: exactly one may bind each SIM.
        for n in range(1, 41):
            decision = decide(subs, n, 100 * offset + n)
            with lock:
                results.append((offset, n, decision.reason))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(1, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    bound = [(n, reason) for _o, n, reason in results if reason == Reason.OK_BOUND]
    assert sorted(n for n, _ in bound) == list(range(1, 41))
    rows = subs.inventory.db.query("SELECT COUNT(*), COUNT(DISTINCT iccid) FROM sub_bindings")
    assert (40, 40) == tuple(rows[0])
    leases = subs.inventory.db.query("SELECT COUNT(DISTINCT address) FROM sub_leases")
    assert 40 == leases[0][0]


def test_termination_releases_address_and_bindings(subs: SubscriberServices) -> None:
    policy(subs, binding_mode=BindingMode.EXACT_PAIR)
    subs.inventory.create_apn(TENANT, "iot", actor="test", pool="10.60.0.0/30")
    sim = subs.inventory.add_sim(TENANT, spec(1, apn="iot"), actor="test")
    subs.inventory.add_sim(TENANT, spec(2, apn="iot"), actor="test")
    assert "10.60.0.1" == decide(subs, 1, 1).address
    subs.inventory.transition(sim.iccid, SimState.TERMINATED, actor="test")
    assert subs.addresses.lookup("10.60.0.1") is None
    assert [] == subs.inventory.bindings(sim.iccid)
    # The device is free again, and so is the address.
    second = decide(subs, 2, 1)
    assert (Reason.OK_BOUND, "10.60.0.1") == (second.reason, second.address)
