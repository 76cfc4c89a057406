"""JSON Canonicalization Scheme (RFC 8785) through the ``rfc8785`` package.

Any value JCS cannot represent (NaN, infinities, integers beyond IEEE 754
double precision, non-string keys) becomes ``malformed``.
"""

from __future__ import annotations

from typing import Any

import rfc8785

from simtrust.identity._errors import VerificationFailed

__all__ = ["canonicalize"]


def canonicalize(value: Any) -> bytes:
    try:
        out: bytes = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as exc:
        raise VerificationFailed("malformed", f"not canonicalizable JSON: {exc}") from exc
    return out
