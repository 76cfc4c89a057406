"""Fraud reports shared among operators: signed verifiable credentials on the ledger.

A solution over the trust layer (identity, ledger) and the fraud detectors of
:mod:`simtrust.detect`: a member publishes what its detectors found as a W3C verifiable
credential naming subscribers only by keyed hashes (docs/fraud.md "Sharing",
docs/decisions/fraud-sharing.md), reads its partners' reports from the ledger, matches
them against its own SIMs and feeds the shared equipment blocklist back to the detectors
through the hook the composition root installs (``FraudDetector.shared_blocklist``).
A report is withdrawn through its reporter's W3C Bitstring Status List
(``ReportStatusList``; receivers read it with ``ReceivedStatusLists``).
A consortium coordinator rotates the key: a signed rotation on the ledger seals
a fresh epoch key to each member's key-agreement key with HPKE
(``rotation``; members apply it through ``ConsortiumMembership``).
The detectors themselves stand on base values only and know nothing of the ledger.
"""

from simtrust.fraudshare._intel import (
    INDICATORS,
    INTEL_TAG,
    SEVERITIES,
    ConsortiumKey,
    ConsortiumKeys,
    FraudReport,
    check_report,
    evidence_digest,
    fraud_report,
    intel_payload,
    report_from_alert,
)
from simtrust.fraudshare._membership import (
    DEFAULT_GRACE,
    ConsortiumMembership,
    platform_key_agreement,
)
from simtrust.fraudshare._rotation import (
    CONSORTIUM_TAG,
    KeyAgreementKey,
    Rotation,
    check_rotation,
    decode_rotation_payload,
    key_agreement_of,
    rotation,
    rotation_payload,
)
from simtrust.fraudshare._settings import Consortium, SharingPolicy, consortium_from_json
from simtrust.fraudshare._sharing import FraudIntelligence
from simtrust.fraudshare._status import ReceivedStatusLists, ReportStatusList

__all__ = [
    "CONSORTIUM_TAG",
    "DEFAULT_GRACE",
    "INDICATORS",
    "INTEL_TAG",
    "SEVERITIES",
    "Consortium",
    "ConsortiumKey",
    "ConsortiumKeys",
    "ConsortiumMembership",
    "FraudIntelligence",
    "FraudReport",
    "KeyAgreementKey",
    "ReceivedStatusLists",
    "ReportStatusList",
    "Rotation",
    "SharingPolicy",
    "check_report",
    "check_rotation",
    "consortium_from_json",
    "decode_rotation_payload",
    "evidence_digest",
    "fraud_report",
    "intel_payload",
    "key_agreement_of",
    "platform_key_agreement",
    "report_from_alert",
    "rotation",
    "rotation_payload",
]
