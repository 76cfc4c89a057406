"""Fixtures of the bootstrap tests: a runtime with a tenant, SIMs, a tenant CA and the listener."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from simtrust.alerts import MemorySink
from simtrust.api.bootstrap_listener import BootstrapListener
from simtrust.bootstrap import (
    BootstrapServices,
    CertProfile,
    DeviceClient,
    NafId,
    SimApplet,
    impi_from_imsi,
)
from simtrust.runtime import Runtime
from simtrust.subscriber import (
    Iccid,
    Imsi,
    OpKind,
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
OTHER = "globex"
LABEL = "acme-devices"
#: Its store-wide EST label (CA labels are per tenant).
EST_LABEL = f"{TENANT}.{LABEL}"


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
    clock: Clock
    alerts: MemorySink

    def applet(self, n: int) -> SimApplet:
        return SimApplet(iccid(n).value, Usim(Milenage(K1, OPC1)),
                         impi=impi_from_imsi(imsi(n).value, 2), supi=f"imsi-{imsi(n).value}")

    def client(self, applet: SimApplet, naf_fqdn: str | None = None) -> DeviceClient:
        return DeviceClient(applet, base_url=self.listener.base_url,
                            trust_pem=self.listener.trust_pem,
                            naf_id=NafId(naf_fqdn or self.boot.server.naf_id.fqdn),
                            clock=self.clock)


def add_sim(subs: SubscriberServices, n: int, tenant: str = TENANT) -> None:
    subs.inventory.add_sim(tenant, SimSpec(iccid(n), imsi(n),
                                           secrets=SimSecrets(K1, OPC1, OpKind.OPC),
                                           state=SimState.ACTIVE), actor="test")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    clock = Clock()
    rt = Runtime.ephemeral(tmp_path / "home", clock=clock)
    alerts = MemorySink()
    subs = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[alerts])
    rt.subscriber = subs
    rt.tenants.create_tenant(TENANT, "Acme Meters")
    rt.tenants.create_tenant(OTHER, "Globex")
    for n in (1, 2, 3):
        add_sim(subs, n)
    add_sim(subs, 9, OTHER)
    boot = rt.bootstrap
    boot.cas.create_hosted(TENANT, LABEL, common_name="Acme Device CA",
                           profile=CertProfile(organization="Acme", lifetime_s=3600),
                           actor="test")
    listener = BootstrapListener(boot, "127.0.0.1", 0, hostnames=["localhost", "127.0.0.1"])
    listener.start()
    try:
        yield Env(rt, subs, boot, listener, clock, alerts)
    finally:
        listener.stop()
        subs.close()
        rt.close()


def tls_files(tmp_path: Path, env: Env) -> dict[str, Any]:
    trust = tmp_path / "trust.pem"
    trust.write_bytes(env.listener.trust_pem)
    return {"trust": trust}
