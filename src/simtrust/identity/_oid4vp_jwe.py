"""Encrypted OpenID4VP responses: ``direct_post.jwt`` (OpenID4VP 1.0 §8.3, §8.3.1).

For a request made with ``direct_post.jwt`` the verifier makes a fresh P-256
key for that request alone and publishes its public half in the request
object's ``client_metadata.jwks`` (``use`` ``enc``, ``alg`` ``ECDH-ES``) with
``encrypted_response_enc_values_supported`` (A128GCM, A256GCM). The wallet
posts ``response=<JWE>``: a compact JWE (RFC 7516 §7.1) with ``alg``
``ECDH-ES`` direct key agreement (RFC 7518 §4.6) whose plaintext is the JSON
authorization response (``vp_token``, ``state``). The private key is sealed
under the keyring in the request's row and used once; decryption is joserfc's.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from simtrust.identity._errors import ProtocolError

__all__ = ["RESPONSE_ENC_VALUES", "new_response_key", "open_response"]

RESPONSE_ENC_VALUES = ("A128GCM", "A256GCM")
_ALG = "ECDH-ES"
_MAX_JWE = 1024 * 1024


def new_response_key() -> tuple[str, dict[str, Any]]:
    """A request's encryption key: (private JWK as JSON, public JWK for ``client_metadata``)."""
    key = ECKey.generate_key("P-256")
    kid = secrets.token_urlsafe(12)
    public = {**key.as_dict(private=False), "kid": kid, "use": "enc", "alg": _ALG}
    private = json.dumps({**key.as_dict(private=True), "kid": kid})
    return private, public


def open_response(response: object, private_jwk: str) -> dict[str, str]:
    """The authorization response inside a ``direct_post.jwt`` JWE, as form values.

    Raises ProtocolError ``invalid_request`` for anything that is not a JWE for this
    request's key with an allowed ``alg``/``enc`` and a JSON object inside.
    """
    if not isinstance(response, str) or not response or len(response) > _MAX_JWE:
        raise ProtocolError("invalid_request", "direct_post.jwt carries the response JWE")
    if response.count(".") != 4:
        raise ProtocolError("invalid_request", "the response is not a compact JWE")
    key = ECKey.import_key(json.loads(private_jwk))
    try:
        opened = jwe.decrypt_compact(response, key, algorithms=[_ALG, *RESPONSE_ENC_VALUES])
        payload = json.loads(opened.plaintext or b"")
    except (JoseError, ValueError, TypeError, KeyError, RecursionError) as exc:
        raise ProtocolError("invalid_request", "the response JWE does not decrypt with this"
                            " request's key (ECDH-ES, A128GCM/A256GCM)") from exc  # fmt: skip
    if not isinstance(payload, dict):
        raise ProtocolError("invalid_request", "the encrypted response is a JSON object")
    form: dict[str, str] = {}
    for name, value in payload.items():
        # §8.1: vp_token is a JSON object (DCQL) inside the JWE; the form carries it as text.
        form[str(name)] = value if isinstance(value, str) else json.dumps(value)
    return form
