"""One Accounting-Request reduced to the record its session keeps.

RFC 2866 §5 (Acct-Status-Type, Acct-Session-Id, Acct-Input/Output-Octets and
-Packets, Acct-Session-Time, Acct-Terminate-Cause), RFC 2869 §5.1/§5.2
(Gigawords folded into the octet counters), RFC 2865 §5.8 (Framed-IP-Address,
which names the SIM when 3GPP-IMSI is absent), TS 29.061 §16.4.7 (3GPP-IMSI,
3GPP-IMEISV, 3GPP-SGSN-MCC-MNC: a serving network other than the SIM's home
network makes the session a roaming one, tagged with the visited network).

:func:`scan` is the accounting path's parser: one pass over the datagram with
the checks of :func:`~simtrust.aaa._radius.decode` (RFC 2865 §3 length rules,
RFC 2865 §5 attribute lengths, no length-loop), giving each attribute's first
value and each 3GPP sub-attribute's first value (RFC 2865 §5.26 layout), which
is all a record needs, without a packet object.
"""

from __future__ import annotations

import ipaddress

from simtrust.aaa._events import text_value
from simtrust.aaa._radius import MAX_PACKET, Attr, MalformedPacket, Packet, Vendor
from simtrust.aaa._sessions import AcctRecord
from simtrust.domain import user_location_cell
from simtrust.subscriber import AttachEngine

__all__ = ["acct_record", "record_of", "scan"]

_TGPP = Vendor.TGPP.to_bytes(4, "big")
_IPV4: dict[bytes, str] = {}


def scan(data: bytes) -> tuple[int, dict[int, bytes], dict[int, bytes]]:
    """(RADIUS length, first value of each attribute, first value of each 3GPP
    vendor sub-attribute) of a datagram; :class:`MalformedPacket` where
    :func:`~simtrust.aaa._radius.decode` would raise it."""
    size = len(data)
    if size < 20:
        raise MalformedPacket("datagram shorter than a RADIUS header", reason="short")
    if size > MAX_PACKET:
        raise MalformedPacket("datagram larger than 4096 octets", reason="oversized")
    length = data[2] << 8 | data[3]
    if length < 20 or length > MAX_PACKET:
        raise MalformedPacket("RADIUS length out of range", reason="length")
    if length > size:
        raise MalformedPacket("datagram shorter than its RADIUS length", reason="truncated")
    first: dict[int, bytes] = {}
    tgpp: dict[int, bytes] = {}
    offset = 20
    while offset < length:
        if offset + 2 > length:
            raise MalformedPacket("attribute header truncated", reason="attribute")
        kind = data[offset]
        alen = data[offset + 1]
        if alen < 2:
            raise MalformedPacket("attribute length below 2", reason="attribute-length")
        end = offset + alen
        if end > length:
            raise MalformedPacket("attribute runs past the packet", reason="attribute")
        if kind == 26:
            if alen >= 8 and data[offset + 2 : offset + 6] == _TGPP:
                # sub-attributes; stop at the first malformed one (as Packet.vendor)
                sub = offset + 6
                while sub + 2 <= end:
                    sub_type, sub_len = data[sub], data[sub + 1]
                    sub_end = sub + sub_len
                    if sub_len < 2 or sub_end > end:
                        break
                    if sub_type not in tgpp:
                        tgpp[sub_type] = data[sub + 2 : sub_end]
                    sub = sub_end
            first.setdefault(26, data[offset + 2 : end])
        elif kind not in first:
            first[kind] = data[offset + 2 : end]
        offset = end
    return length, first, tgpp


def _ipv4(value: bytes | None) -> str | None:
    if value is None or len(value) != 4:
        return None
    text = _IPV4.get(value)
    if text is None:
        text = str(ipaddress.IPv4Address(value))
        if len(_IPV4) > 100_000:
            _IPV4.clear()
        _IPV4[value] = text
    return text


def _int(a: dict[int, bytes], kind: int) -> int:
    value = a.get(kind)
    return int.from_bytes(value, "big") if value is not None and len(value) == 4 else 0


def record_of(a: dict[int, bytes], tgpp: dict[int, bytes], client_id: int, session_id: str,
              status: str, attach: AttachEngine, at: str) -> AcctRecord:
    """The record of a request given its attributes' first values ``a`` and its 3GPP
    sub-attributes ``tgpp`` (``status``: start, interim or stop); the SIM's ICCID,
    tenant and APN come from ``attach``'s cache."""
    imsi = text_value(tgpp.get(Vendor.TGPP_IMSI))
    framed_ip = _ipv4(a.get(Attr.FRAMED_IP_ADDRESS))
    if imsi is None and framed_ip is not None:
        imsi = attach.addresses.lookup(framed_ip)
    serving = text_value(tgpp.get(Vendor.TGPP_SGSN_MCC_MNC))
    apn = a.get(Attr.CALLED_STATION_ID)
    msisdn = a.get(Attr.CALLING_STATION_ID)
    uli = tgpp.get(Vendor.TGPP_USER_LOCATION_INFO)
    equipment = tgpp.get(Vendor.TGPP_IMEISV)
    apn_text = apn.decode("utf-8", "replace").lower() if apn else None
    iccid: str | None = None
    tenant_id: str | None = None
    visited: str | None = None
    if imsi is not None:
        sim = attach.sim_view(imsi)
        if sim is not None:
            iccid = sim.iccid
            tenant_id = sim.tenant_id
            if apn_text is None:
                apn_text = sim.apn
            if serving is not None and serving != str(sim.home):
                visited = serving
    # positional, in AcctRecord's field order (one call per record on the hot path)
    return AcctRecord(
        f"{client_id}:{session_id}", session_id, client_id,
        "closed" if status == "stop" else "open", at, imsi, iccid, tenant_id, apn_text,
        msisdn.decode("utf-8", "replace") if msisdn else None,
        None if equipment is None else text_value(equipment),
        framed_ip, _ipv4(a.get(Attr.NAS_IP_ADDRESS)), serving, visited,
        _int(a, Attr.ACCT_INPUT_GIGAWORDS) << 32 | _int(a, Attr.ACCT_INPUT_OCTETS),
        _int(a, Attr.ACCT_OUTPUT_GIGAWORDS) << 32 | _int(a, Attr.ACCT_OUTPUT_OCTETS),
        _int(a, Attr.ACCT_INPUT_PACKETS), _int(a, Attr.ACCT_OUTPUT_PACKETS),
        _int(a, Attr.ACCT_SESSION_TIME),
        _int(a, Attr.ACCT_TERMINATE_CAUSE)
        if status == "stop" and Attr.ACCT_TERMINATE_CAUSE in a else None,
        (user_location_cell(uli) or None) if uli else None,
    )


def acct_record(request: Packet, a: dict[int, bytes], client_id: int, session_id: str,
                status: str, attach: AttachEngine, at: str) -> AcctRecord:
    """The record of a decoded ``request`` (``a``: its attributes' first values)."""
    tgpp = {sub: value for sub in (Vendor.TGPP_IMSI, Vendor.TGPP_SGSN_MCC_MNC,
                                   Vendor.TGPP_IMEISV, Vendor.TGPP_USER_LOCATION_INFO)
            if (value := request.vendor(Vendor.TGPP, sub)) is not None}
    return record_of(a, tgpp, client_id, session_id, status, attach, at)
