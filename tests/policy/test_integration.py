"""Policy over the real subscriber inventory: attach address → flow → remove → attach denied."""

from __future__ import annotations

from simtrust.alerts import MemorySink
from simtrust.domain import FlowRecord
from simtrust.policy import PolicyService, build_policy_service, policy_from_dict
from simtrust.runtime import Runtime
from simtrust.subscriber import (
    Iccid,
    Imei,
    Imsi,
    OpKind,
    SimSecrets,
    SimSpec,
    SimState,
    build_services,
    luhn_check_digit,
)

K1 = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
OPC1 = bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf")
T = "acme"


def provision(rt: Runtime) -> tuple[str, Iccid, Imsi, Imei]:
    """Tenant, APN pool, group and one active SIM, attached: (address, iccid, imsi, imei)."""
    rt.tenants.create_tenant(T, "Acme")
    subs = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[MemorySink()])
    rt.subscriber = subs
    assert subs is rt.subscriber
    inv = subs.inventory
    inv.create_apn(T, "iot", actor="test", pool="10.9.0.0/29")
    group = inv.create_group(T, "cameras", actor="test")
    body = "89882" + "0" * 12 + "1"
    iccid = Iccid(body + str(luhn_check_digit(body)))
    imsi = Imsi("001010000000001", 2)
    inv.add_sim(T, SimSpec(iccid, imsi, SimSecrets(K1, OPC1, OpKind.OPC),
                           state=SimState.ACTIVE, apn="iot", group_id=group.id), actor="test")
    imei = Imei.from_tac_snr("35209900", "000001")
    first = subs.attach.decide(imsi, imei, "00101")
    assert first.allowed, first.detail
    assert first.address is not None
    return first.address, iccid, imsi, imei


def _over_inventory(rt: Runtime) -> PolicyService:
    """A policy service wired to the subscriber inventory as the composition root does."""
    subs = rt.subscriber
    return build_policy_service(rt.db, rt.audit, rt.clock, removers=[subs.suspender()],
                                directory=subs.directory(), addresses=subs.addresses)


def test_remove_suspends_the_sim_and_the_next_attach_is_denied(
        sqlite_runtime: Runtime) -> None:
    rt = sqlite_runtime
    address, iccid, imsi, imei = provision(rt)
    subs = rt.subscriber
    inv = subs.inventory
    service = _over_inventory(rt)  # remover: SuspendSim over the inventory
    try:
        service.store.put(policy_from_dict({"tenant_id": T, "scope": "group:cameras", "rules": [
            {"kind": "destination", "allow": [{"cidrs": ["192.0.2.0/24"], "ports": [443]}],
             "actions": ["block", "remove"]}]}), actor="test")
        ok = service.engine.decide(src_addr=address, dst_addr="192.0.2.1", dst_port=443,
                                   protocol=6)
        assert (True, imsi.value) == (ok.allowed, ok.imsi)
        verdicts = service.engine.ingest([FlowRecord(1.0, 2.0, address, "198.51.100.4",
                                                     40000, 23, 6, 3, 180)])
        assert "destination" == verdicts[0].decision.reason
        service.dispatcher.flush()
        assert SimState.SUSPENDED == inv.get_sim(iccid).state
        again = subs.attach.decide(imsi, imei, "00101")
        assert not again.allowed
        cut = service.engine.decide(src_addr=address, dst_addr="192.0.2.1", dst_port=443,
                                    protocol=6)
        assert (False, "removed") == (cut.allowed, cut.reason)
        # a fresh engine (e.g. after a restart) knows from the inventory the SIM is suspended
        fresh = _over_inventory(rt)
        try:
            late = fresh.engine.decide(imsi=imsi.value, dst_addr="192.0.2.1", dst_port=443,
                                       protocol=6)
            assert (False, "sim-inactive") == (late.allowed, late.reason)
        finally:
            fresh.close()
        removes = rt.audit.query(action="policy.remove", limit=10)
        assert ["success"] == [e.outcome for e in removes]
    finally:
        service.close()
