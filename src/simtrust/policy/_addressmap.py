"""Address → SIM mapping: which IMSI holds a PDN address right now.

A flow's source (or destination) address is the address the SIM was given
at attach (TS 23.401 §5.3.1 IP address allocation), static per SIM or from
a pool per APN. :class:`AddressMap` is that table; the subscriber attach path
fills it through :meth:`attach` / :meth:`detach`, and flows are mapped with
:meth:`lookup`. Private addresses may repeat across APNs, so lookups can be
qualified by APN (the exporter's APN when a gateway serves one APN).
"""

from __future__ import annotations

import ipaddress
import threading

from simtrust.domain import ImsiDigits
from simtrust.errors import Conflict, InvalidInput, NotFound

__all__ = ["AddressMap", "AddressPoolExhausted"]


class AddressPoolExhausted(Conflict):
    """The APN's address pool has no free address."""

    code = "address-pool-exhausted"


class _Pool:
    __slots__ = ("free", "network")

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        if self.network.num_addresses > 1 << 20:
            raise InvalidInput("address pool larger than 2^20 addresses", field="cidr")
        hosts = self.network.hosts() if self.network.num_addresses > 2 else iter(self.network)
        self.free = [str(a) for a in reversed(list(hosts))]


class AddressMap:
    """IP ↔ IMSI bindings with static assignments and per-APN pools. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_addr: dict[tuple[str, str], ImsiDigits] = {}
        self._any: dict[str, ImsiDigits] = {}
        self._by_imsi: dict[ImsiDigits, tuple[str, str]] = {}
        self._static: dict[tuple[str, ImsiDigits], str] = {}
        self._pools: dict[str, _Pool] = {}
        #: bumped by every change of a binding (batch mapping rebuilds its index then)
        self.version = 0

    def add_pool(self, apn: str, cidr: str) -> None:
        """Give ``apn`` a dynamic pool (one per APN)."""
        with self._lock:
            self._pools[apn] = _Pool(cidr)

    def assign_static(self, apn: str, imsi: ImsiDigits, address: str) -> None:
        """Reserve ``address`` for ``imsi`` on ``apn`` (used at each attach)."""
        addr = str(ipaddress.ip_address(address))
        with self._lock:
            self._static[(apn, imsi)] = addr
            pool = self._pools.get(apn)
            if pool is not None and addr in pool.free:
                pool.free.remove(addr)

    def attach(self, imsi: ImsiDigits, apn: str, address: str | None = None) -> str:
        """Bind ``imsi`` on ``apn``: the given address, its static one, or one from the pool."""
        with self._lock:
            self._release(imsi)
            if address is not None:
                addr = str(ipaddress.ip_address(address))
                pool = self._pools.get(apn)
                if pool is not None and addr in pool.free:
                    pool.free.remove(addr)
            elif (apn, imsi) in self._static:
                addr = self._static[(apn, imsi)]
            else:
                pool = self._pools.get(apn)
                if pool is None:
                    raise NotFound(f"APN {apn!r} has no address pool", apn=apn)
                if not pool.free:
                    raise AddressPoolExhausted(f"address pool of {apn!r} exhausted", apn=apn)
                addr = pool.free.pop()
            holder = self._by_addr.get((apn, addr))
            if holder is not None and holder != imsi:
                raise Conflict(f"{addr} is bound to another SIM on {apn!r}", apn=apn)
            self._by_addr[(apn, addr)] = imsi
            self._any[addr] = imsi
            self._by_imsi[imsi] = (apn, addr)
            self.version += 1
            return addr

    def detach(self, imsi: ImsiDigits) -> None:
        with self._lock:
            self._release(imsi)

    def _release(self, imsi: ImsiDigits) -> None:
        bound = self._by_imsi.pop(imsi, None)
        if bound is None:
            return
        apn, addr = bound
        self.version += 1
        self._by_addr.pop((apn, addr), None)
        if self._any.get(addr) == imsi:
            del self._any[addr]
        pool = self._pools.get(apn)
        if pool is not None and (apn, imsi) not in self._static and addr not in pool.free:
            net = pool.network
            if ipaddress.ip_address(addr) in net:
                pool.free.append(addr)

    def lookup(self, address: str, apn: str | None = None) -> ImsiDigits | None:
        """IMSI bound to ``address`` (on ``apn`` when given), else None."""
        if apn is None:
            return self._any.get(address)
        return self._by_addr.get((apn, address))

    def bindings(self) -> dict[str, ImsiDigits]:
        """A copy of ``address → IMSI`` as :meth:`lookup` without an APN sees it."""
        with self._lock:
            return dict(self._any)

    def address_of(self, imsi: ImsiDigits) -> str | None:
        bound = self._by_imsi.get(imsi)
        return bound[1] if bound else None

    def __len__(self) -> int:
        return len(self._by_imsi)
