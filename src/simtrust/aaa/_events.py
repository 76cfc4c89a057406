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
from simtrust.detect import SessionRow, SimEvent
from simtrust.domain import imsi_digits, user_location_cell
from simtrust.errors import SimtrustError

_MAX_OCTETS = 2**64  # SimEvent.octets

__all__ = ["auth_event", "request_cell", "session_rows", "text_value"]


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


def session_rows(records: Iterable[AcctRecord], known: Container[str]) -> list[SessionRow]:
    """Committed accounting records as the rows of session events
    (:data:`~simtrust.detect.SessionRow`; ``known``: sessions seen before). A record
    whose IMSI does not parse, or whose octets no event can carry (2^64 or more), is
    passed over."""
    rows: list[SessionRow] = []
    for record in records:
        imsi = record.imsi
        if imsi is None:
            continue
        octets = record.in_octets + record.out_octets
        if octets >= _MAX_OCTETS:
            continue
        try:
            digits = imsi_digits(imsi)
        except SimtrustError:
            continue
        key = record.session_key
        rows.append((digits, "session-stop" if record.status == "closed" else
                     "session-update" if key in known else "session-start", key, octets,
                     record.serving_plmn or "", record.imeisv or "", record.tenant_id or "",
                     record.apn or "", record.cell or ""))
    return rows
