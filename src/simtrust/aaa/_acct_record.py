"""One Accounting-Request reduced to the record its session keeps.

RFC 2866 §5 (Acct-Status-Type, Acct-Session-Id, Acct-Input/Output-Octets and
-Packets, Acct-Session-Time, Acct-Terminate-Cause), RFC 2869 §5.1/§5.2
(Gigawords folded into the octet counters), RFC 2865 §5.8 (Framed-IP-Address,
which names the SIM when 3GPP-IMSI is absent), TS 29.061 §16.4.7 (3GPP-IMSI,
3GPP-IMEISV, 3GPP-SGSN-MCC-MNC: a serving network other than the SIM's home
network makes the session a roaming one, tagged with the visited network).
"""

from __future__ import annotations

import ipaddress

from simtrust.aaa._events import request_cell, text_value
from simtrust.aaa._radius import Attr, Packet, Vendor
from simtrust.aaa._sessions import AcctRecord
from simtrust.subscriber import AttachEngine

__all__ = ["acct_record"]


def acct_record(request: Packet, a: dict[int, bytes], client_id: int, session_id: str,
                status: str, attach: AttachEngine, at: str) -> AcctRecord:
    """The record of ``request`` (``a``: its attributes' first values; ``status``:
    start, interim or stop); the SIM's ICCID, tenant and APN come from ``attach``'s
    cache."""
    imsi = text_value(request.vendor(Vendor.TGPP, Vendor.TGPP_IMSI))
    framed = a.get(Attr.FRAMED_IP_ADDRESS)
    framed_ip = str(ipaddress.IPv4Address(framed)) if framed and len(framed) == 4 else None
    if imsi is None and framed_ip is not None:
        imsi = attach.addresses.lookup(framed_ip)
    nas = a.get(Attr.NAS_IP_ADDRESS)
    serving = text_value(request.vendor(Vendor.TGPP, Vendor.TGPP_SGSN_MCC_MNC))
    apn = a.get(Attr.CALLED_STATION_ID)
    msisdn = a.get(Attr.CALLING_STATION_ID)
    # the integer attributes (4 octets; any other length counts as absent)
    n = {kind: int.from_bytes(value, "big") for kind, value in a.items() if len(value) == 4}
    record = AcctRecord(
        session_key=f"{client_id}:{session_id}", acct_session_id=session_id,
        client_id=client_id, status="closed" if status == "stop" else "open",
        at=at, imsi=imsi,
        apn=apn.decode("utf-8", "replace").lower() if apn else None,
        msisdn=msisdn.decode("utf-8", "replace") if msisdn else None,
        imeisv=text_value(request.vendor(Vendor.TGPP, Vendor.TGPP_IMEISV)),
        framed_ip=framed_ip,
        nas_ip=str(ipaddress.IPv4Address(nas)) if nas and len(nas) == 4 else None,
        serving_plmn=serving, cell=request_cell(request) or None,
        in_octets=n.get(Attr.ACCT_INPUT_GIGAWORDS, 0) << 32 | n.get(Attr.ACCT_INPUT_OCTETS, 0),
        out_octets=n.get(Attr.ACCT_OUTPUT_GIGAWORDS, 0) << 32
        | n.get(Attr.ACCT_OUTPUT_OCTETS, 0),
        in_packets=n.get(Attr.ACCT_INPUT_PACKETS, 0),
        out_packets=n.get(Attr.ACCT_OUTPUT_PACKETS, 0),
        session_time=n.get(Attr.ACCT_SESSION_TIME, 0),
        terminate_cause=n.get(Attr.ACCT_TERMINATE_CAUSE, 0)
        if status == "stop" and Attr.ACCT_TERMINATE_CAUSE in a else None,
    )
    if imsi is not None:
        sim = attach.sim_view(imsi)
        if sim is not None:
            record.iccid = sim.iccid
            record.tenant_id = sim.tenant_id
            if record.apn is None:
                record.apn = sim.apn
            if serving is not None and serving != str(sim.home):
                record.visited_plmn = serving
    return record
