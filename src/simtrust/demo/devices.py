"""Devices: a meter bootstraps over LwM2M with its SIM-derived key, is read, and takes a
firmware update in a staged rollout to its group.

GBA over Ub gives the meter Ks_NAF for the LwM2M bootstrap server (PSK identity
``3GPP-bootstrapping,<B-TID>``); the bootstrap server writes its Security and Server
objects; the meter registers over DTLS with the fresh PSK; the operator reads objects
3, 4 and 6; a campaign pulls the new package by URI through object 5 (Downloading,
Downloaded, Updating, Idle with Update Result 1) to the canary group, then the fleet.
"""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from simtrust.api.bootstrap_listener import BootstrapListener
from simtrust.bootstrap import DeviceClient, NafId, SimApplet, impi_from_imsi
from simtrust.devices import (
    CF_SENML_JSON,
    CF_TLV,
    GBA_PSK_PREFIX,
    Lwm2mClient,
    format_path,
    new_endpoint_name,
)
from simtrust.subscriber import (
    Iccid,
    Imsi,
    OpKind,
    SimSecrets,
    SimSpec,
    SimState,
    luhn_check_digit,
)
from simtrust.subscriber.auc import Milenage, Usim

ORDER = 27
PACKAGE = b"meter firmware 2.1.0"
IMEIS = ("490154203237518", "356938035643809")


class _Packages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(PACKAGE)))
        self.end_headers()
        self.wfile.write(PACKAGE)

    def log_message(self, *args: Any) -> None:
        return


async def _fetch(uri: str) -> bytes:
    async with httpx.AsyncClient() as http:
        got = await http.get(uri)
        got.raise_for_status()
        return got.content


def _install(package: bytes) -> str | None:
    return package.decode().rsplit(" ", 1)[-1] if package.startswith(b"meter firmware") \
        else None


def run(ctx: Any) -> dict[str, Any]:
    rt = ctx.rt
    tenant = ctx.data.get("tenant") or "acme-meters"
    if tenant not in {t.id for t in rt.tenants.list_tenants()}:
        rt.tenants.create_tenant(tenant, "Acme Smart Meters")
    inv = rt.subscriber.inventory
    canary = inv.create_group(tenant, "lwm2m-canary", actor="demo")
    fleet = inv.create_group(tenant, "lwm2m-fleet", actor="demo")
    sims = []
    for n, group in ((1, canary), (2, fleet)):
        body = f"89882770000000010{n}"[:18]
        iccid = Iccid(body + str(luhn_check_digit(body)))
        imsi = Imsi(f"00101990000010{n}", 2)
        k, opc = os.urandom(16), os.urandom(16)
        inv.add_sim(tenant, SimSpec(iccid, imsi, secrets=SimSecrets(k, opc, OpKind.OPC),
                                    state=SimState.ACTIVE, group_id=group.id), actor="demo")
        sims.append((iccid, imsi, k, opc))
    boot = rt.bootstrap
    devices = rt.devices
    devices.start()
    listener = BootstrapListener(boot, "127.0.0.1", 0, hostnames=["localhost", "127.0.0.1"])
    listener.start()
    packages = ThreadingHTTPServer(("127.0.0.1", 0), _Packages)
    threading.Thread(target=packages.serve_forever, daemon=True).start()
    meters: list[Lwm2mClient] = []
    try:
        for (iccid, imsi, k, opc), imei in zip(sims, IMEIS, strict=True):
            applet = SimApplet(iccid.value, Usim(Milenage(k, opc)),
                               impi=impi_from_imsi(imsi.value, 2), supi=f"imsi-{imsi.value}")
            with DeviceClient(applet, base_url=listener.base_url,
                              trust_pem=listener.trust_pem,
                              naf_id=NafId(boot.server.naf_id.fqdn), clock=rt.clock) as c:
                c.bootstrap()
            b_tid = applet.b_tid
            assert b_tid is not None
            # A GBA_ME meter: its mobile equipment derives Ks_NAF as the BSF does.
            key = boot.bsf.naf_key(b_tid, devices.bootstrap.naf_id).key
            meter = Lwm2mClient(new_endpoint_name(imei, imsi.value), fetch=_fetch,
                                install=_install)
            meters.append(meter)
            devices.call(meter.bootstrap(f"coaps://127.0.0.1:{devices.bs_port}",
                                         GBA_PSK_PREFIX + b_tid, key))
            uri, identity, _ = meter.server_account()
            devices.call(meter.register())
            ctx.say(f"meter {iccid} bootstrapped with Ks_NAF (B-TID {b_tid}), got {uri} "
                    f"and PSK identity {identity}, registered as {meter.endpoint_name}")
        first = meters[0].endpoint_name
        read: dict[str, Any] = {}
        for path, fmt in (((3, 0), CF_SENML_JSON), ((4, 0), CF_TLV), ((6, 0), CF_SENML_JSON)):
            values = devices.call(devices.manager.read(first, path, fmt=fmt))
            read.update({format_path(p): v for p, v in values.items()
                         if not isinstance(v, bytes)})
        ctx.say(f"read /3/0, /4/0 (TLV), /6/0: firmware {read['/3/0/3']}, "
                f"signal {read['/4/0/2']} dBm, cell {read['/4/0/8']}")
        port = packages.server_address[1]
        campaign = devices.campaigns.create(
            tenant, f"http://127.0.0.1:{port}/meter-2.1.0.bin", "2.1.0",
            groups=[canary.id, fleet.id], failure_threshold=0.0)
        done = devices.call(devices.campaigns.run(campaign.campaign_id))
        ctx.say(f"campaign {done.campaign_id}: {done.status}, stages "
                f"{[len(s) for s in done.stages]}, results {sorted(set(done.results.values()))}")
        return {"registered": len(devices.manager), "read": read,
                "campaign": done.to_json(),
                "firmware": [m.values[(3, 0, 3)] for m in meters]}
    finally:
        for meter in meters:
            meter.close()
        packages.shutdown()
        packages.server_close()
        listener.stop()
        devices.stop()
