"""Dynamic authorization: Disconnect-Request and CoA-Request to a gateway (RFC 5176).

simtrust is the Dynamic Authorization Client (§2): the request names the
session by Acct-Session-Id, the subscriber (User-Name and 3GPP-IMSI) and its
Framed-IP-Address (§3, "Session identification"), carries a Request
Authenticator (§2.3) and a Message-Authenticator (§3.3), and goes to the
gateway's CoA port. It is retransmitted with the same identifier and
authenticator until an ACK or NAK arrives (§2.3 recommends a retransmission
policy like RFC 2865's) or the attempts are spent. A NAK's Error-Cause (§3.5)
is kept. Every outcome is audited.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Protocol

from simtrust.aaa._clients import GatewayClient
from simtrust.aaa._radius import (
    Attr,
    Code,
    MalformedPacket,
    Packet,
    Vendor,
    decode,
    verify_response,
)
from simtrust.aaa._sessions import Session

__all__ = ["ERROR_CAUSES", "CoaResult", "DynamicAuthClient"]

#: RFC 5176 §3.5 Error-Cause values (the ones a gateway is likely to send).
ERROR_CAUSES = {
    201: "residual-session-context-removed", 202: "invalid-eap-packet",
    401: "unsupported-attribute", 402: "missing-attribute", 403: "nas-identification-mismatch",
    404: "invalid-request", 405: "unsupported-service", 406: "unsupported-extension",
    407: "invalid-attribute-value", 501: "administratively-prohibited",
    502: "request-not-routable", 503: "session-context-not-found",
    504: "session-context-not-removable", 505: "other-proxy-processing-error",
    506: "resources-unavailable", 507: "request-initiated", 508: "multiple-session-selection",
}


class _Audit(Protocol):
    def append(self, *, actor: str, action: str, subject: str, outcome: str,
               reason: str = "", tenant_id: str | None = None,
               details: dict[str, Any] | None = None) -> Any: ...


@dataclass(frozen=True, slots=True)
class CoaResult:
    """What the gateway said: ``ack``, ``nak`` (with Error-Cause) or ``timeout``."""

    outcome: str
    session_id: str
    target: str
    attempts: int
    error_cause: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome, "session_id": self.session_id, "target": self.target,
            "attempts": self.attempts, "error_cause": self.error_cause,
            "error": ERROR_CAUSES.get(self.error_cause or 0),
        }


class DynamicAuthClient:
    """Sends Disconnect/CoA requests with retransmissions; audits each outcome."""

    def __init__(self, audit: _Audit, *, attempts: int = 3, timeout: float = 1.0) -> None:
        self._audit = audit
        self.attempts = attempts
        self.timeout = timeout
        self.sent = 0

    def __repr__(self) -> str:
        return f"DynamicAuthClient(sent={self.sent})"

    def disconnect(self, session: Session, client: GatewayClient, *, actor: str,
                   reason: str) -> CoaResult:
        return self._send(Code.DISCONNECT_REQUEST, session, client, [], actor=actor,
                          reason=reason)

    def change(self, session: Session, client: GatewayClient, *, actor: str, reason: str,
               session_timeout: int | None = None, filter_id: str | None = None) -> CoaResult:
        """A CoA-Request changing the session's Session-Timeout and/or Filter-Id (RFC 5176 §3.1)."""
        extra: list[tuple[int, bytes]] = []
        if session_timeout is not None:
            extra.append((Attr.SESSION_TIMEOUT, int(session_timeout).to_bytes(4, "big")))
        if filter_id is not None:
            extra.append((11, filter_id.encode("utf-8")[:253]))
        return self._send(Code.COA_REQUEST, session, client, extra, actor=actor, reason=reason)

    @staticmethod
    def target_of(session: Session, client: GatewayClient) -> str:
        """The gateway address: the session's NAS-IP-Address if the client covers it,
        else the client's address when its CIDR is a single host."""
        if session.nas_ip:
            try:
                if ipaddress.ip_address(session.nas_ip) in client.network:
                    return session.nas_ip
            except ValueError:
                pass
        return str(client.network.network_address)

    def _send(self, code: int, session: Session, client: GatewayClient,
              extra: list[tuple[int, bytes]], *, actor: str, reason: str) -> CoaResult:
        target = self.target_of(session, client)
        request = Packet(code, os.urandom(1)[0])
        request.add(Attr.ACCT_SESSION_ID, session.acct_session_id.encode("utf-8"))
        if session.imsi:
            request.add(Attr.USER_NAME, session.imsi.encode())
            request.add_vendor(Vendor.TGPP, Vendor.TGPP_IMSI, session.imsi.encode())
        if session.framed_ip:
            request.add(Attr.FRAMED_IP_ADDRESS, ipaddress.ip_address(session.framed_ip).packed)
        if session.nas_ip:
            request.add(Attr.NAS_IP_ADDRESS, ipaddress.ip_address(session.nas_ip).packed)
        for kind, value in extra:
            request.add(kind, value)
        request.add(Attr.EVENT_TIMESTAMP, int(time.time()).to_bytes(4, "big"))
        request.add(Attr.MESSAGE_AUTHENTICATOR, bytes(16))
        wire = request.sign_request(client.secret)
        family = socket.AF_INET6 if ":" in target else socket.AF_INET
        attempts = 0
        result: CoaResult | None = None
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            wait = self.timeout
            for _try in range(self.attempts):
                attempts += 1
                sock.sendto(wire, (target, client.coa_port))
                self.sent += 1
                deadline = time.monotonic() + wait
                while result is None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    sock.settimeout(left)
                    try:
                        data, _addr = sock.recvfrom(4096)
                    except TimeoutError:
                        break
                    result = self._answer(data, request, client, session, target, attempts)
                if result is not None:
                    break
                wait *= 2
        if result is None:
            result = CoaResult("timeout", session.acct_session_id, target, attempts)
        verb = "disconnect" if code == Code.DISCONNECT_REQUEST else "coa"
        self._audit.append(
            actor=actor, action=f"radius.{verb}", subject=f"sim:{session.iccid or session.imsi}",
            outcome="success" if result.outcome == "ack" else "failure", reason=reason,
            tenant_id=session.tenant_id,
            details={**result.to_json(), "gateway": client.name, "framed_ip": session.framed_ip},
        )
        return result

    @staticmethod
    def _answer(data: bytes, request: Packet, client: GatewayClient, session: Session,
                target: str, attempts: int) -> CoaResult | None:
        try:
            reply = decode(data)
        except MalformedPacket:
            return None
        if reply.identifier != request.identifier:
            return None
        if not verify_response(data[: 20 + len(reply.encode_attributes())],
                               request.authenticator, client.secret):
            return None
        acks = (Code.DISCONNECT_ACK, Code.COA_ACK)
        naks = (Code.DISCONNECT_NAK, Code.COA_NAK)
        if reply.code in acks:
            return CoaResult("ack", session.acct_session_id, target, attempts)
        if reply.code in naks:
            return CoaResult("nak", session.acct_session_id, target, attempts,
                             reply.integer(Attr.ERROR_CAUSE))
        return None
