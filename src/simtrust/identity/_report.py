"""Verification reports for interfaces (VC-API responses, ``simtrust vc verify``).

Library verifiers raise; interfaces must answer ``{"verified": false, "errors":
[...]}`` instead. :func:`verification_report` is the one place that turns a
raised verification failure (or undecodable input) into that answer, so no
exception escapes to the user and no caller can forget to check a bool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simtrust.errors import CryptoError, InvalidInput
from simtrust.identity._credentials import VerifiedCredential, VerifiedPresentation
from simtrust.identity._errors import VerificationFailed

__all__ = ["verification_report"]


def verification_report(run: Callable[[], object]) -> dict[str, Any]:
    """Run a verifier; report ``verified``, ``errors`` and what was checked."""
    try:
        result = run()
    except VerificationFailed as exc:
        return {"verified": False, "errors": [exc.to_problem()], "warnings": []}
    except (InvalidInput, CryptoError) as exc:
        return {
            "verified": False,
            "errors": [{"reason": "malformed", "detail": exc.detail}],
            "warnings": [],
        }
    report: dict[str, Any] = {"verified": True, "errors": [], "warnings": []}
    if isinstance(result, VerifiedCredential):
        report["checks"] = _checks(result)
        report["issuer"] = result.issuer
        report["status"] = [s.to_json() for s in result.status]
    elif isinstance(result, VerifiedPresentation):
        report["checks"] = ["proof", "holder"]
        report["holder"] = result.holder
        report["credentialResults"] = [
            {"issuer": c.issuer, "checks": _checks(c), "status": [s.to_json() for s in c.status]}
            for c in result.credentials
        ]
    return report


def _checks(result: VerifiedCredential) -> list[str]:
    checks = ["proof", "validityPeriod"]
    if result.status:
        checks.append("credentialStatus")
    return checks
