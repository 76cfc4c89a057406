"""LwM2M 1.2 Send (OMA LwM2M Core V1_2, Information Reporting interface, "Send"
operation; Transport V1_2: a CoAP POST to ``/dp`` with SenML-JSON or SenML-CBOR,
answered 2.04 Changed): a registered device pushes values without being observed.

The sender must be registered over the session it sends on (the same DTLS identity; on
the NoSec link the same address); the values feed what the server learns of the device
(firmware version) and the ``report_listeners`` of the manager (fraud checks,
``devices/_reports.py``).
A device that is not registered is refused 4.03, another content format 4.15, malformed
SenML 4.00 (counted by the message layer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simtrust.devices._coap import Code, Message
from simtrust.devices._content import CF_SENML_CBOR, CF_SENML_JSON, decode_content
from simtrust.devices._transport import Peer

if TYPE_CHECKING:
    from simtrust.devices._server import DeviceManager, Registration

__all__ = ["handle_send"]


def _sender(manager: DeviceManager, peer: Peer) -> Registration | None:
    if peer.secure:
        entry = peer.entry
        if entry is None or entry.imsi is None:
            return None
        for reg in manager.registrations():
            if reg.imsi == entry.imsi and reg.peer.identity == peer.identity:
                return reg
        return None
    return next((r for r in manager.registrations()
                 if not r.peer.secure and r.peer.addr == peer.addr), None)


def handle_send(manager: DeviceManager, peer: Peer, msg: Message) -> Message:
    if msg.code != Code.POST:
        return manager.refuse("method", msg, Code.METHOD_NOT_ALLOWED)
    if msg.content_format not in (CF_SENML_JSON, CF_SENML_CBOR):
        return manager.refuse("content-format", msg, Code.UNSUPPORTED_CONTENT_FORMAT)
    reg = _sender(manager, peer)
    if reg is None:
        return manager.refuse("send-not-registered", msg, Code.FORBIDDEN)
    values = decode_content(msg.content_format, msg.payload, ())
    manager.learn(reg.endpoint, values)  # report_listeners see the values
    return msg.reply(Code.CHANGED)
