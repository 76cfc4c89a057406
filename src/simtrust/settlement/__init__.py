"""Settlement between operators: roaming reconciliation, statements, netting, slice SLAs.

Issue 15; the file formats, the rating rule and every decision taken where the
issue is silent are in ``docs/settlement.md``.
"""

from simtrust.settlement._agreement import (
    SERVICES,
    RoamingAgreement,
    load_agreement,
    parse_agreement,
    parse_utc_micros,
)
from simtrust.settlement._anchoring import (
    anchor_statement,
    usage_domain,
    verify_anchored_record,
)
from simtrust.settlement._contracts import (
    CONTRACT_CODES,
    CONTRACT_PAYLOAD_TYPE,
    ContractEngine,
    ContractRejected,
    Transition,
    TransitionContext,
    code_hash,
    create_payload,
    roaming_agreement_code,
    slice_sla_code,
    state_hash,
    submit_contract,
    transition_payload,
)
from simtrust.settlement._fraud import SUSPENSION_COLUMNS, load_suspensions, suspended_usage
from simtrust.settlement._micropay import VOUCHER_TYPE, MicropaymentStream, aggregate_vouchers
from simtrust.settlement._netting import net_statements
from simtrust.settlement._reconcile import (
    CLASSES,
    RECORDS_COLUMNS,
    USAGE_COLUMNS,
    Reconciliation,
    reconcile_files,
)
from simtrust.settlement._sla import (
    MEASUREMENT_COLUMNS,
    SLA_KPIS,
    SlaContract,
    evaluate_sla,
    load_sla_contract,
    measurement_signing_bytes,
    parse_sla_contract,
)
from simtrust.settlement._statement import (
    CREDIT_NOTE_TYPE,
    RESOLUTION_TYPE,
    STATEMENT_TYPE,
    build_credit_note,
    build_statement,
    carry_disputes,
    record_leaves,
    record_proof,
    resolve_dispute,
    sign_statement,
    statement_id,
    statement_signing_bytes,
    verify_record_proof,
    verify_statement,
)
from simtrust.settlement._store import (
    PERIOD_RULE,
    StatementStore,
    check_period,
    check_statements,
)
from simtrust.settlement._tokens import SettlementTokens, TokenReceipt, party_public_key
from simtrust.settlement._usage import export_session_usage

__all__ = [
    "CLASSES",
    "CONTRACT_CODES",
    "CONTRACT_PAYLOAD_TYPE",
    "CREDIT_NOTE_TYPE",
    "MEASUREMENT_COLUMNS",
    "PERIOD_RULE",
    "RECORDS_COLUMNS",
    "RESOLUTION_TYPE",
    "SERVICES",
    "SLA_KPIS",
    "STATEMENT_TYPE",
    "SUSPENSION_COLUMNS",
    "USAGE_COLUMNS",
    "VOUCHER_TYPE",
    "ContractEngine",
    "ContractRejected",
    "MicropaymentStream",
    "Reconciliation",
    "RoamingAgreement",
    "SettlementTokens",
    "SlaContract",
    "StatementStore",
    "TokenReceipt",
    "Transition",
    "TransitionContext",
    "aggregate_vouchers",
    "anchor_statement",
    "build_credit_note",
    "build_statement",
    "carry_disputes",
    "check_period",
    "check_statements",
    "code_hash",
    "create_payload",
    "evaluate_sla",
    "export_session_usage",
    "load_agreement",
    "load_sla_contract",
    "load_suspensions",
    "measurement_signing_bytes",
    "net_statements",
    "parse_agreement",
    "parse_sla_contract",
    "parse_utc_micros",
    "party_public_key",
    "reconcile_files",
    "record_leaves",
    "record_proof",
    "resolve_dispute",
    "roaming_agreement_code",
    "sign_statement",
    "slice_sla_code",
    "state_hash",
    "statement_id",
    "statement_signing_bytes",
    "submit_contract",
    "suspended_usage",
    "transition_payload",
    "usage_domain",
    "verify_anchored_record",
    "verify_record_proof",
    "verify_statement",
]
