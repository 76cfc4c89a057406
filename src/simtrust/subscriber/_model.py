"""Inventory values: SIM life cycle, algorithms, binding modes, roaming rules.

The SIM life cycle (``inventory → test → active → suspended → terminated``) and
its permitted transitions are :data:`TRANSITIONS`; ``terminated`` is final.
Secret material (K, OP, OPc, TOP, TOPc) lives only in :class:`SimSecrets`,
whose ``repr`` never shows it (CONVENTIONS.md, "Secrets").
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from simtrust.domain import Iccid, Imei, ImeiSv, Imsi, Plmn, Tac
from simtrust.errors import InvalidInput, InvalidTransition

__all__ = [
    "TRANSITIONS",
    "Algorithm",
    "Apn",
    "AttachPolicy",
    "AuthMethod",
    "BindingMode",
    "Device",
    "DeviceGroup",
    "OpKind",
    "Roaming",
    "Sim",
    "SimSecrets",
    "SimState",
    "SwapAction",
    "TuakParams",
    "UnknownDevice",
    "check_transition",
]


class SimState(StrEnum):
    INVENTORY = "inventory"
    TEST = "test"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


#: Permitted life-cycle transitions. A SIM in test may go back to stock
#: (inventory); an active SIM never returns to test or stock; terminated is final.
TRANSITIONS: Mapping[SimState, frozenset[SimState]] = {
    SimState.INVENTORY: frozenset({SimState.TEST, SimState.ACTIVE, SimState.TERMINATED}),
    SimState.TEST: frozenset(
        {SimState.INVENTORY, SimState.ACTIVE, SimState.SUSPENDED, SimState.TERMINATED}
    ),
    SimState.ACTIVE: frozenset({SimState.SUSPENDED, SimState.TERMINATED}),
    SimState.SUSPENDED: frozenset({SimState.ACTIVE, SimState.TERMINATED}),
    SimState.TERMINATED: frozenset(),
}


def check_transition(current: SimState, target: SimState) -> None:
    """Raise :class:`InvalidTransition` unless ``current → target`` is permitted."""
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (final state)"
        raise InvalidTransition(
            f"SIM cannot go from {current} to {target}; permitted: {allowed}",
            current=str(current),
            target=str(target),
        )


class Algorithm(StrEnum):
    MILENAGE = "milenage"
    TUAK = "tuak"


class OpKind(StrEnum):
    """Which operator variant is stored: OP or OPc (MILENAGE), TOP or TOPc (TUAK)."""

    OP = "op"
    OPC = "opc"
    TOP = "top"
    TOPC = "topc"

    @property
    def algorithm(self) -> Algorithm:
        return Algorithm.TUAK if self in (OpKind.TOP, OpKind.TOPC) else Algorithm.MILENAGE

    @property
    def derived(self) -> bool:
        """True for OPc/TOPc (already combined with K)."""
        return self in (OpKind.OPC, OpKind.TOPC)


class AuthMethod(StrEnum):
    """The 5G primary authentication method of a subscriber (TS 33.501 §6.1.3)."""

    FIVEG_AKA = "5G_AKA"
    EAP_AKA_PRIME = "EAP_AKA_PRIME"


class BindingMode(StrEnum):
    """IMEI–ICCID binding on first use (the "IMEI lock" IoT platforms sell).

    ``exact-pair``: the SIM only in its device and the device only with its SIM;
    ``iccid-primary``: the SIM only in its bound device (the device is free);
    ``imei-primary``: the device only with its bound SIM (the SIM is free).
    """

    NONE = "none"
    EXACT_PAIR = "exact-pair"
    ICCID_PRIMARY = "iccid-primary"
    IMEI_PRIMARY = "imei-primary"

    @property
    def locks_sim(self) -> bool:
        return self in (BindingMode.EXACT_PAIR, BindingMode.ICCID_PRIMARY)

    @property
    def locks_device(self) -> bool:
        return self in (BindingMode.EXACT_PAIR, BindingMode.IMEI_PRIMARY)


class SwapAction(StrEnum):
    """What a tenant wants done when a locked SIM shows up in another device."""

    DENY = "deny"
    ALLOW_AND_ALERT = "allow-and-alert"
    SUSPEND = "suspend"


class UnknownDevice(StrEnum):
    """Policy for an IMEI that is not in the tenant's device inventory."""

    ALLOW = "allow"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class TuakParams:
    """TUAK output sizes and Keccak iterations (TS 35.231 §6)."""

    keccak_iterations: int = 1
    mac_bits: int = 64
    res_bits: int = 64
    ck_bits: int = 128
    ik_bits: int = 128

    def __post_init__(self) -> None:
        if not 1 <= self.keccak_iterations <= 255:
            raise InvalidInput("TUAK Keccak iterations must be 1..255", field="keccak_iterations")
        for name, allowed in (
            ("mac_bits", (64, 128, 256)),
            ("res_bits", (32, 64, 128, 256)),
            ("ck_bits", (128, 256)),
            ("ik_bits", (128, 256)),
        ):
            if getattr(self, name) not in allowed:
                raise InvalidInput(f"TUAK {name} must be one of {allowed}", field=name)

    def to_json(self) -> dict[str, int]:
        return {
            "keccak_iterations": self.keccak_iterations,
            "mac_bits": self.mac_bits,
            "res_bits": self.res_bits,
            "ck_bits": self.ck_bits,
            "ik_bits": self.ik_bits,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> TuakParams:
        try:
            return cls(**{k: int(v) for k, v in doc.items()})
        except (TypeError, ValueError) as exc:
            raise InvalidInput("bad TUAK parameters", field="algo_params") from exc


@dataclass(frozen=True, slots=True)
class SimSecrets:
    """K and OP/OPc (or TOP/TOPc) of one SIM; never printed."""

    k: bytes
    op: bytes
    op_kind: OpKind

    def __post_init__(self) -> None:
        if len(self.k) not in (16, 32):
            raise InvalidInput("K must be 128 or 256 bits", field="k")
        if self.op_kind.algorithm is Algorithm.MILENAGE:
            if len(self.k) != 16:
                raise InvalidInput("MILENAGE K must be 128 bits", field="k")
            if len(self.op) != 16:
                raise InvalidInput(f"{self.op_kind} must be 128 bits", field=str(self.op_kind))
        elif len(self.op) != 32:
            raise InvalidInput(f"{self.op_kind} must be 256 bits", field=str(self.op_kind))

    def __repr__(self) -> str:
        return f"SimSecrets(k=<redacted>, {self.op_kind}=<redacted>)"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Roaming:
    """Where a SIM may attach besides its home PLMN.

    Entries: ``*`` (anywhere), ``MCC`` (a country, 3 digits) or ``MCC-MNC`` /
    ``MCCMNC`` (one network). An empty rule permits the home network only.
    """

    anywhere: bool = False
    countries: frozenset[str] = field(default_factory=frozenset)
    networks: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Roaming:
        anywhere = False
        countries: set[str] = set()
        networks: set[str] = set()
        for raw in entries:
            entry = str(raw).strip()
            if entry == "*":
                anywhere = True
            elif len(entry) == 3 and (entry.isascii() and entry.isdigit()):
                countries.add(entry)
            else:
                networks.add(str(Plmn.parse(entry)))
        return cls(anywhere, frozenset(countries), frozenset(networks))

    @classmethod
    def from_text(cls, text: str | None) -> Roaming | None:
        if text is None:
            return None
        entries = json.loads(text)
        if not isinstance(entries, list):
            raise InvalidInput("roaming must be a list", field="roaming")
        return cls.parse(entries)

    def entries(self) -> list[str]:
        out = ["*"] if self.anywhere else []
        return out + sorted(self.countries) + sorted(self.networks)

    def to_text(self) -> str:
        return json.dumps(self.entries())

    def permits(self, home: Plmn, serving: Plmn) -> bool:
        if serving == home or self.anywhere:
            return True
        return serving.mcc in self.countries or str(serving) in self.networks


@dataclass(frozen=True, slots=True)
class Sim:
    """A SIM as the inventory knows it (no secret material)."""

    iccid: Iccid
    imsi: Imsi
    tenant_id: str
    state: SimState
    algorithm: Algorithm
    op_kind: OpKind
    amf: bytes
    tuak: TuakParams | None
    auth_method: AuthMethod
    group_id: int | None
    apn: str | None
    static_ip: str | None
    binding_mode: BindingMode | None
    roaming: Roaming | None
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The public view: secrets are never part of it, only which variant is stored."""
        return {
            "iccid": str(self.iccid),
            "imsi": str(self.imsi),
            "mnc_length": self.imsi.mnc_length,
            "tenant_id": self.tenant_id,
            "state": str(self.state),
            "algorithm": str(self.algorithm),
            "op_kind": str(self.op_kind),
            "amf": self.amf.hex(),
            "tuak": self.tuak.to_json() if self.tuak else None,
            "auth_method": str(self.auth_method),
            "group_id": self.group_id,
            "apn": self.apn,
            "static_ip": self.static_ip,
            "binding_mode": str(self.binding_mode) if self.binding_mode else None,
            "roaming": self.roaming.entries() if self.roaming else None,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Device:
    imei: Imei
    imeisv: ImeiSv | None
    tenant_id: str
    group_id: int | None
    label: str
    created_at: datetime
    #: What the device last reported about itself (firmware, radio; names in
    #: ``subscriber._devices.REPORTED_FIELDS``), merged field by field, and when.
    reported: Mapping[str, Any] = field(default_factory=dict)
    reported_at: datetime | None = None

    @property
    def tac(self) -> Tac:
        return self.imei.tac

    def to_json(self) -> dict[str, Any]:
        return {
            "imei": str(self.imei),
            "imeisv": str(self.imeisv) if self.imeisv else None,
            "tac": str(self.tac),
            "tenant_id": self.tenant_id,
            "group_id": self.group_id,
            "label": self.label,
            "created_at": self.created_at.isoformat(),
            "reported": dict(self.reported),
            "reported_at": self.reported_at.isoformat() if self.reported_at else None,
        }


@dataclass(frozen=True, slots=True)
class DeviceGroup:
    id: int
    tenant_id: str
    name: str
    binding_mode: BindingMode | None
    swap_action: SwapAction | None
    roaming: Roaming | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "name": self.name,
            "binding_mode": str(self.binding_mode) if self.binding_mode else None,
            "swap_action": str(self.swap_action) if self.swap_action else None,
            "roaming": self.roaming.entries() if self.roaming else None,
        }


@dataclass(frozen=True, slots=True)
class Apn:
    """An access point name with an optional IPv4/IPv6 address pool."""

    tenant_id: str
    name: str
    pool: ipaddress.IPv4Network | ipaddress.IPv6Network | None

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "name": self.name,
            "pool": str(self.pool) if self.pool else None,
        }


@dataclass(frozen=True, slots=True)
class AttachPolicy:
    """A tenant's defaults for attach decisions (groups and SIMs may override)."""

    tenant_id: str
    binding_mode: BindingMode = BindingMode.NONE
    swap_action: SwapAction = SwapAction.DENY
    unknown_device: UnknownDevice = UnknownDevice.ALLOW
    roaming: Roaming = field(default_factory=Roaming)
    webhook_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "binding_mode": str(self.binding_mode),
            "swap_action": str(self.swap_action),
            "unknown_device": str(self.unknown_device),
            "roaming": self.roaming.entries(),
            "webhook_url": self.webhook_url,
        }
