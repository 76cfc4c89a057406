"""Device-side enrolment on the LwM2M bootstrap server: EST over secure CoAP (RFC 9148)
inside the bootstrap DTLS session, for LwM2M's certificate mode with EST (Core V1_1_1
§E.1, Security Mode 4: the device makes its key pair and has its certificate issued).

- ``POST /.well-known/est/sen`` (simpleenroll, RFC 9148 §5 and Table 1; RFC 7030 §4.2.1):
  Content-Format 286 ``application/pkcs10``, a DER CSR; answered 2.04 Changed with
  Content-Format 287 ``application/pkix-cert``, the DER certificate.
- ``GET /.well-known/est/crts`` (cacerts): Content-Format 287, the trust anchor the
  device must accept for the management server (the operator CA).

Who may enrol: the session's bootstrap credential names the SIM (GBA Ks_NAF or a
per-device bootstrap PSK), and the SIM must be active in a tenant with an ``lwm2m`` CA;
the certificate is that tenant CA's, bound to the SIM's ICCID and IMSI (the CSR's own
subject is not trusted, only its key, whose signature must verify). The certificate
enrolled in a session is what the next Bootstrap-Request of that SIM provisions, with
Security Mode 4 and no secret key: the private key never leaves the device.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cryptography import x509

from simtrust.devices._coap import Code, Message, Opt, uint_option
from simtrust.devices._credentials import BOOTSTRAP
from simtrust.devices._server import SimFinder
from simtrust.devices._transport import Peer
from simtrust.domain import Imsi
from simtrust.errors import SimtrustError
from simtrust.subscriber import SimState

__all__ = ["CF_PKCS10", "CF_PKIX_CERT", "EST_PATH", "CertEnroller", "EstCoaps"]

CF_PKCS10 = 286
CF_PKIX_CERT = 287
EST_PATH = [".well-known", "est"]
#: (tenant, ICCID, IMSI, CSR) → (certificate DER, server trust anchor DER), or None when
#: the tenant has no ``lwm2m`` CA.
CertEnroller = Callable[[str, str, str, x509.CertificateSigningRequest],
                        tuple[bytes, bytes] | None]
#: How long an enrolled certificate waits for the SIM's Bootstrap-Request.
HOLD_S = 600.0
_MAX_CSR = 4096


class EstCoaps:
    """The EST-coaps resources of the bootstrap server."""

    def __init__(self, enrol: CertEnroller, sims: SimFinder, trust: Callable[[], bytes], *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._enrol = enrol
        self._sims = sims
        self._trust = trust
        self._monotonic = monotonic
        self._enrolled: dict[str, tuple[bytes, bytes, float]] = {}
        self.refused: dict[str, int] = {}
        self.issued = 0

    def __repr__(self) -> str:
        return f"EstCoaps({self.issued} issued)"

    def _refuse(self, reason: str, msg: Message, code: int) -> Message:
        self.refused[reason] = self.refused.get(reason, 0) + 1
        return msg.reply(code, reason.encode())

    def handle(self, peer: Peer, msg: Message) -> Message:
        name = msg.path[2:]
        entry = peer.entry
        if not peer.secure or entry is None or entry.purpose != BOOTSTRAP or entry.imsi is None:
            return self._refuse("wrong-credential", msg, Code.FORBIDDEN)
        if name == ["crts"] and msg.code == Code.GET:
            return msg.reply(Code.CONTENT, self._trust(),
                             [(Opt.CONTENT_FORMAT, uint_option(CF_PKIX_CERT))])
        if name != ["sen"]:
            return self._refuse("not-found", msg, Code.NOT_FOUND)
        if msg.code != Code.POST:
            return self._refuse("method", msg, Code.METHOD_NOT_ALLOWED)
        if msg.content_format != CF_PKCS10:
            return self._refuse("content-format", msg, Code.UNSUPPORTED_CONTENT_FORMAT)
        if len(msg.payload) > _MAX_CSR:
            return self._refuse("too-large", msg, Code.REQUEST_ENTITY_TOO_LARGE)
        try:
            csr = x509.load_der_x509_csr(msg.payload)
            valid = csr.is_signature_valid
        except (ValueError, TypeError):
            return self._refuse("bad-csr", msg, Code.BAD_REQUEST)
        if not valid:
            return self._refuse("bad-csr", msg, Code.BAD_REQUEST)
        sim = self._sims.find_sim(Imsi(entry.imsi))
        if sim is None or sim.state not in (SimState.ACTIVE, SimState.TEST):
            return self._refuse("sim-not-active", msg, Code.FORBIDDEN)
        try:
            issued = self._enrol(sim.tenant_id, sim.iccid.value, sim.imsi.value, csr)
        except SimtrustError as exc:
            return self._refuse(exc.code, msg, Code.BAD_REQUEST if exc.status < 500
                                else Code.SERVICE_UNAVAILABLE)
        if issued is None:
            return self._refuse("no-lwm2m-ca", msg, Code.NOT_FOUND)
        cert, trust = issued
        self._expire()
        self._enrolled[sim.imsi.value] = (cert, trust, self._monotonic() + HOLD_S)
        self.issued += 1
        return msg.reply(Code.CHANGED, cert, [(Opt.CONTENT_FORMAT, uint_option(CF_PKIX_CERT))])

    def _expire(self) -> None:
        now = self._monotonic()
        for imsi in [k for k, v in self._enrolled.items() if v[2] < now]:
            del self._enrolled[imsi]

    def take(self, imsi: str) -> tuple[bytes, bytes] | None:
        """The certificate the SIM enrolled (and its trust anchor), once."""
        self._expire()
        found = self._enrolled.pop(imsi, None)
        return None if found is None else (found[0], found[1])
