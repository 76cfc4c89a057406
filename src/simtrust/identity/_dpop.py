"""DPoP proofs (RFC 9449): sender-constrained tokens of the OpenID4VCI authorization server.

A DPoP proof is a JWS in the ``DPoP`` request header (§4.1, §4.2): ``typ``
``dpop+jwt``, ``alg`` ES256 or EdDSA, the public key in ``jwk`` (never
private material), and the claims ``jti``, ``htm``, ``htu``, ``iat``, the
server's ``nonce`` (§8) and, with an access token, ``ath`` (§4.3, §7.1). Every
check of §4.3 is made here: one proof in one header, the signature with the
embedded key, ``htm``/``htu`` against the request (query and fragment
ignored, scheme and host compared case-insensitively, default ports
dropped), ``iat`` within five minutes, ``jti`` single use across workers
(a digest row per proof, kept while its nonce could still be accepted), the
nonce, and ``ath`` = base64url(SHA-256(access token)).

Server nonces (§8, §9) are required at the token and credential endpoints:
a nonce is the issue time sealed under the keyring (AES-GCM with associated
data), so any worker can check one without a stored row; it lives five
minutes. A missing or stale nonce is ``use_dpop_nonce`` with a fresh
``DPoP-Nonce``. The key's identity is its JWK SHA-256 thumbprint (RFC 7638
§3), the ``jkt`` access and refresh tokens are bound to (§6).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from simtrust.crypto import Keyring
from simtrust.errors import DecodeError, SimtrustError
from simtrust.identity._errors import ProtocolError, VerificationFailed
from simtrust.identity._jws import holder_jwk, parse_jws, verify_jws_jwk
from simtrust.identity._multibase import b64url_decode, b64url_encode
from simtrust.identity._time import format_datetime
from simtrust.store import Database

__all__ = ["DPOP_ALGS", "DpopProofs", "access_token_hash", "jwk_thumbprint", "normalize_htu"]

#: RFC 9449 §5.1 ``dpop_signing_alg_values_supported``: what holders sign with.
DPOP_ALGS = ("ES256", "EdDSA")
DPOP_TYP = "dpop+jwt"
_NONCE_LIFETIME = timedelta(minutes=5)
_IAT_WINDOW = timedelta(minutes=5)
_AAD = b"simtrust:dpop-nonce:v1"
_MAX_PROOF = 8192
_MAX_JTI = 256


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 §3: SHA-256 over the required members in lexicographic order, base64url."""
    members = ("crv", "kty", "x") if jwk["kty"] == "OKP" else ("crv", "kty", "x", "y")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def access_token_hash(token: str) -> str:
    """``ath`` (RFC 9449 §4.2): base64url of SHA-256 of the ASCII access token."""
    return b64url_encode(hashlib.sha256(token.encode("ascii", "replace")).digest())


def normalize_htu(url: str) -> str:
    """The URI compared as ``htu``: no query or fragment, lowercase scheme and host,
    no default port (RFC 9449 §4.3 item 9, RFC 3986 §6.2.2-§6.2.3)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ProtocolError("invalid_dpop_proof", "htu is not a URI") from exc
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"https": 443, "http": 80}.get(scheme)
    netloc = host if port is None or port == default else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


class DpopProofs:
    """Checks DPoP proofs and makes server nonces for one authorization server."""

    __slots__ = ("_db", "_keyring")

    def __init__(self, db: Database, keyring: Keyring) -> None:
        self._db = db
        self._keyring = keyring

    def nonce(self, *, now: datetime) -> str:
        """A fresh server nonce (RFC 9449 §8): the time, sealed; any worker can check it."""
        sealed = self._keyring.seal(str(int(now.timestamp())).encode("ascii"), _AAD)
        return b64url_encode(sealed)

    def _nonce_fresh(self, value: object, now: datetime) -> bool:
        if not isinstance(value, str) or not value or len(value) > 512:
            return False
        try:
            issued = int(self._keyring.open(b64url_decode(value), _AAD).decode("ascii"))
        except (SimtrustError, DecodeError, ValueError, UnicodeDecodeError):
            return False
        age = now.timestamp() - issued
        return -60 <= age <= _NONCE_LIFETIME.total_seconds()

    def check(self, proof: str | None, *, method: str, url: str, now: datetime,
              access_token: str | None = None, require_nonce: bool = True) -> str:  # fmt: skip
        """Check one DPoP proof of a request; return its key's thumbprint (``jkt``).

        Raises ProtocolError ``invalid_dpop_proof`` (§4.3, §7.1) or
        ``use_dpop_nonce`` (§8; not asked at PAR: ``require_nonce=False``) with a 400
        status; the caller maps it to its endpoint's response (token endpoint JSON, or a
        401 ``WWW-Authenticate``).
        """
        if not proof:
            raise ProtocolError("invalid_dpop_proof", "a DPoP proof header is required")
        if len(proof) > _MAX_PROOF or "," in proof:
            raise ProtocolError("invalid_dpop_proof", "one DPoP proof, at most 8 KiB")
        try:
            decoded = parse_jws(proof.strip(), DPOP_ALGS)
            header, claims = decoded.header, decoded.payload
            if header.get("typ") != DPOP_TYP:
                raise VerificationFailed("malformed", f"DPoP typ must be {DPOP_TYP}")
            public = holder_jwk(header.get("jwk"))
            verify_jws_jwk(decoded, public)
        except VerificationFailed as exc:
            raise ProtocolError("invalid_dpop_proof", f"DPoP proof: {exc.detail}") from exc
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI:
            raise ProtocolError("invalid_dpop_proof", "DPoP jti is a string of 1-256 characters")
        if claims.get("htm") != method.upper():
            raise ProtocolError("invalid_dpop_proof", "DPoP htm does not match the request method")
        htu = claims.get("htu")
        if not isinstance(htu, str) or normalize_htu(htu) != normalize_htu(url):
            raise ProtocolError("invalid_dpop_proof", "DPoP htu does not match the request URI")
        iat = claims.get("iat")
        if not isinstance(iat, int | float) or isinstance(iat, bool):
            raise ProtocolError("invalid_dpop_proof", "DPoP iat is required")
        if abs(now.timestamp() - iat) > _IAT_WINDOW.total_seconds():
            raise ProtocolError("invalid_dpop_proof", "DPoP iat is too far from now")
        if access_token is not None:
            if claims.get("ath") != access_token_hash(access_token):
                raise ProtocolError("invalid_dpop_proof",
                                    "DPoP ath is not the hash of the access token")  # fmt: skip
        elif "ath" in claims:
            raise ProtocolError("invalid_dpop_proof", "DPoP ath without an access token")
        nonce = claims.get("nonce")
        if (require_nonce or nonce is not None) and not self._nonce_fresh(nonce, now):
            raise ProtocolError("use_dpop_nonce", "use the server's DPoP-Nonce in the proof")
        self.spend_jti(jti, jwk_thumbprint(public), now)
        return jwk_thumbprint(public)

    def spend_jti(self, jti: str, jkt: str, now: datetime) -> None:
        """§11.1: a proof is accepted once (per key: two keys may pick the same jti)."""
        digest = hashlib.sha256(f"{jkt}:{jti}".encode()).hexdigest()
        keep = format_datetime(now + _NONCE_LIFETIME + _IAT_WINDOW)
        with self._db.transaction():
            self._db.execute("DELETE FROM identity_dpop_jti WHERE expires < ?",
                             (format_datetime(now),))  # fmt: skip
            taken = self._db.execute(
                "INSERT INTO identity_dpop_jti (jti_hash, expires) VALUES (?, ?)"
                " ON CONFLICT (jti_hash) DO NOTHING",
                (digest, keep),
            )
        if taken == 0:
            raise ProtocolError("invalid_dpop_proof", "this DPoP proof was already used (jti)")
