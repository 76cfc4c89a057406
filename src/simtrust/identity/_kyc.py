"""Reusable KYC: verify a subscriber once, let other operators rely on it.

The operator that ran KYC issues an SD-JWT credential (personal attributes
as selectively disclosable claims, bound to the subscriber's key, with a
Bitstring Status List entry for revocation). A second operator verifies a
key-bound presentation instead of repeating KYC, and each successful
verification leaves a :class:`VerificationReceipt` — hash of the presentation,
verifier, issuer, time; no personal data — anchored on the ledger so the
issuer can be paid per verification later (DESIGN "Identity").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from simtrust.errors import DecodeError, SimtrustError
from simtrust.identity._credentials import StatusChecker
from simtrust.identity._didsimtrust import IDENTITY_PAYLOAD_TYPE, identity_payload
from simtrust.identity._errors import VerificationFailed
from simtrust.identity._keys import Signer
from simtrust.identity._receipt import VerificationReceipt, receipt_hash
from simtrust.identity._resolver import DidResolver
from simtrust.identity._sdjwt import VerifiedSdJwt, issue_sd_jwt, verify_sd_jwt
from simtrust.identity._statuslist import StatusListRegistry
from simtrust.identity._time import format_datetime
from simtrust.store import Database

__all__ = [
    "KYC_ATTRIBUTES",
    "KYC_VCT",
    "KycIssuer",
    "KycVerifier",
    "ReceiptLedger",
    "VerificationReceipt",
    "receipt_hash",
]

KYC_VCT = "urn:simtrust:vct:kyc:1"
#: Personal attributes: always selectively disclosable, never on the ledger.
KYC_ATTRIBUTES = (
    "given_name",
    "family_name",
    "birthdate",
    "nationality",
    "address",
    "document_type",
    "document_number",
    "age_over_18",
)

#: Ledger submission: (payload type, payload body) → message id.
Submit = Callable[[str, bytes], bytes]


class ReceiptLedger:
    """Keeps receipts and anchors them through the ledger's payload submission.

    With ``submit`` the receipt goes to the ledger as an ``identity`` payload
    at once; the DID registry marks it anchored when that message is
    finalized. Without it the receipt waits (``pending``) for a submitter.
    """

    __slots__ = ("_db", "_submit")

    def __init__(self, db: Database, submit: Submit | None = None) -> None:
        self._db = db
        self._submit = submit

    def record(self, receipt: VerificationReceipt) -> str:
        digest = receipt.digest
        with self._db.transaction():
            if (
                self._db.query_one(
                    "SELECT 1 FROM identity_receipt WHERE receipt_hash = ?", (digest,)
                )
                is None
            ):
                self._db.execute(
                    "INSERT INTO identity_receipt (receipt_hash, presentation_hash, verifier,"
                    " issuer, verified_at, relying_party, credential_type)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        digest,
                        receipt.presentation_hash,
                        receipt.verifier,
                        receipt.issuer,
                        receipt.verified_at,
                        receipt.relying_party,
                        receipt.credential_type,
                    ),
                )
        self._send(receipt)
        return digest

    def _send(self, receipt: VerificationReceipt) -> bool:
        if self._submit is None:
            return False
        try:
            self._submit(
                IDENTITY_PAYLOAD_TYPE, identity_payload("verification-receipt", receipt.to_json())
            )
        except SimtrustError:
            # The verification stands; the receipt stays pending (rate limit, ledger
            # down) until anchor_pending() sends it again.
            return False
        return True

    def anchor_pending(self) -> int:
        """Submit every receipt not yet anchored; return how many were accepted."""
        return sum(self._send(receipt) for receipt in self.pending())

    def pending(self) -> list[VerificationReceipt]:
        rows = self._db.query(
            f"SELECT {_RECEIPT_COLUMNS} FROM identity_receipt"
            " WHERE message_id IS NULL ORDER BY verified_at"
        )
        return [_receipt(row) for row in rows]

    def anchored_in(self, digest: str) -> tuple[bytes, int] | None:
        """(ledger message id, finalized order) that anchored the receipt, if any."""
        row = self._db.query_one(
            "SELECT message_id, ledger_order FROM identity_receipt WHERE receipt_hash = ?",
            (digest,),
        )
        if row is None or row[0] is None:
            return None
        return bytes(row[0]), int(row[1])

    def for_issuer(self, issuer: str) -> list[VerificationReceipt]:
        rows = self._db.query(
            f"SELECT {_RECEIPT_COLUMNS} FROM identity_receipt"
            " WHERE issuer = ? ORDER BY verified_at",
            (issuer,),
        )
        return [_receipt(row) for row in rows]

    def between(self, start: datetime, end: datetime) -> list[tuple[VerificationReceipt, bool]]:
        """Receipts verified in ``[start, end)`` (RFC 3339 UTC), each with its anchoring."""
        rows = self._db.query(
            f"SELECT {_RECEIPT_COLUMNS}, message_id FROM identity_receipt"
            " WHERE verified_at >= ? AND verified_at < ? ORDER BY verified_at, receipt_hash",
            (format_datetime(start), format_datetime(end)),
        )
        return [(_receipt(row[:6]), row[6] is not None) for row in rows]


_RECEIPT_COLUMNS = (
    "presentation_hash, verifier, issuer, verified_at, relying_party, credential_type"
)


def _receipt(row: Sequence[Any]) -> VerificationReceipt:
    a, b, c, d, e, f = row
    return VerificationReceipt(
        str(a), str(b), str(c), str(d),
        None if e is None else str(e), None if f is None else str(f),
    )  # fmt: skip


class KycIssuer:
    """The operator that verified the subscriber: issues the KYC SD-JWT."""

    __slots__ = ("_list_id", "_signer", "_status")

    def __init__(self, signer: Signer, status: StatusListRegistry, revocation_list: str) -> None:
        self._signer = signer
        self._status = status
        self._list_id = revocation_list

    def issue(
        self,
        *,
        subject: str,
        holder_key: bytes | dict[str, Any],
        attributes: dict[str, Any],
        level: str,
        now: datetime,
    ) -> tuple[str, dict[str, Any]]:
        """(SD-JWT, status entry): every personal attribute is selectively disclosable."""
        unknown = set(attributes) - set(KYC_ATTRIBUTES)
        if unknown:
            raise DecodeError(f"unknown KYC attributes {sorted(unknown)}")
        entry = self._status.allocate(self._list_id, credential_id=subject)
        claims: dict[str, Any] = {
            "sub": subject,
            "kyc_level": level,
            "kyc_verified_at": format_datetime(now),
            # IETF Token Status List reference (draft-ietf-oauth-status-list §6.1).
            "status": {"status_list": {"idx": int(entry["statusListIndex"]),
                                       "uri": str(entry["statusListCredential"])}},
            **attributes,
        }
        token = issue_sd_jwt(
            claims,
            self._signer,
            disclosable=attributes.keys(),
            holder_key=holder_key,
            now=now,
            vct=KYC_VCT,
        )
        return token, entry


class KycVerifier:
    """A relying operator: verifies KYC presentations and leaves anchored receipts."""

    __slots__ = ("_did", "_receipts", "_resolver", "_status")

    def __init__(
        self,
        verifier_did: str,
        *,
        resolver: DidResolver,
        status: StatusChecker,
        receipts: ReceiptLedger,
    ) -> None:
        self._did = verifier_did
        self._resolver = resolver
        self._status = status
        self._receipts = receipts

    def verify(
        self,
        presentation: str,
        *,
        nonce: str,
        now: datetime,
        required: Iterable[str] = (),
    ) -> tuple[VerifiedSdJwt, VerificationReceipt]:
        """Verify (audience = this verifier); raise on failure; record a receipt on success."""
        result = verify_sd_jwt(
            presentation,
            resolver=self._resolver,
            now=now,
            nonce=nonce,
            audience=self._did,
            status=self._status,
        )
        if result.claims.get("vct") != KYC_VCT:
            raise VerificationFailed("malformed", "not a simtrust KYC credential")
        missing = [name for name in required if name not in result.claims]
        if missing:
            raise VerificationFailed("disclosure", f"required attributes not disclosed: {missing}")
        receipt = VerificationReceipt(
            presentation_hash=hashlib.sha256(presentation.encode("ascii", "replace")).hexdigest(),
            verifier=self._did,
            issuer=result.issuer,
            verified_at=format_datetime(now),
        )
        self._receipts.record(receipt)
        return result, receipt
