"""Market: an enterprise, then partner operator B, order from operator A; A provisions it all.

The operator publishes TMF633 service specifications (tenant CA, private APN,
cloud-only policy, SIMs from its stock, an e-health slice SLA with TS 28.541
ServiceProfile targets), a TMF620 product specification over them and an
offering. The enterprise places a TMF622 order; the orchestrator runs the TMF641
service order against simtrust itself; the TMF638 services and TMF637 product
show the result, the devices attach with addresses from the new pool, and the
SLA contract is on the ledger. Then operator B (its own data directory and
store, the consortium ledger shared) finds A's catalog publication on the
ledger, verifies it, orders an IoT connectivity bundle (SIMs and a roaming
agreement) and a slice over A's TMF622 API with requests signed by its DID,
B's devices attach in A's network, and both read the same anchored history
(docs/market.md).
"""

from __future__ import annotations

import json
from typing import Any

from simtrust.domain import Iccid, Imei, Imsi, Plmn, luhn_check_digit
from simtrust.identity import did_key
from simtrust.ledger import Ed25519Signer
from simtrust.runtime import Runtime
from simtrust.settlement import submit_contract, transition_payload
from simtrust.subscriber import OpKind, SimSecrets, SimSpec, SimState

ORDER = 75
TENANT = "fleetco"
STOCK = "operator-stock"
HOME = Plmn("001", "01")
_K = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
_OPC = bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf")
RULES = [{"kind": "destination", "id": "cloud",
          "allow": [{"cidrs": ["198.51.100.0/24"], "ports": [443, 8883], "protocols": ["tcp"]}],
          "actions": ["block", "log"]}]


def _char(name: str, default: Any = None, *, mandatory: bool = False,
          configurable: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": name, "minCardinality": 1 if mandatory else 0,
                           "configurable": configurable}
    if default is not None:
        doc["characteristicValueSpecification"] = [{"value": default, "isDefault": True}]
    return doc


def _spec(function: str, name: str, *chars: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "lifecycleStatus": "Active", "version": "1.0",
            "targetEntitySchema": {"@type": function}, "specCharacteristic": list(chars)}


def run(ctx: Any) -> dict[str, Any]:
    rt = ctx.rt
    market, inventory = rt.market, rt.subscriber.inventory
    rt.tenants.create_tenant(STOCK, "Operator SIM stock")
    rt.tenants.create_tenant(TENANT, "FleetCo e-health devices")
    # APN pools of an order lie in the buyer's own address allocation
    inventory.allocations.set_addresses(TENANT, networks=["10.78.0.0/16"], actor="demo")
    for n in range(8):
        body = f"89882{900000 + n:013d}"
        inventory.add_sim(STOCK, SimSpec(
            Iccid(body + str(luhn_check_digit(body))), Imsi(f"00101{900000 + n:010d}", 2),
            SimSecrets(_K, _OPC, OpKind.OPC), state=SimState.INVENTORY), actor="demo")
    ctx.say(f"The operator's stock holds {inventory.count_sims(STOCK)['inventory']} SIMs")

    profile = {"sST": 1, "availability": 99.95, "dLLatency": 20,
               "dLThptPerSlice": {"guaThpt": 50000}}
    specs = [
        _spec("TenantCa", "Enterprise device CA", _char("caLabel", mandatory=True)),
        _spec("PrivateApn", "Private APN", _char("apnName", mandatory=True),
              _char("addressPool", mandatory=True), _char("radiusAuth", "pap")),
        _spec("NetworkPolicy", "Cloud-only policy",
              _char("policyRules", RULES, configurable=False)),
        _spec("SimBatch", "IoT SIMs", _char("stockTenant", STOCK, configurable=False),
              _char("apnName")),
        _spec("SliceSla", "e-health slice SLA",
              _char("serviceProfile", profile, configurable=False),
              _char("feeMinorUnits", 250000, configurable=False),
              _char("sliceName", mandatory=True), _char("consumerParty", mandatory=True)),
    ]
    refs = [{"id": market.create_item("serviceSpecification", None, s, "demo").document["id"]}
            for s in specs]
    product = market.create_item("productSpecification", None, {
        "name": "Private APN with SIMs and an e-health slice", "serviceSpecification": refs},
        "demo")
    offering = market.create_item("productOffering", None, {
        "name": "Private APN + e-health slice", "lifecycleStatus": "Launched",
        "isSellable": True, "productSpecification": {"id": product.document["id"]}}, "demo")
    ctx.say(f"Published offering {offering.document['name']!r} over {len(specs)} TMF633 "
            "service specifications")

    buyer_key = did_key(Ed25519Signer(bytes(range(32))).public_key)
    chars = {"apnName": "fleetco.health", "addressPool": "10.78.0.0/24", "caLabel": "devices",
             "sliceName": "ehealth", "consumerParty": buyer_key}
    order = market.create_order(TENANT, {"productOrderItem": [{
        "id": "1", "action": "add", "quantity": 4,
        "productOffering": {"id": offering.document["id"]},
        "product": {"productCharacteristic": [{"name": k, "value": v}
                                              for k, v in chars.items()]}}]}, "demo-fleetco")
    state = rt.orchestrator.process(order.document["id"])
    if state != "completed":
        raise RuntimeError(f"the order ended {state}: {rt.market.get_order(order.document['id'])}")
    service_order = market.list_service_orders(TENANT, False)[0].document
    services = [s.document for s in market.list_services(TENANT, False)]
    ctx.say(f"Product order {order.document['id'][:8]}… completed; service order with "
            f"{len(service_order['serviceOrderItem'])} items; {len(services)} services active")

    apn = inventory.get_apn(TENANT, "fleetco.health")
    access = rt.aaa.apns.access(TENANT, "fleetco.health")
    sims = inventory.list_sims(TENANT)
    ctx.say(f"APN {apn.name} pool {apn.pool}, RADIUS auth {access.auth}; "
            f"{len(sims)} SIMs active; CA {rt.bootstrap.cas.cas(TENANT)[0].label}")
    addresses = []
    for n, sim in enumerate(sims):
        decision = rt.subscriber.attach.decide(
            sim.imsi, Imei.from_tac_snr("35209900", f"{n + 500:06d}"), HOME, actor="demo")
        if not decision.allowed:
            raise RuntimeError(f"{sim.imsi} was refused: {decision.detail}")
        addresses.append(decision.address)
    ctx.say(f"The devices attach: {', '.join(str(a) for a in addresses)}")

    sla = next(s for s in services if s["category"] == "SliceSla")
    contract_id = next(c["value"] for c in sla["serviceCharacteristic"]
                       if c["name"] == "contractId")
    contract = rt.contracts.state(contract_id)
    ctx.say(f"SLA contract {contract_id} on the ledger: {contract['state']['status']}, "
            f"provider {contract['state']['parties']['provider'][:24]}…")
    partner = _partner_order(ctx, rt, offering.document)
    return {"order": order.document["id"], "state": state, "operator_b": partner,
            "services": sorted(s["category"] for s in services),
            "apn": {"name": apn.name, "pool": str(apn.pool), "radius_auth": access.auth},
            "sims": len(sims), "addresses": [str(a) for a in addresses],
            "sla_contract": {"id": contract_id, "status": contract["state"]["status"]}}


def _wanted(item: int, name: str) -> bool:
    """Which of B's values each item carries: the bundle's roaming, the slice's rest."""
    return name != "homePlmn" if item == 1 else name in ("homePlmn", "consumerParty")


def _partner_order(ctx: Any, rt: Any, slice_offering: dict[str, Any]) -> dict[str, Any]:
    """Operator B orders a connectivity bundle and the slice from A, across operators."""
    from fastapi.testclient import TestClient  # noqa: PLC0415 - FastAPI's test client: the HTTP step only

    from simtrust.api import create_app  # noqa: PLC0415 - the app with every route, only here

    market = rt.market
    refs = [{"id": market.create_item("serviceSpecification", None, s, "demo").document["id"]}
            for s in (
                _spec("SimBatch", "IoT SIMs", _char("stockTenant", STOCK, configurable=False)),
                _spec("RoamingAgreement", "Roaming in A's network",
                      _char("visitedPlmn", "00101", configurable=False),
                      _char("dataPerMb", 120, configurable=False),
                      _char("homePlmn", mandatory=True), _char("consumerParty",
                                                                mandatory=True)))]
    product = market.create_item("productSpecification", None, {
        "name": "IoT connectivity bundle", "serviceSpecification": refs}, "demo")
    bundle = market.create_item("productOffering", None, {
        "name": "IoT connectivity bundle (SIMs + roaming)", "lifecycleStatus": "Launched",
        "isSellable": True, "productSpecification": {"id": product.document["id"]}}, "demo")
    seller_url = "http://operator-a.example"
    rt.federation.publish(seller_url, [bundle.document, slice_offering])
    ctx.say(f"Operator A ({rt.federation.did[:40]}…) published its catalog on the ledger")

    other = Runtime.ephemeral(ctx.home / "operator-b")
    other.ledger = rt.ledger
    try:
        buyer = other.federation
        with TestClient(create_app(rt), base_url=seller_url) as client:
            publication = next(p for p in buyer.discover() if p.seller == rt.federation.did)
            buyer.fetch_catalog(client, publication)
            ctx.say(f"Operator B ({buyer.did[:40]}…) verified A's signature and catalog hash")
            rt.subscriber.inventory.allocations.set_addresses(
                rt.federation.partner(buyer.did), networks=["10.88.0.0/16"], actor="demo")
            key = did_key(other.identity.issuer().public_key)
            values = {"homePlmn": "20810", "consumerParty": key, "apnName": "iot.b",
                      "addressPool": "10.88.0.0/24", "caLabel": "b-devices",
                      "sliceName": "b-ehealth"}
            items = []
            for n, offering_id in enumerate((bundle.document["id"], slice_offering["id"])):
                items.append({"id": str(n + 1), "action": "add", "quantity": 2 if n == 0 else 1,
                              "productOffering": {"id": offering_id},
                              "product": {"productCharacteristic": [
                                  {"name": k, "value": v} for k, v in values.items()
                                  if _wanted(n, k)]}})
            order = buyer.order(client, publication, {"productOrderItem": items})
            current = buyer.refresh(client, order["id"])
        if current["state"] != "completed":
            raise RuntimeError(f"B's order ended {current['state']}: {current.get('note')}")
        history = buyer.history(order["id"])
        if not buyer.matches_anchor(current):
            raise RuntimeError("A's answer differs from its last anchored state")
        ctx.say("B's order " + " → ".join(h["state"] for h in history)
                + ", each state anchored on the ledger and signed by A")
        tenant = rt.federation.partner(buyer.did)
        attached = []
        for n, sim in enumerate(rt.subscriber.inventory.list_sims(tenant)):
            decision = rt.subscriber.attach.decide(
                sim.imsi, Imei.from_tac_snr("35209900", f"{n + 700:06d}"), HOME, actor="demo")
            if not decision.allowed:
                raise RuntimeError(f"{sim.imsi} was refused: {decision.detail}")
            attached.append(sim.imsi.value)
        contracts = [s.document for s in market.list_services(tenant, False)
                     if s.document["category"] in ("SliceSla", "RoamingAgreement")]
        states = {}
        for service in contracts:
            name = next(c["value"] for c in service["serviceCharacteristic"]
                        if c["name"] == "contractId")
            # Both parties sign: B with its DID's key, A with its node key.
            for signer in (other.identity.issuer(), rt.ledger.signer):
                current_state = other.contracts.state(name)
                body = json.loads(transition_payload(name, current_state["state_hash"],
                                                     {"action": "sign"}, [signer]))
                submit_contract(rt.ledger, other.contracts, body)
            states[service["category"]] = other.contracts.state(name)["state"]["status"]
        ctx.say(f"B's {len(attached)} devices attach in A's network; both signed, on the ledger"
                f" as B reads it: roaming agreement {states['RoamingAgreement']}, "
                f"slice SLA {states['SliceSla']}")
        return {"order": order["id"], "history": [h["state"] for h in history],
                "attached": attached, "contracts": states}
    finally:
        other.close()
