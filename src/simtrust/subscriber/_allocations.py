"""SIM identifier allocations: the ICCID and IMSI ranges each tenant may provision.

ICCIDs (ITU-T E.118) and IMSIs (TS 23.003 §2) are unique across the whole
store, so a tenant creating a SIM whose identifier another tenant holds could
only be refused, and the refusal would tell it that the SIM exists. Instead the
operator allocates ranges (digit prefixes) to tenants, ranges of different
tenants never overlap, and a tenant key may provision only inside its own
ranges: whether a create is allowed then depends on the caller's allocation
alone, and a collision inside it can only be with the caller's own SIM
(docs/decisions/api-tenant-existence.md). The operator provisions anywhere
except inside another tenant's ranges.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from simtrust.audit import AuditLog
from simtrust.errors import Conflict, InvalidInput, PermissionDenied
from simtrust.store import Database

__all__ = ["AllocationIndex", "Allocations", "SimAllocation"]

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


class AllocationIndex:
    """Every tenant's ranges at one moment, for checking many SIMs (an import)."""

    __slots__ = ("_ranges",)

    def __init__(self, rows: Iterable[tuple[str, str, str]]) -> None:
        self._ranges: dict[str, list[tuple[str, str]]] = {"iccid": [], "imsi": []}
        for kind, prefix, tenant in rows:
            self._ranges[kind].append((prefix, tenant))

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
            (str(k), str(p), str(t))
            for k, p, t in self._db.query("SELECT kind, prefix, tenant_id FROM sub_allocations")
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
