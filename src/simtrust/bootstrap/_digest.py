"""HTTP Digest access authentication: the parser, the response function, the headers.

RFC 7616 (which replaces RFC 2617) with the AKA variant of RFC 3310: for
``AKAv1-MD5`` the nonce carries base64(RAND ‖ AUTN ‖ server data), the password
is RES as a binary string (§3.3), and a synchronisation failure is reported in
the ``auts`` parameter with an empty password (§3.4). Used on Ub between the
device and the BSF (TS 33.220 §4.5.2, TS 24.109 §5.2) and towards the NAF with
B-TID / A-KID as user name and base64(Ks_NAF / K_AF) as password (TS 33.222 §5.3).
Written here because the stdlib and httpx implement only the client side and
neither speaks AKAv1 or auth-int; the tests check it against httpx's client.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping

from simtrust.errors import DecodeError

__all__ = [
    "ALGORITHMS",
    "MAX_HEADER",
    "check_response",
    "digest_response",
    "format_challenge",
    "format_credentials",
    "parse_digest",
]

#: Longest Authorization / WWW-Authenticate value accepted.
MAX_HEADER = 4096

ALGORITHMS: dict[str, Callable[[bytes], bytes]] = {
    "MD5": lambda b: hashlib.md5(b, usedforsecurity=False).hexdigest().encode(),
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest().encode(),
    "AKAv1-MD5": lambda b: hashlib.md5(b, usedforsecurity=False).hexdigest().encode(),
}

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # noqa: S105 - RFC 7230 token grammar
_QUOTED = r'"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\x09\x20-\x7e])*)"'
_PARAM = re.compile(rf"\s*({_TOKEN})\s*=\s*(?:({_TOKEN})|{_QUOTED})\s*")
_UNESCAPE = re.compile(r"\\(.)")
_TOKEN_RE = re.compile(_TOKEN)


def parse_digest(header: str) -> dict[str, str]:
    """The auth-params of a ``Digest`` challenge or credentials (RFC 7235 §2.1).

    Names are lower-cased; a duplicate name, a missing ``Digest`` scheme or any
    text outside the grammar raises :class:`DecodeError`.
    """
    if not isinstance(header, str) or len(header) > MAX_HEADER:
        raise DecodeError("Digest header is missing or too long")
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        raise DecodeError("authentication scheme is not Digest")
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if m is None:
            raise DecodeError("Digest parameters do not parse", at=pos)
        name = m.group(1).lower()
        if name in params:
            raise DecodeError(f"Digest parameter {name!r} repeated")
        value = m.group(2)
        if value is None:
            value = m.group(3)
            if "\\" in value:  # quoted-pair (RFC 9110 §5.6.4); most values have none
                value = _UNESCAPE.sub(r"\1", value)
        params[name] = value
        pos = m.end()
        if pos < len(rest):
            if rest[pos] != ",":
                raise DecodeError("Digest parameters must be separated by commas", at=pos)
            pos += 1
    if not params:
        raise DecodeError("Digest header has no parameters")
    return params


def digest_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: bytes,
    method: str,
    uri: str,
    nonce: str,
    nc: str,
    cnonce: str,
    qop: str,
    body: bytes = b"",
) -> str:
    """``response`` of RFC 7616 §3.4.1 (qop ``auth`` or ``auth-int``); hex, lower case."""
    h = ALGORITHMS.get(algorithm)
    if h is None:
        raise DecodeError(f"unsupported Digest algorithm {algorithm!r}")
    a1 = username.encode() + b":" + realm.encode() + b":" + password
    a2 = method.encode() + b":" + uri.encode()
    if qop == "auth-int":
        a2 += b":" + h(body)
    elif qop != "auth":
        raise DecodeError(f"unsupported Digest qop {qop!r}")
    data = b":".join((h(a1), nonce.encode(), nc.encode(), cnonce.encode(), qop.encode(), h(a2)))
    return h(data).decode()


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_challenge(
    realm: str, nonce: str, *, algorithm: str, qop: str, opaque: str | None = None,
    stale: bool = False,
) -> str:
    """A ``WWW-Authenticate`` value (RFC 7616 §3.3)."""
    parts = [f"realm={_quote(realm)}", f"nonce={_quote(nonce)}", f"qop={_quote(qop)}",
             f"algorithm={algorithm}"]
    if opaque is not None:
        parts.append(f"opaque={_quote(opaque)}")
    if stale:
        parts.append("stale=true")
    return "Digest " + ", ".join(parts)


_UNQUOTED = frozenset({"algorithm", "nc", "qop", "stale"})


def format_credentials(params: Mapping[str, str]) -> str:
    """An ``Authorization`` value (RFC 7616 §3.4) from its parameters."""
    return "Digest " + ", ".join(
        f"{k}={v}" if k in _UNQUOTED and _TOKEN_RE.fullmatch(v) else f"{k}={_quote(v)}"
        for k, v in params.items()
    )


def check_response(expected: str, presented: str) -> bool:
    """Constant-time comparison of two ``response`` values."""
    return hmac.compare_digest(expected.encode(), presented.encode())
