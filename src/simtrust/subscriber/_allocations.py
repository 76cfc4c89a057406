"""Allocations: the ICCID and IMSI ranges and the IP address ranges each tenant may use.

ICCIDs (ITU-T E.118) and IMSIs (TS 23.003 §2) are unique across the whole
store, so a tenant creating a SIM whose identifier another tenant holds could
only be refused, and the refusal would tell it that the SIM exists. Instead the
operator allocates ranges (digit prefixes) to tenants, ranges of different
tenants never overlap, and a tenant key may provision only inside its own
ranges: whether a create is allowed then depends on the caller's allocation
alone, and a collision inside it can only be with the caller's own SIM
(docs/decisions/api-tenant-existence.md). The operator provisions anywhere
except inside another tenant's ranges.

Static addresses follow the same rule: one address belongs to one SIM across the
whole store (the flow collector maps ``address → IMSI``), so the operator gives
each tenant IP networks (``sub_address_allocations``, never overlapping another
tenant's, never covering another tenant's static address, lease or APN pool); a
tenant key may assign static addresses and APN pools only inside its own
networks (docs/decisions/subscriber-address-allocations.md).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from simtrust.audit import AuditLog
from simtrust.errors import Conflict, InvalidInput, PermissionDenied
from simtrust.store import Database

__all__ = ["AddressAllocation", "AllocationIndex", "Allocations", "SimAllocation"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: At most this many networks per tenant (the API bounds the body the same way).
MAX_NETWORKS = 256

_PREFIX = {"iccid": re.compile(r"[0-9]{1,19}"), "imsi": re.compile(r"[0-9]{1,15}")}
_NAMES = {"iccid": "ICCID", "imsi": "IMSI"}


@dataclass(frozen=True, slots=True)
class SimAllocation:
    """A tenant's ranges: every ICCID and IMSI it provisions starts with one of them."""

    tenant_id: str
    iccid_prefixes: tuple[str, ...]
    imsi_prefixes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "iccid_prefixes": list(self.iccid_prefixes),
                "imsi_prefixes": list(self.imsi_prefixes)}


@dataclass(frozen=True, slots=True)
class AddressAllocation:
    """A tenant's IP networks: its static addresses and APN pools lie inside them."""

    tenant_id: str
    networks: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "networks": list(self.networks)}


def parse_network(text: str, field: str) -> Network:
    """A CIDR block written with its network address (``10.1.0.0/16``); InvalidInput else."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise InvalidInput(f"not a CIDR block: {text!r}", field=field) from exc


def _overlap(a: Network, b: Network) -> bool:
    return a.version == b.version and a.overlaps(b)


class AllocationIndex:
    """Every tenant's ranges at one moment, for checking many SIMs (an import)."""

    __slots__ = ("_networks", "_ranges")

    def __init__(self, rows: Iterable[tuple[str, str, str]],
                 networks: Iterable[tuple[str, str]] = ()) -> None:
        self._ranges: dict[str, list[tuple[str, str]]] = {"iccid": [], "imsi": []}
        for kind, prefix, tenant in rows:
            self._ranges[kind].append((prefix, tenant))
        self._networks = [(ipaddress.ip_network(n), t) for n, t in networks]

    def address_holder(self, address: str) -> str | None:
        """The tenant whose networks contain ``address`` (they never overlap), or None."""
        ip = ipaddress.ip_address(address)
        for network, tenant in self._networks:
            if ip.version == network.version and ip in network:
                return tenant
        return None

    def address_refusal(self, tenant_id: str, address: str, *, own: bool) -> str | None:
        """Why ``tenant_id`` may not give a SIM the static ``address``, or None.

        As :meth:`refusal`: a tenant key's answer depends on its own networks only.
        """
        holder = self.address_holder(address)
        if own and holder != tenant_id:
            return f"address {address} is outside this tenant's address allocation"
        if not own and holder is not None and holder != tenant_id:
            return f"address {address} lies in tenant {holder!r}'s address allocation"
        return None

    def pool_refusal(self, tenant_id: str, pool: Network, *, own: bool) -> str | None:
        """Why ``tenant_id`` may not lease from ``pool``, or None (a tenant key: the
        pool lies inside one of its networks; the operator: it overlaps no other
        tenant's network)."""
        if own:
            if any(t == tenant_id and pool.version == n.version
                   and pool.subnet_of(n)  # type: ignore[arg-type]
                   for n, t in self._networks):
                return None
            return f"pool {pool} is outside this tenant's address allocation"
        for network, holder in self._networks:
            if holder != tenant_id and _overlap(pool, network):
                return f"pool {pool} overlaps tenant {holder!r}'s address allocation"
        return None

    def holder(self, kind: str, value: str) -> str | None:
        """The tenant whose range contains ``value`` (ranges never overlap), or None."""
        for prefix, tenant in self._ranges[kind]:
            if value.startswith(prefix):
                return tenant
        return None

    def refusal(self, tenant_id: str, iccid: str, imsi: str, *, own: bool) -> str | None:
        """Why ``tenant_id`` may not hold this SIM, or None.

        ``own`` (a tenant key): both identifiers must lie in the tenant's own ranges;
        the reason never depends on other tenants. Otherwise (the operator): neither
        may lie in another tenant's ranges.
        """
        for kind, value in (("iccid", iccid), ("imsi", imsi)):
            holder = self.holder(kind, value)
            if own and holder != tenant_id:
                return f"{_NAMES[kind]} {value} is outside this tenant's allocation"
            if not own and holder is not None and holder != tenant_id:
                return f"{_NAMES[kind]} {value} lies in tenant {holder!r}'s allocation"
        return None


class Allocations:
    """Reads and sets allocations; checks a SIM against them."""

    __slots__ = ("_audit", "_clock", "_db")

    def __init__(self, db: Database, audit: AuditLog, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock

    def __repr__(self) -> str:
        return f"Allocations({self._db!r})"

    def index(self) -> AllocationIndex:
        return AllocationIndex(
            ((str(k), str(p), str(t))
             for k, p, t in self._db.query("SELECT kind, prefix, tenant_id FROM sub_allocations")),
            ((str(n), str(t))
             for n, t in self._db.query("SELECT network, tenant_id FROM sub_address_allocations")),
        )

    def get(self, tenant_id: str) -> SimAllocation:
        rows = self._db.query(
            "SELECT kind, prefix FROM sub_allocations WHERE tenant_id = ? ORDER BY prefix",
            (tenant_id,),
        )
        return SimAllocation(
            tenant_id,
            tuple(str(p) for k, p in rows if k == "iccid"),
            tuple(str(p) for k, p in rows if k == "imsi"),
        )

    def check(self, tenant_id: str, iccid: str, imsi: str, *, own: bool) -> None:
        """PermissionDenied (``own``) or Conflict (operator): the SIM is not the tenant's."""
        reason = self.index().refusal(tenant_id, iccid, imsi, own=own)
        if reason is None:
            return
        if own:
            raise PermissionDenied(reason, field="iccid" if "ICCID" in reason else "imsi")
        raise Conflict(reason, iccid=iccid)

    def check_address(self, tenant_id: str, address: str, *, own: bool) -> None:
        """PermissionDenied (``own``: outside the tenant's networks) or Conflict (the
        operator: inside another tenant's networks)."""
        reason = self.index().address_refusal(tenant_id, address, own=own)
        if reason is None:
            return
        if own:
            raise PermissionDenied(reason, field="static_ip")
        raise Conflict(reason, field="static_ip")

    def check_pool(self, tenant_id: str, pool: Network, *, own: bool) -> None:
        """As :meth:`check_address`, for an APN's address pool."""
        reason = self.index().pool_refusal(tenant_id, pool, own=own)
        if reason is None:
            return
        if own:
            raise PermissionDenied(reason, field="pool")
        raise Conflict(reason, field="pool")

    def addresses(self, tenant_id: str) -> AddressAllocation:
        rows = self._db.query(
            "SELECT network FROM sub_address_allocations WHERE tenant_id = ? ORDER BY network",
            (tenant_id,),
        )
        return AddressAllocation(tenant_id, tuple(str(n) for (n,) in rows))

    def set_addresses(
        self, tenant_id: str, *, networks: Iterable[str], actor: str
    ) -> AddressAllocation:
        """Replace the tenant's IP networks; Conflict if one overlaps another tenant's
        networks or APN pools, or holds another tenant's static address or lease."""
        wanted = sorted({parse_network(n, "networks") for n in networks},
                        key=lambda n: (n.version, n))
        if len(wanted) > MAX_NETWORKS:
            raise InvalidInput(f"at most {MAX_NETWORKS} networks", field="networks")
        with self._db.transaction():
            for text, holder in self._db.query(
                "SELECT network, tenant_id FROM sub_address_allocations WHERE tenant_id <> ?",
                (tenant_id,),
            ):
                other = ipaddress.ip_network(str(text))
                for network in wanted:
                    if _overlap(network, other):
                        raise Conflict(f"network {network} overlaps tenant {str(holder)!r}'s "
                                       f"network {other}", tenant_id=str(holder))
            for text, holder in self._db.query(
                "SELECT pool, tenant_id FROM sub_apns WHERE pool IS NOT NULL AND tenant_id <> ?",
                (tenant_id,),
            ):
                pool = ipaddress.ip_network(str(text))
                for network in wanted:
                    if _overlap(network, pool):
                        raise Conflict(f"network {network} overlaps an APN pool of tenant "
                                       f"{str(holder)!r}", tenant_id=str(holder))
            if wanted:
                self._refuse_foreign_addresses(tenant_id, wanted)
            self._db.execute("DELETE FROM sub_address_allocations WHERE tenant_id = ?",
                             (tenant_id,))
            now = self._clock().isoformat()
            self._db.executemany(
                "INSERT INTO sub_address_allocations (network, tenant_id, created_at)"
                " VALUES (?, ?, ?)",
                [(str(n), tenant_id, now) for n in wanted],
            )
            self._audit.append(
                actor=actor, action="allocation.addresses", subject=f"tenant:{tenant_id}",
                outcome="success", tenant_id=tenant_id,
                details={"networks": [str(n) for n in wanted]},
            )
        return self.addresses(tenant_id)

    def _refuse_foreign_addresses(self, tenant_id: str, wanted: list[Network]) -> None:
        for sql in ("SELECT static_ip, tenant_id FROM sub_sims"
                    " WHERE static_ip IS NOT NULL AND tenant_id <> ?",
                    "SELECT address, tenant_id FROM sub_leases WHERE tenant_id <> ?"):
            for text, holder in self._db.query(sql, (tenant_id,)):
                ip = ipaddress.ip_address(str(text))
                for network in wanted:
                    if ip.version == network.version and ip in network:
                        raise Conflict(f"network {network} holds an address of tenant "
                                       f"{str(holder)!r}", tenant_id=str(holder))

    def set(
        self, tenant_id: str, *, iccid_prefixes: Iterable[str], imsi_prefixes: Iterable[str],
        actor: str,
    ) -> SimAllocation:
        """Replace the tenant's ranges; Conflict if one overlaps another tenant's ranges
        or contains another tenant's SIM."""
        wanted = {"iccid": sorted(set(iccid_prefixes)), "imsi": sorted(set(imsi_prefixes))}
        for kind, prefixes in wanted.items():
            for prefix in prefixes:
                if not _PREFIX[kind].fullmatch(prefix):
                    raise InvalidInput(f"{_NAMES[kind]} prefix {prefix!r} must be digits",
                                       field=f"{kind}_prefixes")
        with self._db.transaction():
            others = [(str(k), str(p), str(t)) for k, p, t in self._db.query(
                "SELECT kind, prefix, tenant_id FROM sub_allocations WHERE tenant_id <> ?",
                (tenant_id,),
            )]
            for kind, prefixes in wanted.items():
                for prefix in prefixes:
                    for other_kind, other, holder in others:
                        if other_kind == kind and (prefix.startswith(other)
                                                   or other.startswith(prefix)):
                            raise Conflict(f"{_NAMES[kind]} range {prefix} overlaps tenant "
                                           f"{holder!r}'s range {other}", tenant_id=holder)
                    row = self._db.query_one(
                        f"SELECT tenant_id FROM sub_sims WHERE tenant_id <> ?"
                        f" AND substr({kind}, 1, ?) = ? LIMIT 1",
                        (tenant_id, len(prefix), prefix),
                    )
                    if row is not None:
                        raise Conflict(f"{_NAMES[kind]} range {prefix} holds SIMs of tenant "
                                       f"{row[0]!r}", tenant_id=str(row[0]))
            self._db.execute("DELETE FROM sub_allocations WHERE tenant_id = ?", (tenant_id,))
            now = self._clock().isoformat()
            self._db.executemany(
                "INSERT INTO sub_allocations (kind, prefix, tenant_id, created_at)"
                " VALUES (?, ?, ?, ?)",
                [(kind, p, tenant_id, now) for kind, prefixes in wanted.items() for p in prefixes],
            )
            self._audit.append(
                actor=actor, action="allocation.set", subject=f"tenant:{tenant_id}",
                outcome="success", tenant_id=tenant_id,
                details={"iccid_prefixes": wanted["iccid"], "imsi_prefixes": wanted["imsi"]},
            )
        return self.get(tenant_id)
