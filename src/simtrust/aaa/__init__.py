"""simtrust.aaa: the AAA server of private APNs and SIM-based access over RADIUS.

RADIUS (RFC 2865 access, RFC 2866 accounting, RFC 3579 EAP transport, RFC 5176
dynamic authorization) for packet gateways (TS 29.061 §16, TS 29.561): gateway
clients with sealed secrets, Access-Request answered by the subscriber
package's attach decision with the SIM's address, per-APN second-level
credentials, group-committed accounting sessions that feed the policies'
volume caps, and Disconnect/CoA sent when a SIM is suspended or terminated.
Transports: UDP, TCP (RFC 6613) and TLS (RadSec, RFC 6614).
"""

from simtrust.aaa._apn import AUTH_METHODS, DEFAULT_SESSION_TIMEOUT, ApnAccess, ApnAccessStore
from simtrust.aaa._clients import DEFAULT_COA_PORT, GatewayClient, GatewayClients
from simtrust.aaa._coa import ERROR_CAUSES, CoaResult, DynamicAuthClient
from simtrust.aaa._eap import (
    AkaMessage,
    EapPacket,
    MalformedEap,
    aka_keys,
    aka_prime_keys,
    decode_eap,
    identity_value,
    mac_of,
    zero_mac,
)
from simtrust.aaa._eap_server import EapAkaServer, EapOutcome
from simtrust.aaa._eap_store import EapIdentityStore
from simtrust.aaa._listener import RadiusListener, parse_bind
from simtrust.aaa._radius import (
    Attr,
    Code,
    MalformedPacket,
    Packet,
    Vendor,
    decode,
    hide_password,
    mppe_decrypt,
)
from simtrust.aaa._server import COUNTERS, EapHandler, RadiusServer, UsageSink
from simtrust.aaa._service import AaaServices, build_aaa
from simtrust.aaa._sessions import AccountingLog, AcctRecord, Session
from simtrust.aaa._steer import steered_sockets
from simtrust.aaa._stream import RADSEC_SECRET, RadiusStreamListener, radsec_context

__all__ = [
    "AUTH_METHODS",
    "COUNTERS",
    "DEFAULT_COA_PORT",
    "DEFAULT_SESSION_TIMEOUT",
    "ERROR_CAUSES",
    "RADSEC_SECRET",
    "AaaServices",
    "AccountingLog",
    "AcctRecord",
    "AkaMessage",
    "ApnAccess",
    "ApnAccessStore",
    "Attr",
    "CoaResult",
    "Code",
    "DynamicAuthClient",
    "EapAkaServer",
    "EapHandler",
    "EapIdentityStore",
    "EapOutcome",
    "EapPacket",
    "GatewayClient",
    "GatewayClients",
    "MalformedEap",
    "MalformedPacket",
    "Packet",
    "RadiusListener",
    "RadiusServer",
    "RadiusStreamListener",
    "Session",
    "UsageSink",
    "Vendor",
    "aka_keys",
    "aka_prime_keys",
    "build_aaa",
    "decode",
    "decode_eap",
    "hide_password",
    "identity_value",
    "mac_of",
    "mppe_decrypt",
    "parse_bind",
    "radsec_context",
    "steered_sockets",
    "zero_mac",
]
