"""OAuth 2.0 client credentials access tokens for the API (RFC 6749 §4.4, RFC 6750).

The W3C VC API suggests OAuth 2.0 client credentials for its endpoints. A
client authenticates at ``POST /oauth2/token`` with its API key: client id =
the key's id, client secret = the API key itself (HTTP Basic, §2.3.1, or the
form body). The access token is opaque to clients: the claims (key id,
expiry) sealed with the runtime keyring (AES-GCM envelope encryption, a
fixed associated-data label), so it cannot be forged or read, needs no
table, and rotates with the keyring. Each use re-checks the API key: a
revoked key's tokens stop working at once. API keys remain accepted as
bearer tokens too (one token type among two).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from simtrust.crypto import Keyring
from simtrust.errors import AuthenticationRequired, CryptoError, DecodeError, NotFound
from simtrust.identity import multibase_decode, multibase_encode
from simtrust.store import ApiKey, TenantStore

__all__ = ["ACCESS_TOKEN_PREFIX", "ACCESS_TOKEN_SECONDS", "AccessToken", "mint", "redeem"]

ACCESS_TOKEN_PREFIX = "sta_"  # noqa: S105 - a token-type prefix, not a secret
ACCESS_TOKEN_SECONDS = 3600
_AAD = b"simtrust/oauth2/access-token/v1"


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_in: int

    def __repr__(self) -> str:
        return f"AccessToken(expires_in={self.expires_in})"


def mint(keyring: Keyring, key: ApiKey, *, now: float | None = None) -> AccessToken:
    """An access token for ``key``, valid ``ACCESS_TOKEN_SECONDS``."""
    issued = int(time.time() if now is None else now)
    claims = {"kid": key.id, "iat": issued, "exp": issued + ACCESS_TOKEN_SECONDS}
    sealed = keyring.seal(json.dumps(claims, separators=(",", ":")).encode(), _AAD)
    return AccessToken(
        ACCESS_TOKEN_PREFIX + multibase_encode(sealed, "u")[1:], ACCESS_TOKEN_SECONDS
    )


def redeem(
    keyring: Keyring, tenants: TenantStore, token: str, *, now: float | None = None
) -> ApiKey:
    """The live API key an access token was issued to; AuthenticationRequired otherwise."""
    if not token.startswith(ACCESS_TOKEN_PREFIX) or len(token) > 1024:
        raise AuthenticationRequired("malformed access token")
    try:
        claims = json.loads(keyring.open(multibase_decode("u" + token[4:]), _AAD))
    except (CryptoError, DecodeError, ValueError) as exc:
        raise AuthenticationRequired("invalid access token") from exc
    if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int):
        raise AuthenticationRequired("invalid access token")
    if claims["exp"] <= (time.time() if now is None else now):
        raise AuthenticationRequired("access token expired")
    try:
        key = tenants.get_key(str(claims.get("kid")))
    except NotFound as exc:
        raise AuthenticationRequired("access token of an unknown API key") from exc
    if key.revoked_at is not None:
        raise AuthenticationRequired("API key revoked")
    return key
