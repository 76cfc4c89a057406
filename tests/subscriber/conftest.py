"""Fixtures of the subscriber tests: services on each store, identifier factories."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from simtrust.alerts import MemorySink
from simtrust.config import Settings, load_settings
from simtrust.runtime import Runtime
from simtrust.subscriber import (
    AttachEngine,
    Iccid,
    Imei,
    Imsi,
    OpKind,
    SimSecrets,
    SimSpec,
    SimState,
    SubscriberServices,
    build_services,
    luhn_check_digit,
)

#: TS 35.208 test set 1 (K, OP, OPc).
K1 = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
OP1 = bytes.fromhex("cdc202d5123e20f62b6d676ac72cb318")
OPC1 = bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf")
TENANT = "acme"


def iccid(n: int) -> Iccid:
    """The n-th test ICCID (19 digits: 89 + 882 + serial + Luhn)."""
    body = f"89882{n:013d}"
    return Iccid(body + str(luhn_check_digit(body)))


def imsi(n: int) -> Imsi:
    return Imsi(f"00101{n:010d}", 2)


def imei(n: int, tac: str = "35209900") -> Imei:
    return Imei.from_tac_snr(tac, f"{n:06d}")


def spec(n: int, **kwargs: object) -> SimSpec:
    defaults: dict[str, object] = {
        "secrets": SimSecrets(K1, OPC1, OpKind.OPC),
        "state": SimState.ACTIVE,
    }
    defaults.update(kwargs)
    return SimSpec(iccid(n), imsi(n), **defaults)  # type: ignore[arg-type]


def seed_home(home: Path, numbers: Iterable[int], settings: Settings | None = None) -> None:
    """Initialise a simtrust home (``settings`` or the defaults for ``home``) holding
    tenant :data:`TENANT` and the active SIMs ``spec(n)`` for ``n`` in ``numbers``;
    everything is closed again, for tests whose servers run in other processes."""
    rt = Runtime.initialise(settings or load_settings(env={}, home=home))
    try:
        rt.tenants.create_tenant(TENANT, "Acme")
        subs = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[])
        for n in numbers:
            subs.inventory.add_sim(TENANT, spec(n), actor="test")
        subs.close()
    finally:
        rt.close()


@pytest.fixture
def alerts() -> MemorySink:
    return MemorySink()


@pytest.fixture
def subs(runtime: Runtime, alerts: MemorySink) -> Iterator[SubscriberServices]:
    """Subscriber services on SQLite and PostgreSQL, tenant ``acme`` created."""
    runtime.tenants.create_tenant(TENANT, "Acme Meters")
    services = build_services(runtime.db, runtime.keyring, runtime.audit, runtime.clock, sinks=[alerts])
    try:
        yield services
    finally:
        services.close()


@pytest.fixture
def lite(sqlite_runtime: Runtime, alerts: MemorySink) -> Iterator[SubscriberServices]:
    """Subscriber services on SQLite only (for tests about logic, not storage)."""
    sqlite_runtime.tenants.create_tenant(TENANT, "Acme Meters")
    services = build_services(sqlite_runtime.db, sqlite_runtime.keyring, sqlite_runtime.audit, sqlite_runtime.clock, sinks=[alerts])
    try:
        yield services
    finally:
        services.close()


def feed_not_due(engine: AttachEngine) -> None:
    """Sync ``engine`` with the change feed and make the next sync due in an hour.

    The engine declines a decision from memory when its change feed is due (every
    0.5 s by default); a test that asserts the held path was taken must not depend on
    how fast the machine ran it."""
    engine._sync_interval = 3600.0
    engine.sync()

