"""The per-SIM event every interface feeds to fraud detection, and its kinds.

One :class:`SimEvent` per authentication (TS 33.501 §6.1 / TS 29.272
§5.2.3.1 Authentication-Information answers; a synchronisation failure
carries AUTS, TS 33.102 §6.3.5), location update (serving PLMN, TS 23.003
§12.1, optionally the cell or tracking area and its position), RADIUS
accounting session (RFC 2866 Start/Interim/Stop) and flow summary. Events
travel as JSON between processes (:meth:`SimEvent.to_json`,
:meth:`SimEvent.from_json`, which validates every member of untrusted input).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from simtrust.domain import ImsiDigits, imsi_digits
from simtrust.errors import InvalidInput

__all__ = ["EVENT_KINDS", "MAX_DESTINATIONS", "USAGE_KINDS", "SimEvent"]

#: Destination prefixes one flow summary may name (a batch's distinct prefixes, bounded).
MAX_DESTINATIONS = 256

AUTH = "auth"
SYNC_FAILURE = "auth-sync-failure"
#: A re-sync whose SQN_MS was beyond the AuC's SEQ_HE: the USIM accepted vectors the
#: home never issued (TS 33.102 Annex C; a clone with a copied key, or a restored AuC).
SQN_AHEAD = "auth-sqn-ahead"
LOCATION = "location"
SESSION_START = "session-start"
SESSION_UPDATE = "session-update"
SESSION_STOP = "session-stop"
FLOW = "flow"
EVENT_KINDS = (AUTH, SYNC_FAILURE, SQN_AHEAD, LOCATION, SESSION_START, SESSION_UPDATE,
               SESSION_STOP, FLOW)
_KINDS = frozenset(EVENT_KINDS)
#: The kinds that mean the SIM is using service (a suspended SIM should not).
USAGE_KINDS = frozenset((SESSION_START, SESSION_UPDATE, FLOW))



@dataclass(frozen=True, slots=True)
class SimEvent:
    """One observation of a SIM by any interface.

    ``plmn`` is the serving network (MCC+MNC digits) where known; ``imei`` the
    equipment identity (IMEI or IMEISV) where the interface carries it;
    ``cell`` the cell or tracking-area identity and ``lat``/``lon`` its
    position when the operator's cell table knows it; ``session`` the
    accounting session id of session events; ``apn`` the access point a session
    uses (with ``tenant``, the SIM's cohort); ``destinations`` the destination
    prefixes a flow summary's flows reached (at most :data:`MAX_DESTINATIONS`).
    """

    at: float
    imsi: ImsiDigits
    kind: str
    plmn: str = ""
    imei: str = ""
    cell: str = ""
    lat: float | None = None
    lon: float | None = None
    session: str = ""
    tenant: str = ""
    octets: int = 0  # a session's cumulative octets (RADIUS accounting), 0: not given
    apn: str = ""
    destinations: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise InvalidInput(f"unknown SIM event kind {self.kind!r}")
        if not self.imsi:
            raise InvalidInput("SIM event without an IMSI")
        if not math.isfinite(self.at):
            raise InvalidInput("SIM event time must be finite")
        if (self.lat is None) != (self.lon is None):
            raise InvalidInput("a cell position needs both latitude and longitude")
        if self.lat is not None and self.lon is not None and not (
            -90.0 <= self.lat <= 90.0 and -180.0 <= self.lon <= 180.0
        ):
            raise InvalidInput("cell position out of range")
        if self.kind.startswith("session-") and not self.session:
            raise InvalidInput("a session event needs its session id")
        if not 0 <= self.octets < 2**64:
            raise InvalidInput("SIM event octets must be 0 to 2^64 - 1")
        if len(self.destinations) > MAX_DESTINATIONS:
            raise InvalidInput(f"a SIM event names at most {MAX_DESTINATIONS} destinations")

    @property
    def cohort(self) -> str:
        """The SIM's cohort: its tenant, and the APN where the event names it."""
        return self.tenant + "/" + self.apn if self.apn else self.tenant


    def to_json(self) -> dict[str, Any]:
        """The JSON-lines form ``simtrust fraud analyse`` reads (empty fields left out)."""
        doc: dict[str, Any] = {"at": self.at, "imsi": self.imsi, "kind": self.kind}
        for name in ("plmn", "imei", "cell", "session", "tenant", "apn"):
            value = getattr(self, name)
            if value:
                doc[name] = value
        if self.lat is not None:
            doc["lat"], doc["lon"] = self.lat, self.lon
        if self.octets:
            doc["octets"] = self.octets
        if self.destinations:
            doc["destinations"] = list(self.destinations)
        return doc

    @classmethod
    def from_json(cls, doc: object) -> SimEvent:
        """An event from its JSON form; anything malformed is :class:`InvalidInput`."""
        if not isinstance(doc, dict):
            raise InvalidInput("a SIM event must be a JSON object")
        unknown = set(doc) - _JSON_FIELDS
        if unknown:
            raise InvalidInput(f"unknown SIM event field {sorted(unknown)[0]!r}")
        at = doc.get("at")
        if isinstance(at, bool) or not isinstance(at, int | float):
            raise InvalidInput("SIM event 'at' must be a number (UNIX seconds)")
        text: dict[str, str] = {}
        for name in ("imsi", "kind", "plmn", "imei", "cell", "session", "tenant", "apn"):
            value = doc.get(name, "")
            if not isinstance(value, str):
                raise InvalidInput(f"SIM event {name!r} must be a string")
            text[name] = value
        pos: dict[str, float | None] = {}
        for name in ("lat", "lon"):
            value = doc.get(name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if value is not None and not number:
                raise InvalidInput(f"SIM event {name!r} must be a number")
            pos[name] = None if value is None else float(value)
        if text["kind"] not in _KINDS:
            raise InvalidInput(f"unknown SIM event kind {text['kind']!r}")
        if not text["imsi"]:
            raise InvalidInput("SIM event without an IMSI")
        octets = doc.get("octets", 0)
        if isinstance(octets, bool) or not isinstance(octets, int):
            raise InvalidInput("SIM event 'octets' must be an integer")
        destinations = doc.get("destinations", [])
        if not isinstance(destinations, list) or not all(
                isinstance(d, str) for d in destinations):
            raise InvalidInput("SIM event 'destinations' must be a list of strings")
        return cls(float(at), imsi_digits(text["imsi"]), text["kind"], plmn=text["plmn"],
                   imei=text["imei"], cell=text["cell"], lat=pos["lat"], lon=pos["lon"],
                   session=text["session"], tenant=text["tenant"], octets=octets,
                   apn=text["apn"], destinations=tuple(destinations))


_JSON_FIELDS = frozenset(
    ("at", "imsi", "kind", "plmn", "imei", "cell", "lat", "lon", "session", "tenant", "octets",
     "apn", "destinations")
)
