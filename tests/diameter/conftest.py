"""Fixtures of the Diameter tests: an HSS/EIR listener on loopback and an MME client.

The client encodes and decodes with ``python-diameter`` (PyPI), an
implementation independent of simtrust's codec.
"""

from __future__ import annotations

import itertools
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from diameter.message import Message as PdMessage
from diameter.message.avp.grouped import VendorSpecificApplicationId
from diameter.message.commands import CapabilitiesExchangeRequest

from simtrust.alerts import MemorySink
from simtrust.diameter import DiameterListener, NodeSettings
from simtrust.runtime import Runtime
from simtrust.subscriber import SubscriberServices, build_services

from ..subscriber.conftest import TENANT

MME = "mme.test.realm"
REALM = "test.realm"
HSS = "hss.test.realm"
S6A = 16777251
S13 = 16777252


@dataclass
class Env:
    rt: Runtime
    subs: SubscriberServices
    listener: DiameterListener
    host: str
    port: int


@pytest.fixture
def env(sqlite_runtime: Runtime) -> Iterator[Env]:
    sqlite_runtime.tenants.create_tenant(TENANT, "Acme Meters")
    sqlite_runtime.tenants.create_tenant("other", "Other Co")
    subs = build_services(sqlite_runtime.db, sqlite_runtime.keyring, sqlite_runtime.audit, sqlite_runtime.clock, sinks=[MemorySink()])
    settings = NodeSettings(HSS, REALM, frozenset({MME, "fd.test.realm"}), watchdog_s=1.0)
    listener = DiameterListener(settings, subs.hss, subs.eir, sqlite_runtime.audit)
    host, port = listener.start("127.0.0.1", 0)
    try:
        yield Env(sqlite_runtime, subs, listener, host, port)
    finally:
        listener.stop()
        subs.close()


class Mme:
    """A minimal MME: a TCP connection speaking python-diameter messages."""

    def __init__(self, port: int, origin: str = MME) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.origin = origin
        self.ids = itertools.count(1000)

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_raw(self) -> bytes:
        head = self._exactly(4)
        length = struct.unpack(">I", head)[0] & 0xFFFFFF
        return head + self._exactly(length - 4)

    def read(self) -> Any:
        return PdMessage.from_bytes(self.read_raw())

    def _exactly(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def stamp(self, msg: Any, e2e: int | None = None) -> Any:
        msg.header.hop_by_hop_identifier = next(self.ids)
        msg.header.end_to_end_identifier = next(self.ids) if e2e is None else e2e
        return msg

    def exchange(self, msg: Any) -> Any:
        self.send_raw(self.stamp(msg).as_bytes())
        return self.read()

    def cer(self, apps: tuple[int, ...] = (S6A, S13)) -> Any:
        cer = CapabilitiesExchangeRequest()
        cer.origin_host = self.origin.encode()
        cer.origin_realm = REALM.encode()
        cer.host_ip_address = ["127.0.0.1"]
        cer.vendor_id = 0
        cer.product_name = "test-mme"
        cer.supported_vendor_id = [10415]
        cer.vendor_specific_application_id = [
            VendorSpecificApplicationId(vendor_id=10415, auth_application_id=a) for a in apps
        ]
        return self.exchange(cer)


@pytest.fixture
def mme(env: Env) -> Iterator[Mme]:
    client = Mme(env.port)
    cea = client.cer()
    assert 2001 == cea.result_code
    try:
        yield client
    finally:
        client.close()
