"""The address map: which SIM holds which IP address, for mapping flows to SIMs.

At attach a SIM gets its static address, or one leased from its APN's pool
(lowest free address, network and broadcast excluded for IPv4). Leases are
stored (``sub_leases``) and cached both ways; :meth:`AddressBook.lookup`
answers the flow collector's ``ip → IMSI`` question from memory, with
negative answers cached too, and is kept coherent by the inventory change feed.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from simtrust.domain import ImsiDigits
from simtrust.errors import Conflict
from simtrust.subscriber._inventory import Inventory

__all__ = ["AddressBook", "Lease", "LeaseListener"]

_MAX_NEGATIVE = 100_000

#: ``(imsi, apn, address)`` on a lease; ``(imsi, None, None)`` on a release.
LeaseListener = Callable[[str, str | None, str | None], None]


@dataclass(frozen=True, slots=True)
class Lease:
    address: str
    imsi: str
    tenant_id: str
    apn: str | None
    kind: str  # "static" | "pool"

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "imsi": self.imsi,
            "tenant_id": self.tenant_id,
            "apn": self.apn,
            "kind": self.kind,
        }


class AddressBook:
    """Leases addresses to SIMs and maps addresses back to IMSIs."""

    __slots__ = ("_by_address", "_by_imsi", "_inventory", "_listeners", "_lock", "_missing",
                 "_pools")

    def __init__(self, inventory: Inventory) -> None:
        self._inventory = inventory
        self._listeners: list[LeaseListener] = []
        self._by_imsi: dict[str, str | None] = {}
        self._by_address: dict[str, ImsiDigits] = {}
        self._missing: set[str] = set()
        self._pools: dict[tuple[str, str], Iterator[str]] = {}
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"AddressBook(cached={len(self._by_imsi)})"

    def subscribe(self, listener: LeaseListener) -> None:
        """Call ``listener(imsi, apn, address)`` on every lease of this process, and
        ``listener(imsi, None, None)`` on every release (e.g. to fill a
        :class:`simtrust.policy.AddressMap` a gateway keeps in memory)."""
        self._listeners.append(listener)

    # -- reads ---------------------------------------------------------------

    def lookup(self, address: str) -> ImsiDigits | None:
        """The IMSI holding ``address`` now, or None (store rows hold validated IMSIs)."""
        imsi = self._by_address.get(address)
        if imsi is not None or address in self._missing:
            return imsi
        row = self._inventory.db.query_one(
            "SELECT imsi FROM sub_leases WHERE address = ?", (_canonical(address),)
        )
        if row is None:
            if len(self._missing) >= _MAX_NEGATIVE:
                self._missing.clear()
            self._missing.add(address)
            return None
        imsi = ImsiDigits(str(row[0]))
        self._by_address[address] = imsi
        self._by_imsi[imsi] = address
        return imsi

    def address_of(self, imsi: str) -> str | None:
        if imsi in self._by_imsi:
            return self._by_imsi[imsi]
        row = self._inventory.db.query_one(
            "SELECT address FROM sub_leases WHERE imsi = ?", (imsi,)
        )
        address = None if row is None else str(row[0])
        self._by_imsi[imsi] = address
        return address

    def held_lease(
        self, imsi: str, apn: str | None, static_ip: str | None
    ) -> tuple[bool, str | None]:
        """``(True, address)`` when :meth:`assign` would answer from memory alone (the
        SIM's cached, unchanged lease, or none to give: no static address, no APN),
        else ``(False, None)``."""
        current = self._by_imsi.get(imsi, "")  # "": not cached (None is: no lease)
        if current and (static_ip is None or current == static_ip):
            return True, current
        if current is None and static_ip is None and apn is None:
            return True, None
        return False, None

    def leases(self, tenant_id: str | None = None, limit: int = 1000) -> list[Lease]:
        sql = "SELECT address, imsi, tenant_id, apn, kind FROM sub_leases"
        params: list[Any] = []
        if tenant_id is not None:
            sql += " WHERE tenant_id = ?"
            params.append(tenant_id)
        rows = self._inventory.db.query(sql + " ORDER BY imsi LIMIT ?", [*params, limit])
        return [Lease(str(a), str(i), str(t), None if p is None else str(p), str(k))
                for a, i, t, p, k in rows]

    # -- writes --------------------------------------------------------------

    def assign(
        self, imsi: str, tenant_id: str, apn: str | None, static_ip: str | None
    ) -> str | None:
        """The SIM's address: its current lease, else a new static or pool lease.

        None when the SIM has neither a static address nor an APN with a pool.
        Raises Conflict when its static address is leased to another SIM.
        """
        current = self.address_of(imsi)
        if current is not None and (static_ip is None or current == static_ip):
            return current
        with self._lock:
            if static_ip is not None:
                return self._lease(imsi, tenant_id, apn, static_ip, "static", replace=True)
            if apn is None:
                return None
            for _pass in range(2):
                pool = self._pool(tenant_id, apn)
                if pool is None:
                    return None
                for candidate in pool:
                    try:
                        return self._lease(imsi, tenant_id, apn, candidate, "pool")
                    except Conflict:
                        held = self.address_of_uncached(imsi)
                        if held is not None:
                            return held
                # Exhausted in this pass: rescan once for addresses released since.
                self._pools.pop((tenant_id, apn), None)
            raise Conflict(f"address pool of APN {apn!r} is exhausted", apn=apn)

    def address_of_uncached(self, imsi: str) -> str | None:
        self._by_imsi.pop(imsi, None)
        return self.address_of(imsi)

    def _lease(
        self, imsi: str, tenant_id: str, apn: str | None, address: str, kind: str,
        *, replace: bool = False,
    ) -> str:
        inv = self._inventory
        with inv.db.transaction():
            holder = inv.db.query_one("SELECT imsi FROM sub_leases WHERE address = ?", (address,))
            if holder is not None and str(holder[0]) != imsi:
                raise Conflict(f"address {address} is leased to another SIM", address=address)
            if replace:
                inv.db.execute("DELETE FROM sub_leases WHERE imsi = ?", (imsi,))
            inv.db.execute(
                "INSERT INTO sub_leases (address, imsi, tenant_id, apn, kind, leased_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (address, imsi, tenant_id, apn, kind, inv.now().isoformat()),
            )
            inv.changes.record("lease", imsi)
        self.forget(imsi)
        self._by_imsi[imsi] = address
        self._by_address[address] = ImsiDigits(imsi)
        self._missing.discard(address)
        for listener in self._listeners:
            listener(imsi, apn, address)
        return address

    def release(self, imsi: str) -> None:
        inv = self._inventory
        with inv.db.transaction():
            inv.db.execute("DELETE FROM sub_leases WHERE imsi = ?", (imsi,))
            inv.changes.record("lease", imsi)
        self.forget(imsi)
        for listener in self._listeners:
            listener(imsi, None, None)

    def _pool(self, tenant_id: str, apn: str) -> Iterator[str] | None:
        key = (tenant_id, apn)
        if key not in self._pools:
            network = self._inventory.get_apn(tenant_id, apn).pool
            if network is None:
                return None
            self._pools[key] = self._free_addresses(network)
        return self._pools[key]

    def _free_addresses(
        self, network: ipaddress.IPv4Network | ipaddress.IPv6Network
    ) -> Iterator[str]:
        # One pass over the pool per process: addresses found leased are skipped,
        # released ones are picked up when the iterator is rebuilt (forget_pools).
        used = {str(r[0]) for r in self._inventory.db.query("SELECT address FROM sub_leases")}
        for host in network.hosts():
            text = str(host)
            if text not in used:
                yield text

    # -- cache coherence -----------------------------------------------------

    def forget(self, imsi: str, *, remote: bool = False) -> None:
        """Drop cached facts about ``imsi`` (``remote``: another process changed its lease)."""
        address = self._by_imsi.pop(imsi, None)
        if address is not None:
            self._by_address.pop(address, None)
        if remote:
            # The new address is unknown here: forget every negative answer.
            self._missing.clear()
            self._pools.clear()

    def forget_all(self) -> None:
        self._by_imsi.clear()
        self._by_address.clear()
        self._missing.clear()
        self._pools.clear()


def _canonical(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address
