"""Inventory on SQLite and PostgreSQL: sealed secrets, life cycle, groups, devices, APNs."""

from __future__ import annotations

import pytest

from simtrust.errors import (
    Conflict,
    DecryptionFailed,
    InvalidInput,
    InvalidTransition,
    NotFound,
)
from simtrust.subscriber import (
    TRANSITIONS,
    AttachPolicy,
    BindingMode,
    ImeiSv,
    OpKind,
    Plmn,
    Roaming,
    SimSecrets,
    SimState,
    SubscriberServices,
    SwapAction,
    TuakParams,
    check_transition,
)
from simtrust.subscriber._inventory import secret_aad
from simtrust.subscriber._sim_rows import SIM_COLUMNS, sim_from_row

from .conftest import K1, OP1, OPC1, TENANT, iccid, imei, imsi, spec


def sim_row(subs: SubscriberServices, n: int) -> tuple[object, ...]:
    row = subs.inventory._db.query_one(
        f"SELECT {SIM_COLUMNS} FROM sub_sims WHERE iccid = ?", (iccid(n).value,))
    assert row is not None
    return tuple(row)


def test_provision_seals_secrets_and_never_shows_them(subs: SubscriberServices) -> None:
    inv = subs.inventory
    sim = inv.add_sim(TENANT, spec(1), actor="test")
    assert SimState.ACTIVE == sim.state
    assert OpKind.OPC == sim.op_kind
    public = repr(sim) + str(sim.to_json())
    for secret in (K1, OPC1):
        assert secret.hex() not in public
    row = inv.db.query_one("SELECT k_sealed, op_sealed FROM sub_sims WHERE iccid = ?",
                           (sim.iccid.value,))
    assert row is not None
    assert K1 not in bytes(row[0])
    assert OPC1 not in bytes(row[1])
    opened = inv.open_secrets(sim.iccid)
    assert (K1, OPC1, OpKind.OPC) == (opened.k, opened.op, opened.op_kind)
    assert K1.hex() not in repr(opened)
    assert "redacted" in repr(opened)


def test_sealed_secret_bound_to_its_row_and_field(subs: SubscriberServices) -> None:
    inv = subs.inventory
    first = inv.add_sim(TENANT, spec(1), actor="test")
    second = inv.add_sim(TENANT, spec(2, secrets=SimSecrets(K1, OP1, OpKind.OP)), actor="test")
    blob = inv.db.query_one("SELECT k_sealed FROM sub_sims WHERE iccid = ?",
                            (first.iccid.value,))
    assert blob is not None
    # Copy SIM 1's sealed K onto SIM 2: it must not open there.
    inv.db.execute("UPDATE sub_sims SET k_sealed = ? WHERE iccid = ?",
                   (bytes(blob[0]), second.iccid.value))
    with pytest.raises(DecryptionFailed):
        inv.open_secrets(second.iccid)
    # Relabelling OP as OPc must not open either (the field name is in the AAD).
    row = inv.db.query_one("SELECT op_sealed FROM sub_sims WHERE iccid = ?", (second.iccid.value,))
    assert row is not None
    with pytest.raises(DecryptionFailed):
        subs.inventory.keyring.open(bytes(row[0]), secret_aad(second.iccid.value, "opc"))
    assert OP1 == subs.inventory.keyring.open(bytes(row[0]),
                                               secret_aad(second.iccid.value, "op"))
    assert b"opc" in secret_aad(first.iccid.value, "opc")


def test_duplicate_iccid_or_imsi_conflicts(subs: SubscriberServices) -> None:
    subs.inventory.add_sim(TENANT, spec(1), actor="test")
    with pytest.raises(Conflict):
        subs.inventory.add_sim(TENANT, spec(1), actor="test")


def test_unknown_tenant_is_not_found(subs: SubscriberServices) -> None:
    with pytest.raises(NotFound):
        subs.inventory.add_sim("nobody", spec(1), actor="test")


def test_secret_lengths_checked() -> None:
    with pytest.raises(InvalidInput):
        SimSecrets(K1[:8], OPC1, OpKind.OPC)
    with pytest.raises(InvalidInput):
        SimSecrets(K1, OPC1, OpKind.TOPC)  # TOPc is 256 bits
    tuak = SimSecrets(K1 + K1, OPC1 + OPC1, OpKind.TOPC)
    assert "redacted" in str(tuak)


def test_tuak_sim_keeps_parameters(subs: SubscriberServices) -> None:
    params = TuakParams(keccak_iterations=2, mac_bits=128, res_bits=128, ck_bits=256)
    sim = subs.inventory.add_sim(
        TENANT, spec(3, secrets=SimSecrets(K1 + K1, OPC1 + OPC1, OpKind.TOPC), tuak=params),
        actor="test",
    )
    assert params == subs.inventory.get_sim(sim.iccid).tuak
    assert "tuak" == sim.to_json()["algorithm"]


def test_sim_read_back_equals_what_was_added(subs: SubscriberServices) -> None:
    """A SIM built from its row (identifiers not re-checked, enums looked up by value) is
    the SIM that was added, field for field, and reads by ICCID and IMSI agree."""
    inv = subs.inventory
    added = inv.add_sim(TENANT, spec(4, binding_mode=BindingMode.EXACT_PAIR), actor="test")
    by_imsi = inv.find_sim(imsi(4))
    assert added == by_imsi == inv.get_sim(iccid(4))
    assert by_imsi is not None
    assert iccid(4).value == by_imsi.iccid.value
    assert (imsi(4).value, imsi(4).mnc_length) == (by_imsi.imsi.value, by_imsi.imsi.mnc_length)
    assert SimState.ACTIVE is by_imsi.state


def test_sim_row_with_a_state_the_model_does_not_know_raises(subs: SubscriberServices) -> None:
    inv = subs.inventory
    inv.add_sim(TENANT, spec(5), actor="test")
    row = list(sim_row(subs, 5))
    row[4] = "lost-in-space"
    with pytest.raises(ValueError, match="lost-in-space"):
        sim_from_row(row)


def test_transition_table_is_what_is_documented() -> None:
    assert frozenset() == TRANSITIONS[SimState.TERMINATED]
    assert SimState.TEST not in TRANSITIONS[SimState.ACTIVE]
    check_transition(SimState.INVENTORY, SimState.TEST)
    for state in SimState:
        with pytest.raises(InvalidTransition):
            check_transition(SimState.TERMINATED, state)


def test_every_transition_permitted_or_refused_and_audited(subs: SubscriberServices) -> None:
    inv = subs.inventory
    n = 10
    for current in SimState:
        for target in SimState:
            n += 1
            sim = inv.add_sim(TENANT, spec(n, state=current), actor="test")
            if target in TRANSITIONS[current]:
                assert target == inv.transition(sim.iccid, target, actor="ops").state
                outcome = "success"
            else:
                with pytest.raises(InvalidTransition):
                    inv.transition(sim.iccid, target, actor="ops")
                assert current == inv.get_sim(sim.iccid).state
                outcome = "failure"
            events = subs.inventory.audit.query(subject=f"sim:{sim.iccid}",
                                                action="sim.transition")
            assert [outcome] == [e.outcome for e in events]
            assert {"from": str(current), "to": str(target)}.items() <= events[0].details.items()


def test_life_cycle_walk(subs: SubscriberServices) -> None:
    inv = subs.inventory
    sim = inv.add_sim(TENANT, spec(1, state=SimState.INVENTORY), actor="test")
    for target in (SimState.TEST, SimState.ACTIVE, SimState.SUSPENDED, SimState.ACTIVE,
                   SimState.TERMINATED):
        sim = inv.transition(sim.iccid, target, actor="ops")
    assert SimState.TERMINATED == sim.state
    assert {"terminated": 1} == {k: v for k, v in inv.count_sims(TENANT).items() if v}


def test_list_sims_keyset_pages(subs: SubscriberServices) -> None:
    inv = subs.inventory
    for n in range(1, 8):
        inv.add_sim(TENANT, spec(n, state=SimState.ACTIVE if n % 2 else SimState.TEST),
                    actor="test")
    page1 = inv.list_sims(TENANT, limit=3)
    page2 = inv.list_sims(TENANT, limit=3, after=page1[-1].iccid.value)
    assert [iccid(n) for n in (1, 2, 3)] == [s.iccid for s in page1]
    assert [iccid(n) for n in (4, 5, 6)] == [s.iccid for s in page2]
    assert 4 == len(inv.list_sims(TENANT, state=SimState.ACTIVE))


def test_groups_devices_apns_policy(subs: SubscriberServices) -> None:
    inv = subs.inventory
    group = inv.create_group(TENANT, "meters", actor="test", binding_mode=BindingMode.EXACT_PAIR,
                             swap_action=SwapAction.SUSPEND, roaming=Roaming.parse(["262"]))
    assert group == inv.get_group(group.id)
    with pytest.raises(Conflict):
        inv.create_group(TENANT, "meters", actor="test")
    device = inv.add_device(TENANT, imei(1), actor="test",
                            imeisv=ImeiSv(imei(1).value[:14] + "03"), group_id=group.id)
    assert "35209900" == str(device.tac)
    assert device == inv.get_device(imei(1))
    with pytest.raises(InvalidInput):
        inv.add_device(TENANT, imei(2), actor="test", imeisv=ImeiSv(imei(3).value[:14] + "01"))
    apn = inv.create_apn(TENANT, "IoT.Acme", actor="test", pool="10.20.0.0/24")
    assert "iot.acme" == apn.name
    with pytest.raises(InvalidInput):
        inv.create_apn(TENANT, "bad", actor="test", pool="10.0.0.1/24")
    policy = inv.set_policy(AttachPolicy(TENANT, binding_mode=BindingMode.ICCID_PRIMARY,
                                         webhook_url="http://127.0.0.1:9/hook"), actor="test")
    assert BindingMode.ICCID_PRIMARY == policy.binding_mode
    assert policy == inv.policy(TENANT)
    sim = inv.add_sim(TENANT, spec(1, group_id=group.id, apn="iot.acme"), actor="test")
    updated = inv.update_sim(sim.iccid, actor="test", binding_mode=BindingMode.IMEI_PRIMARY,
                             roaming=Roaming.parse(["*"]))
    assert BindingMode.IMEI_PRIMARY == updated.binding_mode
    assert updated.roaming is not None
    assert updated.roaming.anywhere
    cleared = inv.update_sim(sim.iccid, actor="test", clear=["roaming", "group_id"])
    assert (None, None) == (cleared.roaming, cleared.group_id)


def test_roaming_rules() -> None:

    home = Plmn("262", "01")
    rule = Roaming.parse(["208", "234-15"])
    assert rule.permits(home, home)
    assert rule.permits(home, Plmn("208", "10"))
    assert rule.permits(home, Plmn("234", "15"))
    assert not rule.permits(home, Plmn("234", "10"))
    assert not Roaming().permits(home, Plmn("208", "10"))
    assert Roaming.parse(["*"]).permits(home, Plmn("310", "410"))
    assert rule == Roaming.from_text(rule.to_text())


def test_master_key_rotation_rewraps_sim_and_home_network_keys(
    subs: SubscriberServices, runtime: object
) -> None:
    inv = subs.inventory
    sim = inv.add_sim(TENANT, spec(1), actor="test")
    subs.hn_keys.generate(1, "A", actor="test")
    old_kid = inv.keyring.active_key_id
    new_kid, count = runtime.rotate_master_key()  # type: ignore[attr-defined]
    assert 3 == count
    assert new_kid != old_kid
    inv.keyring.retire(old_kid)
    assert K1 == inv.open_secrets(sim.iccid).k
    assert 1 == subs.hn_keys.private_key(1, "A").key_id
