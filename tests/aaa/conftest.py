"""Fixtures of the AAA tests: a runtime with a tenant, an APN with a pool, SIMs, a
gateway client on loopback and the RADIUS listeners on ephemeral ports."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from simtrust.aaa import AaaServices, RadiusListener
from simtrust.runtime import Runtime
from simtrust.subscriber import (
    Iccid,
    Imei,
    ImeiSv,
    Imsi,
    OpKind,
    SimSecrets,
    SimSpec,
    SimState,
    luhn_check_digit,
)

TENANT = "acme"
APN = "acme.iot"
SECRET = "gw-secret-1"
K1 = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
OPC1 = bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf")


def iccid(n: int) -> Iccid:
    body = f"89882{n:013d}"
    return Iccid(body + str(luhn_check_digit(body)))


def imsi(n: int) -> Imsi:
    return Imsi(f"00101{n:010d}", 2)


def imeisv(n: int) -> ImeiSv:
    return ImeiSv(f"35209900{n:06d}01")


def imei(n: int) -> Imei:
    return imeisv(n).imei


def wait_until(check: Callable[[], object], timeout: float = 20.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@dataclass
class Aaa:
    rt: Runtime
    services: AaaServices
    auth: RadiusListener
    acct: RadiusListener

    @property
    def auth_port(self) -> int:
        return self.auth.address[1]

    @property
    def acct_port(self) -> int:
        return self.acct.address[1]

    def add_sim(self, n: int, **kwargs: object) -> None:
        defaults: dict[str, object] = {"secrets": SimSecrets(K1, OPC1, OpKind.OPC),
                                       "state": SimState.ACTIVE, "apn": APN}
        defaults.update(kwargs)
        spec = SimSpec(iccid(n), imsi(n), **defaults)  # type: ignore[arg-type]
        self.rt.subscriber.inventory.add_sim(TENANT, spec, actor="test")


@pytest.fixture
def aaa(sqlite_runtime: Runtime) -> Iterator[Aaa]:
    rt = sqlite_runtime
    rt.tenants.create_tenant(TENANT, "Acme Meters")
    rt.subscriber.inventory.create_apn(TENANT, APN, actor="test", pool="10.45.0.0/24")
    services = rt.aaa
    services.clients.add("127.0.0.1/32", SECRET, actor="test", name="pgw-1")
    auth = RadiusListener(services.server, "127.0.0.1", 0, "auth").start()
    acct = RadiusListener(services.server, "127.0.0.1", 0, "acct").start()
    try:
        yield Aaa(rt, services, auth, acct)
    finally:
        auth.close()
        acct.close()


def radclient(port: int, kind: str, attributes: str, secret: str = SECRET,
              retries: int = 3, timeout: float = 2.0) -> str:
    """Run Debian's radclient once; its verbose output."""
    exe = shutil.which("radclient")
    if exe is None:
        pytest.fail("radclient (freeradius-utils) is not installed")
    done = subprocess.run(
        [exe, "-x", "-r", str(retries), "-t", str(timeout), f"127.0.0.1:{port}", kind, secret],
        input=attributes, capture_output=True, text=True, timeout=60, check=False,
    )
    return done.stdout + done.stderr


def repo_path() -> Path:
    return Path(__file__).resolve().parents[2]
