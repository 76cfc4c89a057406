"""The LwM2M objects the servers read and write (OMA-TS-LightweightM2M_Core-V1_1_1 Appendix
D and E: Security 0, Server 1, Device 3, Connectivity Monitoring 4, Firmware Update 5,
Location 6, Connectivity Statistics 7), as resource tables typed per §C (data types).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

__all__ = [
    "OBJECTS",
    "ObjLink",
    "Path",
    "RType",
    "Resource",
    "Value",
    "format_path",
    "parse_path",
    "resource",
]


class RType(StrEnum):
    """Resource data types (Core §C)."""

    STRING = "String"
    INTEGER = "Integer"
    UNSIGNED = "Unsigned Integer"
    FLOAT = "Float"
    BOOLEAN = "Boolean"
    OPAQUE = "Opaque"
    TIME = "Time"
    OBJLNK = "Objlnk"
    CORELNK = "Corelnk"
    NONE = "none"  # executable resources


@dataclass(frozen=True, slots=True)
class ObjLink:
    """An object link (Core §C: two 16-bit ids, text form ``"3:0"``)."""

    object_id: int
    instance_id: int

    def __str__(self) -> str:
        return f"{self.object_id}:{self.instance_id}"


Value = int | float | str | bool | bytes | ObjLink
#: ``(object, instance, resource[, resource instance])`` — shorter for object/instance paths.
Path = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Resource:
    rid: int
    name: str
    rtype: RType
    multiple: bool = False
    ops: str = "R"


def _table(*rows: tuple[int, str, RType, bool, str]) -> dict[int, Resource]:
    return {r[0]: Resource(*r) for r in rows}


# One letter per Core §C type keeps the tables readable.
S, I, U, F, B, O, T, L, N = (  # noqa: E741
    RType.STRING, RType.INTEGER, RType.UNSIGNED, RType.FLOAT, RType.BOOLEAN, RType.OPAQUE,
    RType.TIME, RType.OBJLNK, RType.NONE)

OBJECTS: dict[int, tuple[str, dict[int, Resource]]] = {
    0: ("LwM2M Security", _table(
        (0, "LwM2M Server URI", S, False, ""), (1, "Bootstrap-Server", B, False, ""),
        (2, "Security Mode", I, False, ""), (3, "Public Key or Identity", O, False, ""),
        (4, "Server Public Key", O, False, ""), (5, "Secret Key", O, False, ""),
        (10, "Short Server ID", I, False, ""), (11, "Client Hold Off Time", I, False, ""),
        (12, "Bootstrap-Server Account Timeout", I, False, ""))),
    1: ("LwM2M Server", _table(
        (0, "Short Server ID", I, False, "R"), (1, "Lifetime", I, False, "RW"),
        (2, "Default Minimum Period", I, False, "RW"),
        (3, "Default Maximum Period", I, False, "RW"), (4, "Disable", N, False, "E"),
        (5, "Disable Timeout", I, False, "RW"),
        (6, "Notification Storing When Disabled or Offline", B, False, "RW"),
        (7, "Binding", S, False, "RW"), (8, "Registration Update Trigger", N, False, "E"),
        (16, "Mode of Bootstrap-Request Trigger", N, False, "E"),
        (22, "Preferred Transport", S, False, "RW"))),
    3: ("Device", _table(
        (0, "Manufacturer", S, False, "R"), (1, "Model Number", S, False, "R"),
        (2, "Serial Number", S, False, "R"), (3, "Firmware Version", S, False, "R"),
        (4, "Reboot", N, False, "E"), (5, "Factory Reset", N, False, "E"),
        (6, "Available Power Sources", I, True, "R"), (7, "Power Source Voltage", I, True, "R"),
        (9, "Battery Level", I, False, "R"), (10, "Memory Free", I, False, "R"),
        (11, "Error Code", I, True, "R"), (13, "Current Time", T, False, "RW"),
        (14, "UTC Offset", S, False, "RW"), (15, "Timezone", S, False, "RW"),
        (16, "Supported Binding and Modes", S, False, "R"), (17, "Device Type", S, False, "R"),
        (18, "Hardware Version", S, False, "R"), (19, "Software Version", S, False, "R"),
        (20, "Battery Status", I, False, "R"), (21, "Memory Total", I, False, "R"))),
    4: ("Connectivity Monitoring", _table(
        (0, "Network Bearer", I, False, "R"), (1, "Available Network Bearer", I, True, "R"),
        (2, "Radio Signal Strength", I, False, "R"), (3, "Link Quality", I, False, "R"),
        (4, "IP Addresses", S, True, "R"), (5, "Router IP Addresses", S, True, "R"),
        (6, "Link Utilization", I, False, "R"), (7, "APN", S, True, "R"),
        (8, "Cell ID", I, False, "R"), (9, "SMNC", I, False, "R"), (10, "SMCC", I, False, "R"))),
    5: ("Firmware Update", _table(
        (0, "Package", O, False, "W"), (1, "Package URI", S, False, "RW"),
        (2, "Update", N, False, "E"), (3, "State", I, False, "R"),
        (5, "Update Result", I, False, "R"), (6, "PkgName", S, False, "R"),
        (7, "PkgVersion", S, False, "R"),
        (8, "Firmware Update Protocol Support", I, True, "R"),
        (9, "Firmware Update Delivery Method", I, False, "R"))),
    6: ("Location", _table(
        (0, "Latitude", F, False, "R"), (1, "Longitude", F, False, "R"),
        (2, "Altitude", F, False, "R"), (3, "Radius", F, False, "R"),
        (4, "Velocity", O, False, "R"), (5, "Timestamp", T, False, "R"),
        (6, "Speed", F, False, "R"))),
    7: ("Connectivity Statistics", _table(
        (0, "SMS Tx Counter", I, False, "R"), (1, "SMS Rx Counter", I, False, "R"),
        (2, "Tx Data", I, False, "R"), (3, "Rx Data", I, False, "R"),
        (4, "Max Message Size", I, False, "R"), (5, "Average Message Size", I, False, "R"),
        (6, "Start", N, False, "E"), (7, "Stop", N, False, "E"),
        (8, "Collection Period", I, False, "RW"))),
}


def resource(path: Path) -> Resource | None:
    """The model entry of a resource path, or None for objects outside the table."""
    if len(path) < 3:
        return None
    obj = OBJECTS.get(path[0])
    return None if obj is None else obj[1].get(path[2])


@lru_cache(maxsize=4096)
def parse_path(text: str) -> Path:
    """``/3/0/1`` → ``(3, 0, 1)``; ids are 0..65535 (Core §6.1 and §7.1). Cached: the
    same few paths are named by every notification (a refused text raises, not cached)."""
    parts = [p for p in text.strip().split("/") if p]
    if not 1 <= len(parts) <= 4:
        raise ValueError(f"an LwM2M path has one to four ids: {text!r}")
    out: list[int] = []
    for part in parts:
        if not part.isascii() or not part.isdigit() or int(part) > 65535:
            raise ValueError(f"an LwM2M path id is 0..65535: {text!r}")
        out.append(int(part))
    return tuple(out)


def format_path(path: Path) -> str:
    return "/" + "/".join(map(str, path))
