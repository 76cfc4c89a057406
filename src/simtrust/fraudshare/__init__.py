"""Fraud reports shared among operators: signed verifiable credentials on the ledger.

A solution over the trust layer (identity, ledger) and the fraud detectors of
:mod:`simtrust.detect`: a member publishes what its detectors found as a W3C verifiable
credential naming subscribers only by keyed hashes (docs/fraud.md "Sharing",
docs/decisions/fraud-sharing.md), reads its partners' reports from the ledger, matches
them against its own SIMs and feeds the shared equipment blocklist back to the detectors
through the hook the composition root installs (``FraudDetector.shared_blocklist``).
A report is withdrawn through its reporter's W3C Bitstring Status List
(``ReportStatusList``; receivers read it with ``ReceivedStatusLists``).
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
from simtrust.fraudshare._sharing import (
    Consortium,
    FraudIntelligence,
    SharingPolicy,
    consortium_from_json,
)
from simtrust.fraudshare._status import ReceivedStatusLists, ReportStatusList

__all__ = [
    "INDICATORS",
    "INTEL_TAG",
    "SEVERITIES",
    "Consortium",
    "ConsortiumKey",
    "ConsortiumKeys",
    "FraudIntelligence",
    "FraudReport",
    "ReceivedStatusLists",
    "ReportStatusList",
    "SharingPolicy",
    "check_report",
    "consortium_from_json",
    "evidence_digest",
    "fraud_report",
    "intel_payload",
    "report_from_alert",
]
