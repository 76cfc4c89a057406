"""Identity: DIDs rooted in the SIM, W3C verifiable credentials, revocation, reusable KYC.

Public surface of the identity layer (DESIGN.md "Identity"): did:key and the
ledger-anchored did:simtrust method (docs/did-method.md), Data Integrity
EdDSA proofs, VC-JOSE and SD-JWT, Bitstring Status Lists, secure elements
and reusable KYC with ledger-anchored verification receipts (docs/identity.md).
"""

from simtrust.identity._attestation import (
    ATTESTATION_HEADER,
    ATTESTATION_POP_HEADER,
    check_client_attestation,
    open_pushed_request,
)
from simtrust.identity._authcode import (
    AUTHORIZATION_CODE_GRANT,
    REQUEST_URI_PREFIX,
    AuthorizationCodeFlow,
    PendingAuthorization,
    parse_authorization_details,
    pkce_challenge,
)
from simtrust.identity._capability import (
    CAPABILITY_TYPE,
    CapabilityEnforcer,
    Decision,
    capability_token,
    grant_capability,
)
from simtrust.identity._contexts import (
    BUNDLED_CONTEXTS,
    CREDENTIALS_V2,
    DATA_INTEGRITY_V2,
    EXAMPLES_V2,
    SIMTRUST_V1,
    bundled_context,
    document_loader,
)
from simtrust.identity._credentials import (
    StatusChecker,
    StatusResult,
    VerifiedCredential,
    VerifiedPresentation,
    check_validity_period,
    create_presentation,
    issue_credential,
    issuer_of,
    validate_credential,
    verify_credential,
    verify_presentation,
)
from simtrust.identity._dataintegrity import (
    CRYPTOSUITES,
    VerifiedProof,
    add_proof,
    proof_hash,
    verify_proofs,
)
from simtrust.identity._didkey import did_key, did_key_x25519, resolve_did_key
from simtrust.identity._didsimtrust import (
    IDENTITY_PAYLOAD_TYPE,
    PAYLOAD_KINDS,
    ApplyOutcome,
    DidRegistry,
    FinalizedMessage,
    add_key_patch,
    create_operation,
    deactivate_operation,
    decode_identity_payload,
    identity_payload,
    remove_key_patch,
    simtrust_did,
    update_operation,
)
from simtrust.identity._dpop import DPOP_ALGS, DpopProofs, jwk_thumbprint
from simtrust.identity._ecdsa import EcdsaP256Signer
from simtrust.identity._errors import (
    DidNotFound,
    InvalidDid,
    OperationRejected,
    ProtocolError,
    VerificationFailed,
)
from simtrust.identity._jcs import canonicalize
from simtrust.identity._jose import (
    VC_JWT_MEDIA_TYPE,
    issue_vc_jwt,
    verify_enveloped_vc_jwt,
    verify_vc_jwt,
)
from simtrust.identity._jws import holder_jwk, signer_jwk
from simtrust.identity._jwtvc import JWT_VC_JSON, issue_jwt_vc_json, verify_jwt_vc_json
from simtrust.identity._keys import (
    Ed25519Signer,
    Signer,
    decode_multikey,
    ed25519_multikey,
    ed25519_to_x25519_public,
    verify_ed25519,
    x25519_multikey,
)
from simtrust.identity._kyc import KYC_ATTRIBUTES, KYC_VCT, KycIssuer, KycVerifier, ReceiptLedger
from simtrust.identity._multibase import multibase_decode, multibase_encode
from simtrust.identity._oid4vci import (
    PRE_AUTHORIZED_GRANT,
    PROOF_TYP,
    CredentialConfiguration,
    CredentialIssuer,
    Minted,
    key_proof,
)
from simtrust.identity._oid4vp import (
    DCQL_FORMATS,
    REQUEST_OBJECT_TYP,
    PresentationVerifier,
    open_request_object,
    validate_dcql_query,
)
from simtrust.identity._rdfc import (
    MAX_NDEGREE_CALLS,
    canonical_labels,
    canonical_nquads,
    jsonld_to_quads,
    rdfc_canonicalize,
)
from simtrust.identity._receipt import VerificationReceipt, receipt_hash
from simtrust.identity._report import verification_report
from simtrust.identity._resolver import DidMethod, DidResolver, Resolution, parse_did
from simtrust.identity._sdjwt import VerifiedSdJwt, issue_sd_jwt, present_sd_jwt, verify_sd_jwt
from simtrust.identity._secure_element import (
    Keyring,
    SecureElement,
    SecureElementSigner,
    SoftwareSecureElement,
)
from simtrust.identity._service import IdentityService, LedgerIdentityHandler
from simtrust.identity._sim import SimIdentity, provision_sim_identity
from simtrust.identity._statement import verification_statement
from simtrust.identity._statusanchor import status_list_anchor
from simtrust.identity._statuslist import (
    MIN_LIST_SIZE,
    StatusListRegistry,
    StatusListVerifier,
    decode_status_list,
    encode_status_list,
    status_bit,
    validate_status_entry,
)
from simtrust.identity._tokens import REFRESH_GRANT, IssuerTokens
from simtrust.identity._tokenstatus import (
    STATUS_LIST_MEDIA_TYPE,
    decode_token_list,
    encode_token_list,
    status_list_token,
    verify_status_list_token,
)

__all__ = [
    "ATTESTATION_HEADER",
    "ATTESTATION_POP_HEADER",
    "AUTHORIZATION_CODE_GRANT",
    "BUNDLED_CONTEXTS",
    "CAPABILITY_TYPE",
    "CREDENTIALS_V2",
    "CRYPTOSUITES",
    "DATA_INTEGRITY_V2",
    "DCQL_FORMATS",
    "DPOP_ALGS",
    "EXAMPLES_V2",
    "IDENTITY_PAYLOAD_TYPE",
    "JWT_VC_JSON",
    "KYC_ATTRIBUTES",
    "KYC_VCT",
    "MAX_NDEGREE_CALLS",
    "MIN_LIST_SIZE",
    "PAYLOAD_KINDS",
    "PRE_AUTHORIZED_GRANT",
    "PROOF_TYP",
    "REFRESH_GRANT",
    "REQUEST_OBJECT_TYP",
    "REQUEST_URI_PREFIX",
    "SIMTRUST_V1",
    "STATUS_LIST_MEDIA_TYPE",
    "VC_JWT_MEDIA_TYPE",
    "ApplyOutcome",
    "AuthorizationCodeFlow",
    "CapabilityEnforcer",
    "CredentialConfiguration",
    "CredentialIssuer",
    "Decision",
    "DidMethod",
    "DidNotFound",
    "DidRegistry",
    "DidResolver",
    "DpopProofs",
    "EcdsaP256Signer",
    "Ed25519Signer",
    "FinalizedMessage",
    "IdentityService",
    "InvalidDid",
    "IssuerTokens",
    "Keyring",
    "KycIssuer",
    "KycVerifier",
    "LedgerIdentityHandler",
    "Minted",
    "OperationRejected",
    "PendingAuthorization",
    "PresentationVerifier",
    "ProtocolError",
    "ReceiptLedger",
    "Resolution",
    "SecureElement",
    "SecureElementSigner",
    "Signer",
    "SimIdentity",
    "SoftwareSecureElement",
    "StatusChecker",
    "StatusListRegistry",
    "StatusListVerifier",
    "StatusResult",
    "VerificationFailed",
    "VerificationReceipt",
    "VerifiedCredential",
    "VerifiedPresentation",
    "VerifiedProof",
    "VerifiedSdJwt",
    "add_key_patch",
    "add_proof",
    "bundled_context",
    "canonical_labels",
    "canonical_nquads",
    "canonicalize",
    "capability_token",
    "check_client_attestation",
    "check_validity_period",
    "create_operation",
    "create_presentation",
    "deactivate_operation",
    "decode_identity_payload",
    "decode_multikey",
    "decode_status_list",
    "decode_token_list",
    "did_key",
    "did_key_x25519",
    "document_loader",
    "ed25519_multikey",
    "ed25519_to_x25519_public",
    "encode_status_list",
    "encode_token_list",
    "grant_capability",
    "holder_jwk",
    "identity_payload",
    "issue_credential",
    "issue_jwt_vc_json",
    "issue_sd_jwt",
    "issue_vc_jwt",
    "issuer_of",
    "jsonld_to_quads",
    "jwk_thumbprint",
    "key_proof",
    "multibase_decode",
    "multibase_encode",
    "open_pushed_request",
    "open_request_object",
    "parse_authorization_details",
    "parse_did",
    "pkce_challenge",
    "present_sd_jwt",
    "proof_hash",
    "provision_sim_identity",
    "rdfc_canonicalize",
    "receipt_hash",
    "remove_key_patch",
    "resolve_did_key",
    "signer_jwk",
    "simtrust_did",
    "status_bit",
    "status_list_anchor",
    "status_list_token",
    "update_operation",
    "validate_credential",
    "validate_dcql_query",
    "validate_status_entry",
    "verification_report",
    "verification_statement",
    "verify_credential",
    "verify_ed25519",
    "verify_enveloped_vc_jwt",
    "verify_jwt_vc_json",
    "verify_presentation",
    "verify_proofs",
    "verify_sd_jwt",
    "verify_status_list_token",
    "verify_vc_jwt",
    "x25519_multikey",
]
