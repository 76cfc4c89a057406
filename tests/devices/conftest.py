"""Fixtures of the devices tests: a runtime with SIMs, a GBA bootstrap listener and the
LwM2M bootstrap and management servers on loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from simtrust.alerts import MemorySink
from simtrust.api.bootstrap_listener import BootstrapListener
from simtrust.bootstrap import BootstrapServices, DeviceClient, NafId, SimApplet, impi_from_imsi
from simtrust.devices import (
    GBA_PSK_PREFIX,
    DeviceAlert,
    DeviceCertificates,
    DeviceServices,
    Lwm2mClient,
    new_endpoint_name,
)
from simtrust.errors import NotFound
from simtrust.runtime import Runtime
from simtrust.subscriber import (
    Iccid,
    Imsi,
    OpKind,
    Sim,
    SimSecrets,
    SimSpec,
    SimState,
    SubscriberServices,
    build_services,
    luhn_check_digit,
)
from simtrust.subscriber.auc import Milenage, Usim

K1 = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
OPC1 = bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf")
TENANT = "acme"
IMEI1 = "490154203237518"
IMEI2 = "356938035643809"


def iccid(n: int) -> Iccid:
    body = f"89882{n:013d}"
    return Iccid(body + str(luhn_check_digit(body)))


def imsi(n: int) -> Imsi:
    return Imsi(f"00101{n:010d}", 2)


class Clock:
    """A settable clock (tests move time instead of sleeping)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class Env:
    rt: Runtime
    subs: SubscriberServices
    boot: BootstrapServices
    listener: BootstrapListener
    devices: DeviceServices
    clock: Clock
    alerts: MemorySink[DeviceAlert]

    def gba(self, n: int) -> tuple[str, bytes]:
        """Run GBA for SIM ``n``; the PSK identity and Ks_NAF a GBA_ME device uses on the
        LwM2M bootstrap server (the mobile equipment holds Ks_NAF, derived as the BSF does)."""
        applet = SimApplet(iccid(n).value, Usim(Milenage(K1, OPC1)),
                           impi=impi_from_imsi(imsi(n).value, 2), supi=f"imsi-{imsi(n).value}")
        with DeviceClient(applet, base_url=self.listener.base_url,
                          trust_pem=self.listener.trust_pem,
                          naf_id=NafId(self.boot.server.naf_id.fqdn), clock=self.clock) as c:
            c.bootstrap()
        b_tid = applet.b_tid
        assert b_tid is not None
        key = self.boot.bsf.naf_key(b_tid, self.devices.bootstrap.naf_id).key
        return GBA_PSK_PREFIX + b_tid, key

    @property
    def bs_uri(self) -> str:
        return f"coaps://127.0.0.1:{self.devices.bs_port}"


def add_sim(subs: SubscriberServices, n: int, tenant: str = TENANT) -> None:
    subs.inventory.add_sim(tenant, SimSpec(iccid(n), imsi(n),
                                           secrets=SimSecrets(K1, OPC1, OpKind.OPC),
                                           state=SimState.ACTIVE), actor="test")


def dm_client(env: Env, n: int, imei: str) -> Lwm2mClient:
    """A client of SIM ``n`` with a DM PSK issued now, pointed at the DM server."""
    identity, key = env.devices.credentials.issue("dm", imsi(n).value, TENANT)
    dev = Lwm2mClient(new_endpoint_name(imei, imsi(n).value))
    dev.values.update({(0, 1, 0): f"coaps://127.0.0.1:{env.devices.dm_port}",
                       (0, 1, 3): identity.encode(), (0, 1, 5): key})
    return dev


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    clock = Clock()
    rt = Runtime.ephemeral(tmp_path / "home", clock=clock)
    subs = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[])
    rt.subscriber = subs
    rt.tenants.create_tenant(TENANT, "Acme Meters")
    for n in (1, 2, 3):
        add_sim(subs, n)
    boot = rt.bootstrap
    listener = BootstrapListener(boot, "127.0.0.1", 0, hostnames=["localhost", "127.0.0.1"])
    listener.start()
    alerts: MemorySink[DeviceAlert] = MemorySink()

    def sim_of(number: str) -> Sim | None:
        try:
            return subs.inventory.get_sim(Iccid(number))
        except NotFound:
            return None

    certificates = DeviceCertificates(boot.cas, sim_of, ["localhost", "127.0.0.1"])
    devices = DeviceServices(rt.db, rt.keyring, clock, sims=subs.inventory, naf_keys=boot.bsf,
                             naf_fqdn="lwm2m-bs.localhost", sinks=[alerts], allow_nosec=True,
                             certificates=certificates)
    devices.start(nosec_port=0)
    rt.devices = devices
    try:
        yield Env(rt, subs, boot, listener, devices, clock, alerts)
    finally:
        listener.stop()
        subs.close()
        rt.close()
