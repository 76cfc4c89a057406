"""Shared fraud intelligence: the signed, privacy-preserving fraud report and its companions.

A fraud report is a W3C verifiable credential (VCDM 2.0 §4) secured with an
``eddsa-jcs-2022`` Data Integrity proof by the reporting operator's DID.
Subscriber and equipment identifiers never appear in it: each is an
HMAC-SHA256 (RFC 2104) under a consortium key of a named epoch, over a
domain-separated, normalised form (IMSI digits; the 14-digit IMEI body of
TS 23.003 §6.2, so IMEI and IMEISV of one device match). TACs (device
models, not subscribers) may be given in clear. The evidence stays with the
reporter; the report carries the SHA-256 of its JCS form (RFC 8785).

Every report carries a ``credentialStatus`` entry of the W3C Bitstring
Status List v1.0 (§2.1, purpose ``revocation``) in its reporter's list; the
reporter revokes by setting the bit and publishing the re-signed list
(:mod:`simtrust.fraudshare._status`). Confirmations (another member matched
and agrees), and the revocations of earlier versions, are small signed
documents of the same shape as the ledger's status anchors. All travel as
ledger ``tagged-data`` under :data:`INTEL_TAG`; :mod:`simtrust.fraudshare._sharing`
applies them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from simtrust.errors import DecodeError, InvalidInput
from simtrust.fraudshare._status import status_entry_of
from simtrust.identity import (
    CREDENTIALS_V2,
    SIMTRUST_V1,
    DidResolver,
    Signer,
    StatusChecker,
    VerificationFailed,
    add_proof,
    canonicalize,
    issue_credential,
    verify_credential,
    verify_proofs,
)

__all__ = [
    "INDICATORS",
    "INTEL_KINDS",
    "INTEL_TAG",
    "SEVERITIES",
    "ConsortiumKey",
    "ConsortiumKeys",
    "FraudReport",
    "check_confirmation",
    "check_report",
    "check_revocation",
    "confirmation",
    "decode_intel_payload",
    "evidence_digest",
    "fraud_report",
    "intel_payload",
    "report_from_alert",
    "revocation",
]

#: The ledger tagged-data tag of fraud intelligence payloads (version 1).
INTEL_TAG = b"simtrust/fraud-intel/1"
INTEL_KINDS = ("report", "revocation", "confirmation", "status-list")
#: What a report says happened. Equipment indicators may feed the shared blocklist.
INDICATORS = ("cloned-sim", "impossible-travel", "stolen-equipment", "invalid-equipment",
              "usage-fraud", "sim-box")
EQUIPMENT_INDICATORS = frozenset({"stolen-equipment", "invalid-equipment"})
SEVERITIES = ("low", "medium", "high", "critical")
REPORT_TYPE = "FraudReport"
MAX_IDENTIFIERS = 64
MAX_PAYLOAD_BYTES = 16 * 1024
#: A report, revocation or confirmation must reach the ledger within this of its proof.
MAX_SKEW = timedelta(hours=24)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_EPOCH = re.compile(r"[A-Za-z0-9._-]{1,32}")
_IMSI = re.compile(r"[0-9]{6,15}")
_IMEI = re.compile(r"[0-9]{14,16}")
_TAC = re.compile(r"[0-9]{8}")
_SUBJECT = frozenset({"indicator", "severity", "keyEpoch", "identifiers", "evidenceDigest",
                      "observedAt"})
_SUBJECT_OPTIONAL = frozenset({"tacs"})
_CREDENTIAL = frozenset({"@context", "id", "type", "issuer", "validFrom", "credentialSubject",
                         "credentialStatus", "proof"})


class ConsortiumKey:
    """One epoch's consortium secret: keys the identifier hashes; never printed."""

    __slots__ = ("_secret", "epoch")

    def __init__(self, epoch: str, secret: bytes) -> None:
        if not _EPOCH.fullmatch(epoch):
            raise InvalidInput("a key epoch is 1-32 letters, digits, '.', '_' or '-'")
        if len(secret) < 32:
            raise InvalidInput("a consortium key has at least 32 bytes")
        self.epoch = epoch
        self._secret = bytes(secret)

    def __repr__(self) -> str:
        return f"ConsortiumKey(epoch={self.epoch!r})"

    def hash(self, kind: str, value: str) -> str:
        """Keyed hash of one identifier (``imsi`` or ``imei``), hex."""
        if kind == "imsi":
            if not _IMSI.fullmatch(value):
                raise InvalidInput("an IMSI is 6-15 digits")
            norm = value
        elif kind == "imei":
            if not _IMEI.fullmatch(value):
                raise InvalidInput("an IMEI or IMEISV is 14-16 digits")
            norm = value[:14]
        else:
            raise InvalidInput(f"unknown identifier type {kind!r}")
        msg = b"simtrust-fraud/1|" + kind.encode() + b"|" + norm.encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()


class ConsortiumKeys:
    """The epochs a member holds; ``current`` keys new reports, older ones still match."""

    __slots__ = ("_keys", "current")

    def __init__(self, keys: Iterable[ConsortiumKey], current: str) -> None:
        self._keys = {k.epoch: k for k in keys}
        if current not in self._keys:
            raise InvalidInput(f"the current key epoch {current!r} is not among the keys")
        self.current = current

    def __repr__(self) -> str:
        return f"ConsortiumKeys(epochs={sorted(self._keys)}, current={self.current!r})"

    @classmethod
    def none(cls) -> ConsortiumKeys:
        """No key yet (a member waiting for its coordinator's first rotation)."""
        empty = cls.__new__(cls)
        empty._keys = {}
        empty.current = ""
        return empty

    def __contains__(self, epoch: object) -> bool:
        return epoch in self._keys

    def get(self, epoch: str) -> ConsortiumKey:
        key = self._keys.get(epoch)
        if key is None:
            raise VerificationFailed("unknown-key-epoch", f"no consortium key of epoch {epoch!r}")
        return key

    def epochs(self) -> list[str]:
        return sorted(self._keys)

    @classmethod
    def from_json(cls, doc: object) -> ConsortiumKeys:
        """``{"current": EPOCH, "keys": {EPOCH: HEX}}`` (the member's key file)."""
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), dict):
            raise InvalidInput('consortium keys are {"current": EPOCH, "keys": {EPOCH: HEX}}')
        try:
            keys = [ConsortiumKey(str(e), bytes.fromhex(str(h))) for e, h in doc["keys"].items()]
        except ValueError as exc:
            raise InvalidInput("consortium keys are hex") from exc
        return cls(keys, str(doc.get("current")))


def evidence_digest(evidence: Mapping[str, Any]) -> str:
    """SHA-256 hex of the JCS form of the reporter's evidence (kept by the reporter)."""
    return hashlib.sha256(canonicalize(dict(evidence))).hexdigest()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fraud_report(
    signer: Signer,
    key: ConsortiumKey,
    *,
    indicator: str,
    severity: str,
    evidence: Mapping[str, Any],
    observed_at: datetime,
    now: datetime,
    imsis: Iterable[str] = (),
    imeis: Iterable[str] = (),
    tacs: Iterable[str] = (),
    report_id: str | None = None,
    status_entry: Callable[[str], dict[str, Any]],
) -> dict[str, Any]:
    """The signed report credential; identifiers are keyed hashes under ``key``.

    ``status_entry(report_id)`` allocates the report's revocation entry in the
    reporter's Bitstring Status List (``ReportStatusList.entry``).
    """
    identifiers = [{"scheme": "imsi", "keyedHash": key.hash("imsi", i)} for i in imsis]
    identifiers += [{"scheme": "imei", "keyedHash": key.hash("imei", i)} for i in imeis]
    subject: dict[str, Any] = {
        "indicator": indicator,
        "severity": severity,
        "keyEpoch": key.epoch,
        "identifiers": identifiers,
        "evidenceDigest": evidence_digest(evidence),
        "observedAt": _iso(observed_at),
    }
    tac_list = sorted(set(tacs))
    if tac_list:
        subject["tacs"] = tac_list
    _check_subject(subject)
    report_id = report_id or f"urn:uuid:{uuid.uuid4()}"
    credential = {
        "@context": [CREDENTIALS_V2, SIMTRUST_V1],
        "id": report_id,
        "type": ["VerifiableCredential", REPORT_TYPE],
        "issuer": signer.controller,
        "validFrom": _iso(now),
        "credentialSubject": subject,
        "credentialStatus": status_entry(report_id),
    }
    return issue_credential(credential, signer, now=now)


@dataclass(frozen=True, slots=True)
class FraudReport:
    """A verified report: who said what about which hashed identifiers."""

    id: str
    issuer: str
    indicator: str
    severity: str
    key_epoch: str
    imsi_hashes: frozenset[str]
    imei_hashes: frozenset[str]
    tacs: frozenset[str]
    evidence_digest: str
    observed_at: str
    issued_at: str
    status_list: str = ""
    status_index: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "issuer": self.issuer, "indicator": self.indicator,
            "severity": self.severity, "key_epoch": self.key_epoch,
            "identifiers": {"imsi": len(self.imsi_hashes), "imei": len(self.imei_hashes)},
            "tacs": sorted(self.tacs), "evidence_digest": self.evidence_digest,
            "observed_at": self.observed_at, "issued_at": self.issued_at,
            "status": {"statusListCredential": self.status_list,
                       "statusListIndex": str(self.status_index)},
        }  # fmt: skip


def _malformed(detail: str) -> VerificationFailed:
    return VerificationFailed("malformed", detail)


def _check_subject(subject: object) -> dict[str, Any]:
    allowed = _SUBJECT | _SUBJECT_OPTIONAL
    if not isinstance(subject, dict) or not _SUBJECT <= set(subject) <= allowed:
        raise _malformed("a report subject has indicator, severity, keyEpoch, identifiers,"
                         " evidenceDigest, observedAt and optionally tacs")
    if subject["indicator"] not in INDICATORS:
        raise _malformed(f"indicator is one of {', '.join(INDICATORS)}")
    if subject["severity"] not in SEVERITIES:
        raise _malformed(f"severity is one of {', '.join(SEVERITIES)}")
    if not isinstance(subject["keyEpoch"], str) or not _EPOCH.fullmatch(subject["keyEpoch"]):
        raise _malformed("keyEpoch is a short name")
    if not isinstance(subject["evidenceDigest"], str) or not _HEX64.fullmatch(
            subject["evidenceDigest"]):
        raise _malformed("evidenceDigest is 64 lowercase hex digits")
    if not isinstance(subject["observedAt"], str) or len(subject["observedAt"]) > 40:
        raise _malformed("observedAt is a date-time")
    ids = subject["identifiers"]
    if not isinstance(ids, list) or len(ids) > MAX_IDENTIFIERS:
        raise _malformed(f"identifiers is a list of at most {MAX_IDENTIFIERS}")
    for item in ids:
        if (not isinstance(item, dict) or set(item) != {"scheme", "keyedHash"}
                or item["scheme"] not in ("imsi", "imei")
                or not isinstance(item["keyedHash"], str)
                or not _HEX64.fullmatch(item["keyedHash"])):
            raise _malformed("an identifier is {scheme: imsi|imei, keyedHash: 64 hex digits}"
                             " (a clear identifier is never accepted)")
    tacs = subject.get("tacs", [])
    if not isinstance(tacs, list) or len(tacs) > MAX_IDENTIFIERS or not all(
            isinstance(t, str) and _TAC.fullmatch(t) for t in tacs):
        raise _malformed("tacs is a list of 8-digit TACs")
    if not ids and not tacs:
        raise _malformed("a report names at least one identifier or TAC")
    return subject


def check_report(credential: object, *, resolver: DidResolver, now: datetime,
                 status: StatusChecker) -> FraudReport:
    """Verify a report credential; :class:`VerificationFailed` names the reason.

    ``status`` reads the report's revocation entry (``ReceivedStatusLists``):
    ``revoked`` is raised when the reporter's list, already held, has its bit set.
    """
    if not isinstance(credential, dict) or set(credential) != _CREDENTIAL:
        raise _malformed("a fraud report is a secured credential with exactly @context, id,"
                         " type, issuer, validFrom, credentialSubject, credentialStatus and"
                         " proof")
    if credential["type"] != ["VerifiableCredential", REPORT_TYPE]:
        raise _malformed("a fraud report has type [VerifiableCredential, FraudReport]")
    if not isinstance(credential["id"], str) or not 0 < len(credential["id"]) <= 200:
        raise _malformed("a fraud report has a short id")
    subject = _check_subject(credential["credentialSubject"])
    list_url, index = status_entry_of(credential)
    verified = verify_credential(credential, resolver=resolver, now=now, status=status)
    ids = subject["identifiers"]
    return FraudReport(
        id=credential["id"], issuer=verified.issuer, indicator=subject["indicator"],
        severity=subject["severity"], key_epoch=subject["keyEpoch"],
        imsi_hashes=frozenset(i["keyedHash"] for i in ids if i["scheme"] == "imsi"),
        imei_hashes=frozenset(i["keyedHash"] for i in ids if i["scheme"] == "imei"),
        tacs=frozenset(subject.get("tacs", ())), evidence_digest=subject["evidenceDigest"],
        observed_at=subject["observedAt"], issued_at=credential["validFrom"],
        status_list=list_url, status_index=index,
    )  # fmt: skip


def _signed(kind: str, actor: str, body: dict[str, Any], signer: Signer,
            now: datetime) -> dict[str, Any]:
    return add_proof({"type": kind, actor: signer.controller, **body}, signer, created=now)


def revocation(signer: Signer, report_id: str, reason: str, now: datetime) -> dict[str, Any]:
    """The reporter withdraws its report (a wrong report); signed by the reporter."""
    return _signed("FraudReportRevocation", "issuer", {"report": report_id, "reason": reason},
                   signer, now)


def confirmation(signer: Signer, report_id: str, now: datetime) -> dict[str, Any]:
    """Another member matched a report and confirms it (feeds the reporter's reputation)."""
    return _signed("FraudReportConfirmation", "confirmer", {"report": report_id}, signer, now)


def _check_signed(body: object, kind: str, actor: str, extra: frozenset[str], *,
                  resolver: DidResolver, now: datetime) -> dict[str, Any]:
    fields = {"type", actor, "report", "proof"} | extra
    if not isinstance(body, dict) or set(body) != fields or body["type"] != kind:
        raise _malformed(f"a {kind} has exactly {', '.join(sorted(fields))}")
    if not all(isinstance(body[f], str) and 0 < len(body[f]) <= 200
               for f in fields - {"proof"}):
        raise _malformed(f"{kind} members are short strings")
    proofs = verify_proofs(body, resolver=resolver, now=now)
    if not any(p.controller == body[actor] for p in proofs):
        raise VerificationFailed("key-not-authorized", f"the {kind} is not signed by {actor}")
    return body


def check_revocation(body: object, *, resolver: DidResolver, now: datetime) -> tuple[str, str]:
    """(report id, revoking DID) of a well-signed revocation."""
    doc = _check_signed(body, "FraudReportRevocation", "issuer", frozenset({"reason"}),
                        resolver=resolver, now=now)
    return doc["report"], doc["issuer"]


def check_confirmation(body: object, *, resolver: DidResolver, now: datetime) -> tuple[str, str]:
    """(report id, confirming DID) of a well-signed confirmation."""
    doc = _check_signed(body, "FraudReportConfirmation", "confirmer", frozenset(),
                        resolver=resolver, now=now)
    return doc["report"], doc["confirmer"]


def proof_created(doc: Mapping[str, Any]) -> datetime:
    """When the (first) proof of a signed document was made."""
    proof = doc.get("proof")
    first = proof[0] if isinstance(proof, list) and proof else proof
    created = first.get("created") if isinstance(first, dict) else None
    if not isinstance(created, str):
        raise _malformed("the proof has no created time")
    try:
        moment = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _malformed("the proof's created time is not a date-time") from exc
    if moment.tzinfo is None:
        raise _malformed("the proof's created time has no zone")
    return moment


def intel_payload(kind: str, body: dict[str, Any]) -> bytes:
    """The tagged-data body: JCS of ``{"v": 1, "kind": kind, kind: body}``."""
    if kind not in INTEL_KINDS:
        raise InvalidInput(f"unknown fraud intelligence kind {kind!r}")
    data = canonicalize({"v": 1, "kind": kind, kind: body})
    if len(data) > MAX_PAYLOAD_BYTES:
        raise InvalidInput("a fraud intelligence payload is at most 16 KiB")
    return data


def decode_intel_payload(data: bytes) -> tuple[str, dict[str, Any]]:
    """(kind, body) of an untrusted payload, or :class:`DecodeError`."""
    if len(data) > MAX_PAYLOAD_BYTES:
        raise DecodeError("a fraud intelligence payload is at most 16 KiB")
    try:
        envelope = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DecodeError("a fraud intelligence payload is JSON") from exc
    if not isinstance(envelope, dict) or envelope.get("v") != 1:
        raise DecodeError("a fraud intelligence payload is an object with v = 1")
    kind = envelope.get("kind")
    if kind not in INTEL_KINDS or set(envelope) != {"v", "kind", kind}:
        raise DecodeError("a fraud intelligence payload has v, kind and its body only")
    body = envelope[kind]
    if not isinstance(body, dict):
        raise DecodeError("a fraud intelligence body is an object")
    return str(kind), body


#: Fraud alert (kind, evidence feature) → the indicator a report of it carries.
_ALERT_INDICATORS = {
    "impossible-travel": "impossible-travel",
    "sim-clone": "cloned-sim",
    "imei_valid": "invalid-equipment",
    "imei_blocklist": "stolen-equipment",
    "imei_shared_blocklist": "stolen-equipment",
    "tac_matches_model": "usage-fraud",
    "imei_churn": "usage-fraud",
}


def report_from_alert(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The :func:`fraud_report` arguments for one fraud alert (its JSON form).

    The IMSI and the IMEIs the evidence names become keyed hashes; the whole
    alert is the evidence whose digest the report carries.
    """
    kind = alert.get("kind")
    evidence = alert.get("evidence")
    if not isinstance(evidence, dict) or not isinstance(alert.get("imsi"), str):
        raise InvalidInput("not a fraud alert: it has no imsi or evidence")
    feature = evidence.get("feature")
    indicator = _ALERT_INDICATORS.get(str(kind)) or _ALERT_INDICATORS.get(str(feature))
    if indicator is None:
        raise InvalidInput(f"alert kind {kind!r} is not one a fraud report is made of")
    found = [evidence.get("observed")]
    devices = evidence.get("devices")
    if isinstance(devices, list):
        found += devices
    imeis = sorted({d for d in found if isinstance(d, str) and _IMEI.fullmatch(d)})
    at = alert.get("at")
    try:
        observed = datetime.fromisoformat(str(at).replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput("the alert has no time") from exc
    return {"indicator": indicator, "imsis": [alert["imsi"]], "imeis": imeis,
            "evidence": dict(alert), "observed_at": observed}
