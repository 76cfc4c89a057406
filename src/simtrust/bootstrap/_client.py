"""The device side over the network: Ub to the BSF, then EST enrolment at the NAF.

:class:`DeviceClient` drives a :class:`SimApplet` against a bootstrap listener:
GBA bootstrapping (TS 24.109 §5.2: Digest AKA, AUTS re-synchronisation, the
BSF's ``rspauth`` checked), then ``simpleenroll`` / ``simplereenroll`` /
``cacerts`` of RFC 7030 with Digest (B-TID or A-KID, TS 33.222 §5.3) over TLS
that authenticates the server with the operator's tier-1 CA.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from simtrust.bootstrap._bsf import BootstrapInfo, parse_bootstrapping_info
from simtrust.bootstrap._device import SimApplet
from simtrust.bootstrap._digest import (
    check_response,
    digest_response,
    format_credentials,
    parse_digest,
)
from simtrust.bootstrap._http import HttpAnswer, HttpClient
from simtrust.bootstrap._kdf import NafId
from simtrust.errors import AuthenticationFailure, DecodeError, PermissionDenied
from simtrust.subscriber.auc import SyncFailure

__all__ = ["DeviceClient", "EnrolmentRefused", "https_client", "parse_certs_only"]


class EnrolmentRefused(PermissionDenied):
    """The EST server answered an error status (``status`` and its text in the detail)."""

    code = "enrolment-refused"


def parse_certs_only(body: bytes) -> list[x509.Certificate]:
    """Certificates of a base64 certs-only PKCS#7 (RFC 7030 §4.1.3)."""
    try:
        return pkcs7.load_der_pkcs7_certificates(base64.b64decode(b"".join(body.split())))
    except ValueError:
        raise DecodeError("answer is not base64 certs-only PKCS#7") from None


def https_client(ctx: ssl.SSLContext, timeout: float = 15.0) -> httpx.Client:
    """An HTTPS client for the bootstrap listener (keeps its connection alive)."""
    # No Nagle: a request's headers and body leave in separate small writes.
    transport = httpx.HTTPTransport(
        verify=ctx, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    return httpx.Client(transport=transport, timeout=timeout)


class DeviceClient:
    """One device: its SIM applet and an HTTPS client towards the bootstrap listener."""

    def __init__(self, applet: SimApplet, *, base_url: str, trust_pem: bytes, naf_id: NafId,
                 clock: Callable[[], datetime], timeout: float = 15.0,
                 http: HttpClient | None = None) -> None:
        self.applet = applet
        self.base_url = base_url.rstrip("/")
        self.naf_id = naf_id
        self._clock = clock
        self._trust = trust_pem
        self._timeout = timeout
        #: ``http``: a client shared with other devices (its kept-alive TLS connection
        #: is reused; the caller closes it), httpx's or a :class:`LeanHttps`, else one
        #: of this device's own.
        self._own_http = http is None
        self._http: HttpClient = self._client(self._context()) if http is None else http
        #: How the device waits out an EST 202 (RFC 7030 §4.2.3), and for how long in all.
        self.sleep: Callable[[float], None] = time.sleep
        self.max_wait = 300.0

    def __repr__(self) -> str:
        return f"DeviceClient({self.applet!r}, {self.base_url!r})"

    def _context(self, cert: x509.Certificate | None = None, key_label: str = "") -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=self._trust.decode())
        if cert is not None:
            with tempfile.TemporaryDirectory(prefix="simtrust-dev-") as tmp:
                cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
                cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
                key_file.touch(mode=0o600)
                key_file.write_bytes(self.applet.tls_key_pem(key_label))
                ctx.load_cert_chain(cert_file, key_file)
        return ctx

    def _client(self, ctx: ssl.SSLContext) -> httpx.Client:
        return https_client(ctx, self._timeout)

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    def __enter__(self) -> DeviceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- Ub (GBA) --------------------------------------------------------------

    def bootstrap(self, *, max_resync: int = 1) -> BootstrapInfo:
        """Run GBA over Ub; re-synchronises once on an SQN failure."""
        uri = "/bsf"
        first = format_credentials({"username": self.applet.impi, "realm": "", "nonce": "",
                                    "uri": uri, "response": ""})
        response = self._http.get(self.base_url + uri, headers={"Authorization": first})
        for _ in range(max_resync + 1):
            if response.status_code != 401:
                break
            challenge = parse_digest(response.headers.get("WWW-Authenticate", ""))
            raw = base64.b64decode(challenge["nonce"])
            rand, autn = raw[:16], raw[16:32]
            cnonce = base64.b64encode(os.urandom(12)).decode()
            params = {"username": self.applet.impi, "realm": challenge["realm"],
                      "nonce": challenge["nonce"], "uri": uri, "qop": "auth-int",
                      "nc": "00000001", "cnonce": cnonce, "algorithm": "AKAv1-MD5"}
            try:
                res = self.applet.aka(rand, autn)
                password = res
            except SyncFailure as exc:
                if exc.auts is None:
                    raise
                params["auts"] = base64.b64encode(exc.auts).decode()
                password = b""
            params["response"] = digest_response(
                algorithm="AKAv1-MD5", username=self.applet.impi, realm=challenge["realm"],
                password=password, method="GET", uri=uri, nonce=challenge["nonce"],
                nc="00000001", cnonce=cnonce, qop="auth-int")
            response = self._http.get(self.base_url + uri,
                                      headers={"Authorization": format_credentials(params)})
            if response.status_code == 200:
                info = parse_bootstrapping_info(response.content)
                auth_info = parse_digest(
                    "Digest " + response.headers.get("Authentication-Info", ""))
                expected = digest_response(
                    algorithm="AKAv1-MD5", username=self.applet.impi,
                    realm=challenge["realm"], password=password, method="", uri=uri,
                    nonce=challenge["nonce"], nc="00000001", cnonce=cnonce, qop="auth-int",
                    body=response.content)
                if not check_response(expected, auth_info.get("rspauth", "")):
                    raise AuthenticationFailure("BSF rspauth does not verify", reason="rspauth")
                self.applet.gba_commit(info.b_tid, info.expires_at)
                return info
        raise AuthenticationFailure(f"BSF answered {response.status_code}",
                                    reason="ub-refused")

    # -- EST -------------------------------------------------------------------

    def _est(self, label: str, op: str) -> str:
        return f"/.well-known/est/{label}/{op}"

    def cacerts(self, label: str) -> list[x509.Certificate]:
        response = self._http.get(self.base_url + self._est(label, "cacerts"))
        self._check(response)
        return parse_certs_only(response.content)

    def _check(self, response: HttpAnswer) -> None:
        if response.status_code != 200:
            raise EnrolmentRefused(f"EST server answered {response.status_code}: "
                                   f"{response.text.strip()[:200]}",
                                   status=response.status_code)

    def _digest_post(self, path: str, kind: str, content: bytes,
                     headers: dict[str, str]) -> HttpAnswer:
        response = self._http.post(self.base_url + path, content=content, headers=headers)
        if response.status_code != 401:
            return response
        challenge = parse_digest(response.headers.get("WWW-Authenticate", ""))
        cnonce = base64.b64encode(os.urandom(12)).decode()
        now = self._clock()
        username = self.applet.naf_username(kind, self.naf_id, now)
        params = {"username": username, "realm": challenge["realm"],
                  "nonce": challenge["nonce"], "uri": path,
                  "algorithm": challenge.get("algorithm", "SHA-256"), "qop": "auth",
                  "nc": "00000001", "cnonce": cnonce}
        params["response"] = self.applet.naf_digest(
            kind, self.naf_id, now, algorithm=params["algorithm"], realm=challenge["realm"],
            method="POST", uri=path, nonce=challenge["nonce"], nc="00000001", cnonce=cnonce,
            qop="auth")
        return self._http.post(self.base_url + path, content=content,
                               headers={**headers, "Authorization": format_credentials(params)})

    def _until_issued(self, send: Callable[[], HttpAnswer]) -> HttpAnswer:
        """RFC 7030 §4.2.3: while the server answers 202, send the same request again
        after its Retry-After (10 s if absent), for at most :attr:`max_wait` seconds."""
        waited = 0.0
        response = send()
        while response.status_code == 202:
            try:
                after = max(1.0, float(response.headers.get("Retry-After", "10")))
            except ValueError:
                after = 10.0
            if waited + after > self.max_wait:
                raise EnrolmentRefused(f"EST server still processing the request after "
                                       f"{waited:.0f} s", status=202)
            self.sleep(after)
            waited += after
            response = send()
        return response

    def enroll(self, label: str, key_label: str, *, key_type: str = "p256", kind: str = "gba",
               did: str | None = None, existing_key: bool = False) -> x509.Certificate:
        """Generate a key pair in the SIM (or use the one already in ``key_label``), send
        its bound CSR, return the certificate (waiting out 202 answers)."""
        if not existing_key and key_type == "p256":
            self.applet.generate_p256(key_label)
        elif not existing_key:
            self.applet.generate_key(key_label)
        sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(did)] if did else []
        csr = self.applet.csr(key_label, kind, self.naf_id, self._clock(),
                              common_name=self.applet.element_id, sans=sans)
        body = base64.encodebytes(csr.public_bytes(serialization.Encoding.DER))
        response = self._until_issued(lambda: self._digest_post(
            self._est(label, "simpleenroll"), kind, body,
            {"Content-Type": "application/pkcs10", "Content-Transfer-Encoding": "base64"}))
        self._check(response)
        return parse_certs_only(response.content)[0]

    def renew_if_due(self, label: str, key_label: str, current: x509.Certificate, *,
                     fraction: float = 2 / 3) -> x509.Certificate:
        """Re-enrol once ``fraction`` of the certificate's lifetime has passed (else keep it).

        Short-lived tier-2 certificates stay valid this way without an operator: a
        device calls this on each connection attempt or on a timer.
        """
        if not 0 < fraction < 1:
            raise ValueError("fraction is between 0 and 1")
        start, end = current.not_valid_before_utc, current.not_valid_after_utc
        if self._clock() < start + (end - start) * fraction:
            return current
        return self.reenroll(label, key_label, current)

    def reenroll(self, label: str, key_label: str, current: x509.Certificate,
                 ) -> x509.Certificate:
        """simplereenroll with the same key, authenticated by ``current`` over TLS."""
        kind = "gba" if self.applet.b_tid else "akma"
        # RFC 7030 §4.2.2: the subject stays the current certificate's.
        csr = self.applet.csr(key_label, kind, self.naf_id, self._clock(),
                              common_name=self.applet.element_id, subject=current.subject)
        body = base64.encodebytes(csr.public_bytes(serialization.Encoding.DER))
        with self._client(self._context(current, key_label)) as client:
            response = self._until_issued(lambda: client.post(
                self.base_url + self._est(label, "simplereenroll"), content=body,
                headers={"Content-Type": "application/pkcs10",
                         "Content-Transfer-Encoding": "base64"}))
        self._check(response)
        return parse_certs_only(response.content)[0]

