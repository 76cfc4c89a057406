"""Tables of the identity component (DID registry, status lists, secure elements, receipts).

The DID tables are ledger state: written only by :class:`DidRegistry.apply`
from finalized ledger messages (docs/did-method.md §6).
"""

from __future__ import annotations

from simtrust.store import Migration

__all__ = ["MIGRATIONS"]

_V1 = """
CREATE TABLE identity_did (
    did TEXT PRIMARY KEY,
    network TEXT NOT NULL,
    version INTEGER NOT NULL,
    deactivated INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE identity_did_version (
    did TEXT NOT NULL REFERENCES identity_did(did),
    version INTEGER NOT NULL,
    document TEXT NOT NULL,
    operation_hash TEXT NOT NULL,
    message_id {blob} NOT NULL,
    ledger_order {bigint} NOT NULL,
    valid_from TEXT NOT NULL,
    PRIMARY KEY (did, version)
);
CREATE INDEX identity_did_version_time ON identity_did_version (did, valid_from);
CREATE TABLE identity_did_operation (
    message_id {blob} PRIMARY KEY,
    operation_hash TEXT NOT NULL,
    did TEXT NOT NULL,
    ledger_order {bigint} NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX identity_did_operation_hash ON identity_did_operation (operation_hash);
CREATE TABLE identity_ledger_cursor (
    component TEXT PRIMARY KEY,
    ledger_order {bigint} NOT NULL
);
CREATE TABLE identity_status_list (
    list_id TEXT PRIMARY KEY,
    issuer TEXT NOT NULL,
    purpose TEXT NOT NULL,
    size INTEGER NOT NULL,
    bits {blob} NOT NULL,
    allocated INTEGER NOT NULL,
    credential TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE identity_status_alloc (
    list_id TEXT NOT NULL REFERENCES identity_status_list(list_id),
    idx INTEGER NOT NULL,
    credential_id TEXT,
    PRIMARY KEY (list_id, idx)
);
CREATE TABLE identity_se_key (
    element_id TEXT NOT NULL,
    label TEXT NOT NULL,
    public_key {blob} NOT NULL,
    sealed {blob} NOT NULL,
    PRIMARY KEY (element_id, label)
);
CREATE TABLE identity_receipt (
    receipt_hash TEXT PRIMARY KEY,
    presentation_hash TEXT NOT NULL,
    verifier TEXT NOT NULL,
    issuer TEXT NOT NULL,
    verified_at TEXT NOT NULL,
    message_id {blob},
    ledger_order {bigint}
)
"""

_V2 = """
CREATE TABLE identity_status_anchor (
    message_id {blob} PRIMARY KEY,
    list_id TEXT NOT NULL,
    issuer TEXT NOT NULL,
    digest TEXT NOT NULL,
    ledger_order {bigint} NOT NULL
);
CREATE INDEX identity_status_anchor_list ON identity_status_anchor (list_id, ledger_order)
"""

_V3 = """
ALTER TABLE identity_status_list ADD COLUMN status_size INTEGER NOT NULL DEFAULT 1;
ALTER TABLE identity_status_list ADD COLUMN status_messages TEXT NOT NULL DEFAULT ''
"""

_V4 = """
CREATE TABLE identity_oid4vci_offer (
    offer_id TEXT PRIMARY KEY,
    code_hash TEXT NOT NULL UNIQUE,
    configuration_id TEXT NOT NULL,
    claims_sealed {blob} NOT NULL,
    offer_sealed {blob} NOT NULL,
    tx_code_hash TEXT,
    tx_attempts INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    expires TEXT NOT NULL,
    token_hash TEXT UNIQUE,
    token_expires TEXT,
    issued TEXT,
    credential_id TEXT
);
CREATE TABLE identity_oid4vc_nonce (
    nonce TEXT PRIMARY KEY,
    expires TEXT NOT NULL
);
CREATE TABLE identity_oid4vp_request (
    request_id TEXT PRIMARY KEY,
    relying_party TEXT NOT NULL,
    client_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    state TEXT NOT NULL,
    query TEXT NOT NULL,
    created TEXT NOT NULL,
    expires TEXT NOT NULL,
    status TEXT NOT NULL,
    result_sealed {blob},
    error TEXT
);
ALTER TABLE identity_receipt ADD COLUMN relying_party TEXT;
ALTER TABLE identity_receipt ADD COLUMN credential_type TEXT
"""

_V5 = """
ALTER TABLE identity_oid4vci_offer ADD COLUMN deferred INTEGER NOT NULL DEFAULT 0;
ALTER TABLE identity_oid4vci_offer ADD COLUMN approved TEXT;
ALTER TABLE identity_oid4vci_offer ADD COLUMN transaction_hash TEXT;
ALTER TABLE identity_oid4vci_offer ADD COLUMN holder_jwk TEXT;
ALTER TABLE identity_oid4vci_offer ADD COLUMN holder_did TEXT
"""

_V6 = """
ALTER TABLE identity_oid4vci_offer ADD COLUMN tenant_id TEXT
"""

_V7 = """
ALTER TABLE identity_oid4vci_offer ADD COLUMN issuer_state_hash TEXT;
ALTER TABLE identity_oid4vci_offer ADD COLUMN credential_identifier TEXT;
CREATE UNIQUE INDEX identity_oid4vci_offer_state ON identity_oid4vci_offer (issuer_state_hash);
CREATE INDEX identity_oid4vci_offer_tenant ON identity_oid4vci_offer (tenant_id, configuration_id);
CREATE TABLE identity_oid4vci_authz (
    request_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    state TEXT,
    configuration_id TEXT NOT NULL,
    details TEXT NOT NULL,
    issuer_state_hash TEXT,
    request_expires TEXT NOT NULL,
    created TEXT NOT NULL,
    code_hash TEXT UNIQUE,
    code_expires TEXT,
    code_used TEXT,
    offer_id TEXT
)
"""

_V8 = """
ALTER TABLE identity_oid4vci_offer ADD COLUMN token_jkt TEXT;
ALTER TABLE identity_oid4vci_authz ADD COLUMN dpop_jkt TEXT;
CREATE TABLE identity_oid4vci_refresh (
    token_hash TEXT PRIMARY KEY,
    offer_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    jkt TEXT,
    expires TEXT NOT NULL,
    used TEXT,
    created TEXT NOT NULL
);
CREATE INDEX identity_oid4vci_refresh_offer ON identity_oid4vci_refresh (offer_id);
CREATE TABLE identity_dpop_jti (
    jti_hash TEXT PRIMARY KEY,
    expires TEXT NOT NULL
);
CREATE INDEX identity_dpop_jti_expires ON identity_dpop_jti (expires)
"""

_V9 = """
ALTER TABLE identity_oid4vci_authz ADD COLUMN consented_claims TEXT;
ALTER TABLE identity_oid4vci_offer ADD COLUMN consented_claims TEXT
"""

_V10 = """
ALTER TABLE identity_oid4vp_request ADD COLUMN enc_key_sealed {blob}
"""

MIGRATIONS: list[Migration] = [
    Migration(component="identity", version=1, name="dids-status-lists-keys-receipts", sql=_V1),
    Migration(component="identity", version=2, name="status-list-anchors", sql=_V2),
    Migration(component="identity", version=3, name="status-list-sizes-messages", sql=_V3),
    Migration(component="identity", version=4, name="openid4vc-state-receipt-parties", sql=_V4),
    Migration(component="identity", version=5, name="openid4vci-deferred-issuance", sql=_V5),
    Migration(component="identity", version=6, name="openid4vci-offer-tenant", sql=_V6),
    Migration(component="identity", version=7, name="openid4vci-authorization-code", sql=_V7),
    Migration(component="identity", version=8, name="openid4vci-refresh-tokens-dpop", sql=_V8),
    Migration(component="identity", version=9, name="openid4vci-claim-consent", sql=_V9),
    Migration(component="identity", version=10, name="openid4vp-encrypted-responses", sql=_V10),
]
