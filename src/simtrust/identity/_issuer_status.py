"""The platform issuer's status lists (W3C Bitstring Status List v1.0), created and kept current.

One list per status purpose (§2.1: revocation, suspension, message), created
on first use, with lists of ``statusSize`` above 1 or with ``statusMessage``
values kept apart per size and message set. Credentials the platform signs
with its P-256 key (``ecdsa-rdfc-2019``/``ecdsa-jcs-2019`` as its did:web) get
lists of their own, issued by that did:web and secured with ``ecdsa-rdfc-2019``
by the same key (§3.2 reads the list's issuer against the credential's), so
the EdDSA and ECDSA credentials are revoked and checked alike. A caller's status entry is
checked (§2.1) and its index reserved before issue; every status change
republishes the list, signed by the issuer, and anchors it on the ledger as an
``identity`` payload (docs/identity.md) so a verifier can tell a stale copy.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from simtrust.errors import InvalidInput, NotFound
from simtrust.identity._didsimtrust import (
    IDENTITY_PAYLOAD_TYPE,
    identity_payload,
)
from simtrust.identity._ecdsa import EcdsaP256Signer
from simtrust.identity._errors import VerificationFailed
from simtrust.identity._jcs import canonicalize
from simtrust.identity._keys import Signer
from simtrust.identity._offers import issue_refusal
from simtrust.identity._secure_element import (
    SecureElementSigner,
)
from simtrust.identity._statusanchor import status_list_anchor
from simtrust.identity._statuslist import (
    STATUS_PURPOSES,
    StatusListRegistry,
    decode_status_list,
    validate_status_entry,
)
from simtrust.identity._tokenstatus import TOKEN_BITS, status_list_token

__all__ = ["IssuerStatusLists"]


class IssuerStatusLists:
    """The issuer's status lists (``IdentityService.status_lists``).

    ``epoch`` counts the status changes this process made (capability caches key
    on it); ``issuer`` is the platform issuer, ``submit`` puts a payload on the ledger.
    """

    def __init__(self, registry: StatusListRegistry, *, network: str, public_url: str,
                 issuer: Callable[[], SecureElementSigner], now: Callable[[], datetime],
                 submit: Callable[[str, bytes], bytes],
                 p256: Callable[[], EcdsaP256Signer] | None = None) -> None:
        """``p256`` is the platform's P-256 signer (its did:web), for ECDSA credentials."""
        self._registry = registry
        self._p256 = p256
        self._network = network
        self._public_url = public_url
        self._issuer = issuer
        self._now = now
        self._submit = submit
        # Serialises first-use creation of a list.
        self._lock = threading.RLock()
        self.epoch = 0

    def __repr__(self) -> str:
        return f"IssuerStatusLists({self._network!r})"

    def status_list(
        self,
        purpose: str,
        status_size: int = 1,
        messages: list[dict[str, str]] | None = None,
        *,
        ecdsa: bool = False,
    ) -> str:
        """The issuer's current status list of ``purpose`` (created on first use).

        Lists of ``statusSize`` above 1 or with ``statusMessage`` values are
        kept apart per size and message set (their path carries both); ``ecdsa``
        names the lists of the P-256 did:web issuer (path ``…/ecdsa/…``).
        """
        if purpose not in STATUS_PURPOSES:
            raise InvalidInput(f"statusPurpose must be one of {STATUS_PURPOSES}")
        signer: Signer = self._signer(ecdsa)
        base = f"{self._network}/ecdsa" if ecdsa else self._network
        path = f"{base}/{purpose}/1"
        if status_size != 1 or messages:
            digest = hashlib.sha256(canonicalize(messages or [])).hexdigest()[:12]
            path = f"{base}/{purpose}-{status_size}-{digest}/1"
        list_id = self.url(path)
        with self._lock:
            if (list_id, purpose) in self._registry.lists(signer.controller):
                return list_id
            published = self._registry.create(
                list_id,
                issuer=signer.controller,
                purpose=purpose,
                signer=signer,
                now=self._now(),
                status_size=status_size,
                messages=messages,
            )
            self._anchor(published)
        return list_id

    def _signer(self, ecdsa: bool) -> Signer:
        if not ecdsa:
            return self._issuer()
        if self._p256 is None:
            raise InvalidInput("this issuer has no P-256 key for ECDSA status lists")
        return self._p256()

    def _list_signer(self, list_id: str) -> Signer:
        """The key that signed ``list_id`` (its proof's verification method) signs it again."""
        proof = self._registry.published(list_id).get("proof")
        method = proof.get("verificationMethod") if isinstance(proof, dict) else None
        if self._p256 is not None:
            p256 = self._p256()
            if method == p256.verification_method:
                return p256
        return self._issuer()

    def url(self, path: str) -> str:
        """The https URL under which ``GET /credentials/status/{path}`` serves a list."""
        return f"{self._public_url}/credentials/status/{path}"

    def _anchor(self, published: dict[str, Any]) -> None:
        # Anchored by the did:simtrust, which every member resolves from the ledger; the
        # anchor binds the list's id and digest whoever issued the list.
        body = status_list_anchor(published, self._issuer(), self._now())
        self._submit(IDENTITY_PAYLOAD_TYPE, identity_payload("status-list", body))

    def claim(self, entry: object, credential_id: object, *, ecdsa: bool = False) -> None:
        """Validate a caller's status entry (Bitstring Status List §2.1) and reserve its index;
        the list must be one of the credential's issuer (``ecdsa``: the P-256 did:web)."""
        try:
            validate_status_entry(entry)
        except VerificationFailed as exc:
            raise issue_refusal(exc) from exc
        assert isinstance(entry, dict)
        if entry.get("type") != "BitstringStatusListEntry":
            return
        list_id = str(entry["statusListCredential"])
        signer = self._signer(ecdsa)
        owned = {list_id: purpose for list_id, purpose in self._registry.lists(signer.controller)
                 if self._list_signer(list_id).verification_method
                 == signer.verification_method}
        rule = "Bitstring Status List §2.1"
        if list_id not in owned:
            raise InvalidInput(
                f"statusListCredential {list_id} is not a status list of this issuer", rule=rule
            )
        if owned[list_id] != entry["statusPurpose"]:
            raise InvalidInput(
                f"status list {list_id} has purpose {owned[list_id]}, not {entry['statusPurpose']}",
                rule=rule,
            )
        self._registry.claim(
            list_id,
            int(str(entry["statusListIndex"])),
            credential_id=credential_id if isinstance(credential_id, str) else None,
        )

    def set_status(self, entry: dict[str, Any], value: bool | int) -> dict[str, Any]:
        """Set (revoke/suspend, or a message status) the entry's status; republish the list."""
        url, index = entry.get("statusListCredential"), entry.get("statusListIndex")
        if (not isinstance(url, str) or not isinstance(index, str)
                or not (index.isascii() and index.isdigit())):
            raise InvalidInput("a status entry has statusListCredential and statusListIndex")
        signer = self._list_signer(url)
        published = self._registry.set_status(url, int(index), value, signer=signer,
                                              now=self._now())
        self.epoch += 1
        self._anchor(published)
        return published

    def update_status(self, credential_id: str, purpose: str, value: bool | int) -> dict[str, Any]:
        """Set or clear ``credential_id``'s bit in its ``purpose`` list (VC-API status update)."""
        for list_id, index, list_purpose in self._registry.entries_for(credential_id):
            if list_purpose == purpose:
                return self.set_status(
                    {"statusListCredential": list_id, "statusListIndex": str(index)}, value
                )
        raise NotFound(f"credential {credential_id} has no {purpose} status entry")

    def published(self, path: str) -> dict[str, Any]:
        """The list served at ``/credentials/status/{path}`` (its id is the public URL).

        Lists created before URLs were used keep their URN ids and are served by them.
        """
        try:
            return self._registry.published(self.url(path))
        except NotFound:
            if path.startswith("urn:"):
                return self._registry.published(path)
            raise

    def token(self, path: str) -> str:
        """The list at ``path`` as an IETF Status List Token (draft-ietf-oauth-status-list
        §5.1) of ``bits`` = its statusSize (1, 2, 4 or 8), signed now by the platform issuer."""
        return self._token(self.published(path))

    def token_for(self, uri: str) -> str:
        """The Status List Token of the list whose id is ``uri`` (a ``status`` reference)."""
        return self._token(self._registry.published(uri))

    def _token(self, published: dict[str, Any]) -> str:
        issuer = self._issuer()
        subject = published.get("credentialSubject", {})
        size = self._registry.status_size(str(published.get("id")))
        if published.get("issuer") != issuer.controller or size not in TOKEN_BITS:
            raise NotFound("this status list is not served as a Status List Token")
        return status_list_token(uri=str(published["id"]), signer=issuer, now=self._now(),
                                 bitstring=decode_status_list(subject.get("encodedList")),
                                 bits=size)
