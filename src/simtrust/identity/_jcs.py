"""JSON Canonicalization Scheme (RFC 8785) with a fast path for float-free documents.

Credentials, proofs and DID operations hold strings, booleans, nulls, small
integers, objects and arrays. For those, RFC 8785 output equals
``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``:
the same escapes (§3.2.2.2: ``\\" \\\\ \\b \\f \\n \\r \\t``, other controls as
lower-case ``\\u00xx``), integers within ±2^53 print alike (§3.2.2.3), and
code-point key order equals UTF-16 order (§3.2.3) when no key holds a
character beyond U+FFFF. Anything else (floats, larger integers, astral keys,
lone surrogates) goes through the ``rfc8785`` package. The fast path is checked
against ``rfc8785`` by property tests and against the RFC's test data.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from simtrust.identity._errors import VerificationFailed

__all__ = ["canonicalize"]

_SAFE = 2**53
_encode = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


def _plain(value: Any) -> bool:
    """True when every node is str/bool/None/safe int/dict (BMP keys)/list."""
    stack = [value]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is str or kind is bool or node is None:
            continue
        if kind is int:
            if -_SAFE <= node <= _SAFE:
                continue
            return False
        if kind is dict:
            for key, item in node.items():
                if type(key) is not str or not (key.isascii() or max(key) <= "\uffff"):
                    return False
                stack.append(item)
            continue
        if kind is list:
            stack.extend(node)
            continue
        return False
    return True


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def canonicalize(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``value``; ``malformed`` if it has none."""
    try:
        text = _encode(value) if _plain(value) else None
        if text is not None and text.isascii():
            return text.encode("ascii")
        if text is not None and not _has_surrogate(text):
            return text.encode("utf-8")
        # Floats, large integers, astral keys or lone surrogates: the reference library.
        out: bytes = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as exc:
        raise VerificationFailed("malformed", f"not canonicalizable JSON: {exc}") from exc
    return out
