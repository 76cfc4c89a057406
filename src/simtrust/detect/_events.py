"""The per-SIM event every interface feeds to fraud detection, and its kinds.

One :class:`SimEvent` per authentication (TS 33.501 §6.1 / TS 29.272
§5.2.3.1 Authentication-Information answers; a synchronisation failure
carries AUTS, TS 33.102 §6.3.5), location update (serving PLMN, TS 23.003
§12.1, optionally the cell or tracking area and its position), RADIUS
accounting session (RFC 2866 Start/Interim/Stop), flow summary (with the
count of voice-like flows in it, :mod:`._voice`) and usage record of the
operator's mediation (a voice call or an SMS of the SIM: the charging data
record fields of TS 32.298 §5.1.2 — served IMSI, MO/MT, start time, call
duration; :mod:`._records` reads them). Events
travel as JSON between processes (:meth:`SimEvent.to_json`,
:meth:`SimEvent.from_json`, which validates every member of untrusted input).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from simtrust.domain import ImsiDigits, imsi_digits
from simtrust.errors import InvalidInput

__all__ = ["DIRECTIONS", "EVENT_KINDS", "MAX_DESTINATIONS", "SESSION_KINDS", "USAGE_KINDS",
           "VOICE_KINDS", "SessionRow", "SimEvent", "session_event"]

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
#: A voice call and an SMS of the SIM, from the operator's usage records (CDRs).
VOICE = "voice"
SMS = "sms"
EVENT_KINDS = (AUTH, SYNC_FAILURE, SQN_AHEAD, LOCATION, SESSION_START, SESSION_UPDATE,
               SESSION_STOP, FLOW, VOICE, SMS)
_KINDS = frozenset(EVENT_KINDS)
VOICE_KINDS = frozenset((VOICE, SMS))
SESSION_KINDS = frozenset((SESSION_START, SESSION_UPDATE, SESSION_STOP))
#: Mobile originated / terminated (TS 32.298 §5.1.2.2: MOCall / MTCall, MO-SMS / MT-SMS).
DIRECTIONS = ("mo", "mt")
#: The kinds that mean the SIM is using service (a suspended SIM should not).
USAGE_KINDS = frozenset((SESSION_START, SESSION_UPDATE, FLOW, VOICE, SMS))
#: Voice-like flows one flow summary may count (a batch's, bounded).
MAX_VOICE_FLOWS = 1_000_000
#: The longest call a record may carry (a day; switches cut longer calls into parts).
MAX_CALL_S = 86_400.0



@dataclass(frozen=True, slots=True)
class SimEvent:
    """One observation of a SIM by any interface.

    ``plmn`` is the serving network (MCC+MNC digits) where known; ``imei`` the
    equipment identity (IMEI or IMEISV) where the interface carries it;
    ``cell`` the cell or tracking-area identity and ``lat``/``lon`` its
    position when the operator's cell table knows it; ``session`` the
    accounting session id of session events; ``apn`` the access point a session
    uses (with ``tenant``, the SIM's cohort); ``destinations`` the destination
    prefixes a flow summary's flows reached (at most :data:`MAX_DESTINATIONS`),
    ``voice_flows`` how many of its flows looked like voice (SIP signalling or
    RTP-like media, :func:`~simtrust.detect.voice_flow_kind`); a ``voice`` or
    ``sms`` event has its ``direction`` (``mo``/``mt``) and a call its
    ``duration`` in seconds. No counterpart number is ever part of an event.
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
    voice_flows: int = 0
    direction: str = ""
    duration: float = 0.0

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
        if not 0 <= self.voice_flows <= MAX_VOICE_FLOWS:
            raise InvalidInput(f"SIM event voice_flows must be 0 to {MAX_VOICE_FLOWS}")
        if self.direction and self.direction not in DIRECTIONS:
            raise InvalidInput("SIM event direction must be 'mo' or 'mt'")
        if not (math.isfinite(self.duration) and 0.0 <= self.duration <= MAX_CALL_S):
            raise InvalidInput(f"SIM event duration must be 0 to {MAX_CALL_S:.0f} s")
        if self.duration and self.kind != VOICE:
            raise InvalidInput("only a voice event has a duration")

    @property
    def cohort(self) -> str:
        """The SIM's cohort: its tenant, and the APN where the event names it."""
        return self.tenant + "/" + self.apn if self.apn else self.tenant


    def to_json(self) -> dict[str, Any]:
        """The JSON-lines form ``simtrust fraud analyse`` reads (empty fields left out)."""
        doc: dict[str, Any] = {"at": self.at, "imsi": self.imsi, "kind": self.kind}
        for name in ("plmn", "imei", "cell", "session", "tenant", "apn", "direction"):
            value = getattr(self, name)
            if value:
                doc[name] = value
        if self.lat is not None:
            doc["lat"], doc["lon"] = self.lat, self.lon
        if self.octets:
            doc["octets"] = self.octets
        if self.destinations:
            doc["destinations"] = list(self.destinations)
        if self.voice_flows:
            doc["voice_flows"] = self.voice_flows
        if self.duration:
            doc["duration"] = self.duration
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
        for name in ("imsi", "kind", "plmn", "imei", "cell", "session", "tenant", "apn",
                     "direction"):
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
        voice_flows = doc.get("voice_flows", 0)
        if isinstance(voice_flows, bool) or not isinstance(voice_flows, int):
            raise InvalidInput("SIM event 'voice_flows' must be an integer")
        duration = doc.get("duration", 0.0)
        if isinstance(duration, bool) or not isinstance(duration, int | float):
            raise InvalidInput("SIM event 'duration' must be a number (seconds)")
        if isinstance(duration, int) and not 0 <= duration <= MAX_CALL_S:
            raise InvalidInput(f"SIM event duration must be 0 to {MAX_CALL_S:.0f} s")
        return cls(float(at), imsi_digits(text["imsi"]), text["kind"], plmn=text["plmn"],
                   imei=text["imei"], cell=text["cell"], lat=pos["lat"], lon=pos["lon"],
                   session=text["session"], tenant=text["tenant"], octets=octets,
                   apn=text["apn"], destinations=tuple(destinations),
                   voice_flows=voice_flows, direction=text["direction"],
                   duration=float(duration))


_JSON_FIELDS = frozenset(
    ("at", "imsi", "kind", "plmn", "imei", "cell", "lat", "lon", "session", "tenant", "octets",
     "apn", "destinations", "voice_flows", "direction", "duration")
)


#: One session event of a burst of accounting records, as plain values: (IMSI, kind,
#: session id, cumulative octets, serving PLMN, IMEI, tenant, APN, cell). A burst's
#: events share their time, so a row is the event less ``at`` (:func:`session_event`).
SessionRow = tuple[ImsiDigits, str, str, int, str, str, str, str, str]


def session_event(at: float, row: SessionRow) -> SimEvent:
    """The :class:`SimEvent` a session row stands for (:class:`InvalidInput` as there)."""
    imsi, kind, session, octets, plmn, imei, tenant, apn, cell = row
    return SimEvent(at, imsi, kind, plmn=plmn, imei=imei, cell=cell, session=session,
                    tenant=tenant, octets=octets, apn=apn)
