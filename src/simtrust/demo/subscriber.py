"""Subscribers: a SIM fleet imported, authenticated, attached; a swapped SIM denied and alerted.

Covers the vendor-file import, 5G AKA through Nudm with a SUCI, EPS AKA, AUTS
resynchronisation, exact-pair IMEI binding, roaming rules, the blocklist and the
SIM-swap alert to the tenant's webhook (a local HTTP server) and MQTT.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

from simtrust.subscriber import (
    AttachPolicy,
    BindingMode,
    Imei,
    Imsi,
    Plmn,
    Roaming,
    SwapAction,
    decision_history,
    luhn_check_digit,
)
from simtrust.subscriber.auc import Milenage, SyncFailure, Usim, UsimSqnArray, kasme, plmn_id
from simtrust.subscriber.auc.suci import PROFILE_A, conceal_imsi

ORDER = 20

FLEET = 200
HOME = Plmn("001", "01")
SNN = HOME.serving_network_name


class _Webhook(BaseHTTPRequestHandler):
    """The tenant's alert receiver (a local HTTP server for the demo)."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        _Webhook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


def _vendor_file(path: Path, count: int) -> tuple[Path, dict[str, tuple[bytes, bytes]]]:
    secrets: dict[str, tuple[bytes, bytes]] = {}
    lines = ["ICCID,IMSI,KI,OPC,AMF,STATE,APN,PIN1,PUK1"]
    for i in range(count):
        body = f"8988211{i:011d}"
        iccid = body + str(luhn_check_digit(body))
        imsi = f"00101{i + 1:010d}"
        k, opc = os.urandom(16), os.urandom(16)
        secrets[imsi] = (k, opc)
        lines.append(f"{iccid},{imsi},{k.hex()},{opc.hex()},8000,active,meters,0000,12345678")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, secrets


def _device(i: int) -> Imei:
    return Imei.from_tac_snr("86753090", f"{i:06d}")


def run(ctx: Any) -> dict[str, Any]:
    rt = ctx.rt
    tenant = ctx.data.get("tenant") or "acme-meters"
    if tenant not in {t.id for t in rt.tenants.list_tenants()}:
        rt.tenants.create_tenant(tenant, "Acme Smart Meters")
    services = rt.subscriber
    inv = services.inventory
    _Webhook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    webhook = f"http://127.0.0.1:{server.server_address[1]}/simtrust-alerts"
    try:
        # 1. Provision: APN pool, exact-pair IMEI lock, roaming in France, then the vendor file.
        inv.create_apn(tenant, "meters", actor="demo", pool="10.77.0.0/22")
        inv.set_policy(AttachPolicy(tenant, binding_mode=BindingMode.EXACT_PAIR,
                                    swap_action=SwapAction.DENY, roaming=Roaming.parse(["208"]),
                                    webhook_url=webhook), actor="demo")
        file, secrets = _vendor_file(ctx.home / "acme-batch-0042.out", FLEET)
        summary = services.importer.import_file(file, tenant, actor="demo")
        ctx.say(f"imported {summary.imported} SIMs from {file.name} in {summary.seconds:.2f} s "
                f"(K and OPc sealed; ignored columns {', '.join(summary.ignored_columns)})")

        # 2. Authenticate: 5G AKA through the Nudm API with a SUCI (profile A), on a USIM.
        hn_key = services.hn_keys.generate(1, "A", actor="demo")
        client = ctx.data.get("client")
        operator = {"Authorization": f"Bearer {ctx.data['operator_key']}"} if client else {}
        imsis = sorted(secrets)
        authenticated = 0
        for imsi in imsis[:10]:
            k, opc = secrets[imsi]
            suci = str(conceal_imsi(imsi, 2, scheme=PROFILE_A, key_id=1,
                                    hn_public_key=hn_key.public_key))
            body = {"servingNetworkName": SNN, "ausfInstanceId": str(uuid.uuid4())}
            if client is not None:
                response = client.post(
                    f"/nudm-ueau/v1/{suci}/security-information/generate-auth-data",
                    json=body, headers=operator)
                response.raise_for_status()
                result = response.json()
            else:
                result = services.udm.generate_auth_data(suci, body, actor="demo")
            av = result["authenticationVector"]
            answer, _ = Usim(Milenage(k, opc)).authenticate(
                bytes.fromhex(av["rand"]), bytes.fromhex(av["autn"]), require_separation_bit=True)
            if answer.res_star(SNN, bytes.fromhex(av["rand"])).hex() != av["xresStar"]:
                raise RuntimeError("RES* does not match XRES*")
            authenticated += 1
        ctx.say(f"5G AKA: {authenticated} SUCIs de-concealed, vectors accepted by the USIMs, "
                "RES* = XRES*")
        # EPS AKA for one SIM, and a USIM whose SQN ran ahead: AUTS resynchronises it.
        k, opc = secrets[imsis[0]]
        vector = services.auth.eps_vectors(Imsi(imsis[0], 2), HOME, actor="demo")[0]
        answer, _ = Usim(Milenage(k, opc)).authenticate(vector.rand, vector.autn)
        if vector.kasme != kasme(answer.ck, answer.ik, plmn_id("001", "01"), vector.autn[:6]):
            raise RuntimeError("K_ASME mismatch")
        k, opc = secrets[imsis[1]]
        card = Usim(Milenage(k, opc), UsimSqnArray(tuple([4000] * 32)))
        vector = services.auth.eps_vectors(Imsi(imsis[1], 2), HOME, actor="demo")[0]
        try:
            card.authenticate(vector.rand, vector.autn)
            raise RuntimeError("the stale SQN was accepted")
        except SyncFailure as failure:
            sqn_ms = services.auth.resynchronise(Imsi(imsis[1], 2), vector.rand, failure.auts,
                                                 actor="demo")
        fresh = services.auth.eps_vectors(Imsi(imsis[1], 2), HOME, actor="demo")[0]
        card.authenticate(fresh.rand, fresh.autn)
        ctx.say(f"EPS AKA with K_ASME verified; a USIM at SQN {sqn_ms.hex()} sent AUTS, "
                "the AuC resynchronised and its next vector was accepted")

        # 3. Attach the fleet: each SIM binds to its meter on first use and gets an address.
        engine = services.attach
        addresses = {}
        for i, imsi in enumerate(imsis):
            decision = engine.decide(imsi, _device(i), HOME, actor="demo")
            if not decision.allowed:
                raise RuntimeError(f"attach of {imsi} denied: {decision.reason}")
            addresses[imsi] = decision.address
        roaming = engine.decide(imsis[2], _device(2), Plmn("208", "01"), actor="demo")
        abroad = engine.decide(imsis[3], _device(3), Plmn("310", "410"), actor="demo")
        ctx.say(f"attached {len(imsis)} meters (exact-pair binding on first use), addresses "
                f"{addresses[imsis[0]]} … {addresses[imsis[-1]]}; roaming in 208-01: "
                f"{roaming.reason}; in 310-410: {abroad.reason}")

        # 4. The swap: SIM 7 moved into an unknown device; and a stolen meter on the blocklist.
        swapped = engine.decide(imsis[7], Imei.from_tac_snr("35209900", "777777"), HOME,
                                actor="demo")
        services.blocklist.add_imei(_device(9).value, actor="demo", reason="reported stolen")
        stolen = engine.decide(imsis[9], _device(9), HOME, actor="demo")
        services.alerts.flush(10)
        alerts = list(_Webhook.received)
        ctx.say(f"SIM {imsis[7]} in a new device: {'ALLOW' if swapped.allowed else 'DENY'} "
                f"({swapped.reason}); webhook alerts received: {len(alerts)} "
                f"({alerts[0]['kind'] if alerts else 'none'}); MQTT topic "
                f"simtrust/alerts/{tenant}/{imsis[7]}")
        ctx.say(f"stolen meter {_device(9)}: {stolen.reason}")
        if swapped.allowed or not alerts or stolen.allowed:
            raise RuntimeError("the swapped SIM or the stolen device was not stopped")
        flow_owner = services.addresses.lookup(addresses[imsis[5]] or "")
        ctx.data["subscriber"] = {
            "tenant": tenant,
            "imsis": imsis,
            "addresses": addresses,
            "devices": {imsi: _device(i).value for i, imsi in enumerate(imsis)},
            "address_book": services.addresses,
        }
        return {
            "imported": summary.imported,
            "authenticated_5g": authenticated,
            "resync_sqn_ms": sqn_ms.hex(),
            "attached": len(addresses),
            "roaming_decision": roaming.reason,
            "swap_decision": swapped.to_json(),
            "stolen_decision": stolen.reason,
            "webhook_alerts": alerts,
            "alert_deliveries": services.alerts.delivered,
            "alert_failures": services.alerts.failed,
            "address_lookup": {addresses[imsis[5]]: flow_owner},
            "audited_decisions": len(decision_history(rt.audit, tenant_id=tenant,
                                                      limit=100_000)),
        }
    finally:
        server.shutdown()
        server.server_close()
