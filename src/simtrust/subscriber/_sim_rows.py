"""SIM rows of the inventory: the provisioning spec, the ``sub_sims`` columns, the shared errors.

What the SIM life cycle (:mod:`._inventory`), bulk actions (:mod:`._bulk`) and
the bulk importer (:mod:`._import`) all read and write: a SIM is addressed by
its ICCID (ITU-T E.118) and IMSI (3GPP TS 23.003 §2.2), and its sealed
secrets are bound to the ICCID and field through :func:`secret_aad`.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from simtrust.domain import Iccid, Imei, Imsi
from simtrust.errors import InvalidInput, NotFound
from simtrust.subscriber._model import (
    Algorithm,
    AuthMethod,
    BindingMode,
    OpKind,
    Roaming,
    Sim,
    SimSecrets,
    SimState,
    TuakParams,
)
from simtrust.subscriber._sqn import initial_sqn_state

_E = TypeVar("_E", bound=StrEnum)

__all__ = [
    "AUTH_ROW_SEALED",
    "AUTH_ROW_SQN",
    "INSERT_SIM",
    "SIM_COLUMNS",
    "SimSpec",
    "missing_device",
    "missing_sim",
    "parse_address",
    "secret_aad",
    "sim_from_row",
]


def missing_sim(iccid: Iccid) -> NotFound:
    """The error for a SIM that is not there (or not the caller's: the same answer)."""
    return NotFound(f"no SIM with ICCID {iccid}", iccid=iccid.value)


def missing_device(imei: Imei) -> NotFound:
    """The error for a device that is not there (or not the caller's: the same answer)."""
    return NotFound(f"no device with IMEI {imei}", imei=imei.value)


def secret_aad(iccid: str, field_name: str) -> bytes:
    """AAD binding a sealed SIM secret to its ICCID and field (``k``, ``op``, ``opc``, ...)."""
    return f"simtrust/subscriber/sim/{iccid}/{field_name}".encode()


@dataclass(frozen=True, slots=True)
class SimSpec:
    """Everything needed to provision one SIM (the bulk importer builds these)."""

    iccid: Iccid
    imsi: Imsi
    secrets: SimSecrets = field(repr=False)
    amf: bytes = b"\x80\x00"
    tuak: TuakParams | None = None
    state: SimState = SimState.INVENTORY
    group_id: int | None = None
    apn: str | None = None
    static_ip: str | None = None
    binding_mode: BindingMode | None = None
    roaming: Roaming | None = None
    auth_method: AuthMethod = AuthMethod.FIVEG_AKA
    sqn_state: str = field(default_factory=initial_sqn_state)

    def __post_init__(self) -> None:
        if len(self.amf) != 2:
            raise InvalidInput("AMF must be 16 bits", field="amf")
        algorithm = self.secrets.op_kind.algorithm
        if algorithm is Algorithm.TUAK and self.tuak is None:
            object.__setattr__(self, "tuak", TuakParams())
        if algorithm is Algorithm.MILENAGE and self.tuak is not None:
            raise InvalidInput("TUAK parameters given for a MILENAGE SIM", field="tuak")
        if self.static_ip is not None:
            object.__setattr__(self, "static_ip", parse_address(self.static_ip))

    @property
    def algorithm(self) -> Algorithm:
        return self.secrets.op_kind.algorithm


#: States a bulk action may move SIMs to. Termination releases addresses and
#: bindings per SIM and is final, so it stays a one-SIM action.

def parse_address(text: str) -> str:
    """``text`` as a normalised IP address (InvalidInput naming ``static_ip`` if it is not one)."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError as exc:
        raise InvalidInput(f"not an IP address: {text!r}", field="static_ip") from exc


SIM_COLUMNS = (
    "iccid, imsi, mnc_length, tenant_id, state, algorithm, algo_params, op_kind, amf,"
    " group_id, apn, static_ip, binding_mode, roaming, created_at, updated_at, auth_method"
)
#: In a row of :meth:`Inventory.auth_rows`: where k_sealed (then op_sealed) and
#: sqn_state (then sqn_version) are, after the :data:`SIM_COLUMNS`.
AUTH_ROW_SEALED = 17
AUTH_ROW_SQN = 19
INSERT_SIM = (
    "INSERT INTO sub_sims (iccid, imsi, mnc_length, tenant_id, state, algorithm, algo_params,"
    " op_kind, k_sealed, op_sealed, amf, sqn_state, sqn_version, group_id, apn, static_ip,"
    " binding_mode, roaming, created_at, updated_at, auth_method)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,0,?,?,?,?,?,?,?,?)"
)


def _by_value(kind: type[_E]) -> dict[str, _E]:
    return {member.value: member for member in kind}


_STATES = _by_value(SimState)
_ALGORITHMS = _by_value(Algorithm)
_OP_KINDS = _by_value(OpKind)
_AUTH_METHODS = _by_value(AuthMethod)


def _member(table: dict[str, _E], kind: type[_E], value: Any) -> _E:
    """The member stored as ``value``: a dictionary lookup instead of the enum's call (about
    a microsecond each, five per row); a value the enum does not know raises as before."""
    found = table.get(value)
    return kind(value) if found is None else found


def sim_from_row(row: Sequence[Any]) -> Sim:
    """A :class:`Sim` from a ``sub_sims`` row selected with :data:`SIM_COLUMNS`.

    The ICCID and IMSI were validated when the row was written (``add_sim`` and the bulk
    importer take them as :class:`Iccid` and :class:`Imsi`), so they are not checked again
    here: the Luhn digit and digit checks were about half of building a SIM from its row
    (docs/decisions/devices-registrations.md)."""
    algorithm = _member(_ALGORITHMS, Algorithm, row[5])
    return Sim(
        iccid=Iccid._validated(str(row[0])),
        imsi=Imsi._validated(str(row[1]), int(row[2])),
        tenant_id=str(row[3]),
        state=_member(_STATES, SimState, row[4]),
        algorithm=algorithm,
        tuak=TuakParams.from_json(json.loads(row[6])) if algorithm is Algorithm.TUAK else None,
        op_kind=_member(_OP_KINDS, OpKind, row[7]),
        amf=bytes.fromhex(str(row[8])),
        group_id=None if row[9] is None else int(row[9]),
        apn=None if row[10] is None else str(row[10]),
        static_ip=None if row[11] is None else str(row[11]),
        binding_mode=None if row[12] is None else BindingMode(row[12]),
        roaming=Roaming.from_text(row[13]),
        created_at=datetime.fromisoformat(str(row[14])),
        updated_at=datetime.fromisoformat(str(row[15])),
        auth_method=_member(_AUTH_METHODS, AuthMethod, row[16]),
    )
