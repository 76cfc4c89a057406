"""Status list anchors: the ledger records which status list credential is current.

An anchor names a status list credential, its issuer and the SHA-256 of its
JCS form, secured by the issuer with an ``eddsa-jcs-2022`` proof
(``assertionMethod``). Verifiers that read the latest anchored digest detect
an issuer showing different lists to different verifiers (DESIGN "Identity":
the ledger holds status lists).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

from simtrust.identity._dataintegrity import add_proof, verify_proofs
from simtrust.identity._errors import VerificationFailed
from simtrust.identity._jcs import canonicalize
from simtrust.identity._keys import Signer
from simtrust.identity._resolver import DidResolver

__all__ = ["check_status_anchor", "credential_digest", "status_list_anchor"]

_HEX64 = re.compile(r"[0-9a-f]{64}")


def credential_digest(credential: dict[str, Any]) -> str:
    return hashlib.sha256(canonicalize(credential)).hexdigest()


def status_list_anchor(credential: dict[str, Any], signer: Signer, now: datetime) -> dict[str, Any]:
    """The signed anchor body for a published status list credential."""
    body = {
        "type": "StatusListAnchor",
        "statusListCredential": credential["id"],
        "issuer": signer.controller,
        "digest": credential_digest(credential),
    }
    return add_proof(body, signer, created=now)


def check_status_anchor(
    body: dict[str, Any], *, resolver: DidResolver, now: datetime
) -> tuple[str, str, str]:
    """(list id, issuer, digest) of a valid anchor; :class:`VerificationFailed` otherwise."""
    if set(body) != {"type", "statusListCredential", "issuer", "digest", "proof"}:
        raise VerificationFailed("malformed", "a status list anchor has exactly its five members")
    list_id, issuer, digest = body["statusListCredential"], body["issuer"], body["digest"]
    if body["type"] != "StatusListAnchor" or not all(
        isinstance(v, str) and 0 < len(v) <= 512 for v in (list_id, issuer, digest)
    ):
        raise VerificationFailed("malformed", "anchor members are short strings")
    if not _HEX64.fullmatch(digest):
        raise VerificationFailed("malformed", "digest is 64 lowercase hex digits")
    proofs = verify_proofs(body, resolver=resolver, now=now)
    if not any(p.controller == issuer for p in proofs):
        raise VerificationFailed("key-not-authorized", "the anchor is not signed by the issuer")
    return str(list_id), str(issuer), str(digest)
