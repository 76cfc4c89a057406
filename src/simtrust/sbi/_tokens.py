"""OAuth2 access tokens of the SBI (TS 33.501 §13.4.1.1, TS 29.510 §6.3.5.2.4).

An NF consumer (the AUSF) presents ``Authorization: Bearer <JWS>``, a token
the NRF issued and signed (Nnrf_AccessToken). The UDM checks the signature
with the NRF's public key (ES256 or RS256, verified by joserfc), then the
AccessTokenClaims: ``iss`` is the NRF's instance id when configured, ``aud``
names this UDM (its NF instance id) or its NF type ``UDM``, ``scope`` lists
``nudm-ueau``, and ``exp`` is in the future. A missing or bad token is 401
(``WWW-Authenticate: Bearer error="invalid_token"``, RFC 6750 §3.1); a good
token without the scope is 403 ``insufficient_scope``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from simtrust.errors import AuthenticationRequired, PermissionDenied

__all__ = ["TokenVerifier"]

SCOPE = "nudm-ueau"


class TokenVerifier:
    """Verifies NRF-issued access tokens for one UDM instance."""

    __slots__ = ("_audiences", "_clock", "_issuer", "_key")

    def __init__(
        self, nrf_public_key_pem: bytes, udm_instance_id: str, *, issuer: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key: ECKey | RSAKey = (
            RSAKey.import_key(nrf_public_key_pem) if _is_rsa(nrf_public_key_pem)
            else ECKey.import_key(nrf_public_key_pem)
        )
        self._audiences = {udm_instance_id, "UDM"}
        self._issuer = issuer
        self._clock = clock

    def __repr__(self) -> str:
        return f"TokenVerifier(issuer={self._issuer!r})"

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """The token's claims; raises AuthenticationRequired or PermissionDenied."""
        if not authorization or not authorization.startswith("Bearer "):
            raise AuthenticationRequired("an OAuth2 access token is required",
                                         cause="invalid_token")
        try:
            token = jwt.decode(authorization[7:].strip(), self._key,
                               algorithms=["ES256", "RS256"])
        except (JoseError, ValueError) as exc:
            raise AuthenticationRequired("the access token does not verify",
                                         cause="invalid_token") from exc
        claims = token.claims
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp <= self._clock():
            raise AuthenticationRequired("the access token has expired", cause="invalid_token")
        if self._issuer is not None and claims.get("iss") != self._issuer:
            raise AuthenticationRequired("the access token is not from the NRF",
                                         cause="invalid_token")
        aud = claims.get("aud")
        audiences = set(aud) if isinstance(aud, list) else {aud}
        if not audiences & self._audiences:
            raise AuthenticationRequired("the access token is for another NF",
                                         cause="invalid_token")
        scope = claims.get("scope")
        if not isinstance(scope, str) or SCOPE not in scope.split():
            raise PermissionDenied("the access token lacks the nudm-ueau scope",
                                   cause="insufficient_scope")
        return dict(claims)


def _is_rsa(pem: bytes) -> bool:

    try:
        return isinstance(load_pem_public_key(pem), rsa.RSAPublicKey)
    except ValueError:
        return False
