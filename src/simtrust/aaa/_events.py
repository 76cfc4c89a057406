"""RADIUS as seen by fraud detection: authentications and accounting become ``SimEvent``s.

A successful EAP-AKA/AKA' authentication (RFC 4187, RFC 9048) is an ``auth``
event of the SIM, with the serving network from 3GPP-SGSN-MCC-MNC and the
equipment from 3GPP-IMEISV and the cell or area from 3GPP-User-Location-Info
(TS 29.061 §16.4.7; :func:`simtrust.domain.user_location_cell`); committed accounting records
(RFC 2866 §4.1/§4.2) are ``session-start``, ``-update`` and ``-stop`` events
(docs/fraud.md). A record whose IMSI does not parse is passed over.
"""

from __future__ import annotations

import time
from collections.abc import Container, Iterable

from simtrust.aaa._radius import Packet, Vendor
from simtrust.aaa._sessions import AcctRecord
from simtrust.detect import SimEvent
from simtrust.domain import imsi_digits, user_location_cell
from simtrust.errors import SimtrustError

__all__ = ["auth_event", "request_cell", "session_events", "text_value"]


def text_value(value: bytes | None) -> str | None:
    """A text attribute's value, trailing NULs and blanks stripped (None when empty)."""
    if value is None:
        return None
    text = value.decode("utf-8", "replace").strip().strip("\x00")
    return text or None


def request_cell(request: Packet) -> str:
    """The cell or tracking area a request's 3GPP-User-Location-Info names (``""``: none)."""
    return user_location_cell(request.vendor(Vendor.TGPP, Vendor.TGPP_USER_LOCATION_INFO) or b"")


def auth_event(request: Packet, imsi: str, tenant_id: str) -> SimEvent | None:
    """The ``auth`` event of a successful authentication of ``imsi`` (None: bad IMSI)."""
    serving = text_value(request.vendor(Vendor.TGPP, Vendor.TGPP_SGSN_MCC_MNC)) or ""
    equipment = text_value(request.vendor(Vendor.TGPP, Vendor.TGPP_IMEISV)) or ""
    try:
        return SimEvent(time.time(), imsi_digits(imsi), "auth", plmn=serving,
                        imei=equipment, tenant=tenant_id, cell=request_cell(request))
    except SimtrustError:
        return None


def session_events(records: Iterable[AcctRecord], known: Container[str]) -> list[SimEvent]:
    """Committed accounting records as session events (``known``: sessions seen before)."""
    at = time.time()
    events = []
    for record in records:
        if record.imsi is None:
            continue
        kind = ("session-stop" if record.status == "closed" else
                "session-update" if record.session_key in known else "session-start")
        try:
            events.append(SimEvent(at, imsi_digits(record.imsi), kind,
                                   plmn=record.serving_plmn or "", imei=record.imeisv or "",
                                   session=record.session_key, tenant=record.tenant_id or "",
                                   octets=record.in_octets + record.out_octets,
                                   apn=record.apn or "", cell=record.cell or ""))
        except SimtrustError:
            continue
    return events
