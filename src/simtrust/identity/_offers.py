"""The credentials this issuer offers over OpenID4VCI: configurations and their claim checks.

Three credential configurations (OpenID4VCI 1.0 §12.2.4, Appendix A): the KYC
credential as an SD-JWT VC (``dc+sd-jwt``, Appendix A.3) bound to a JWK, and
the device credential as a Data Integrity ``ldp_vc`` (Appendix A.1.2) or as a
VCDM 1.1 JWT (``jwt_vc_json``, Appendix A.1.1), both bound to a did:key. An
offer's claims are checked when it is made, so a wallet never redeems an offer
that cannot be issued.
"""

from __future__ import annotations

from typing import Any

from simtrust.errors import InvalidInput
from simtrust.identity._contexts import CREDENTIALS_V2, SIMTRUST_V1
from simtrust.identity._credentials import (
    validate_credential,
)
from simtrust.identity._errors import VerificationFailed
from simtrust.identity._jwtvc import JWT_VC_JSON
from simtrust.identity._kyc import KYC_ATTRIBUTES, KYC_VCT
from simtrust.identity._oid4vci import CredentialConfiguration

__all__ = ["DEVICE_CONFIGURATION", "DEVICE_JWT_CONFIGURATION", "KYC_CONFIGURATION",
           "credential_configurations", "device_credential", "issue_refusal"]

KYC_CONFIGURATION = "SimtrustKyc"
DEVICE_CONFIGURATION = "DeviceCredential"
#: The device credential as a VCDM 1.1 JWT (``jwt_vc_json``, Appendix A.1.1).
DEVICE_JWT_CONFIGURATION = "DeviceCredentialJwt"
_EDDSA_PROOFS = {"jwt": {"proof_signing_alg_values_supported": ["EdDSA", "ES256"]}}


def _check_kyc_claims(claims: dict[str, Any]) -> None:
    level = claims.get("kyc_level")
    if not isinstance(level, str) or not level:
        raise InvalidInput("a KYC offer needs kyc_level")
    unknown = sorted(set(claims) - {"kyc_level", *KYC_ATTRIBUTES})
    if unknown:
        raise InvalidInput(f"unknown KYC attributes {unknown}; known: {list(KYC_ATTRIBUTES)}")


def device_credential(
    claims: dict[str, Any], holder_did: str, credential_id: str
) -> dict[str, Any]:
    """The unsecured device credential of ``holder_did`` carrying the offered ``claims``."""
    return {
        "@context": [CREDENTIALS_V2, SIMTRUST_V1],
        "id": credential_id,
        "type": ["VerifiableCredential", DEVICE_CONFIGURATION],
        "credentialSubject": {"id": holder_did, **claims},
    }


def _check_device_claims(claims: dict[str, Any]) -> None:
    if "id" in claims:
        raise InvalidInput("the subject id is the wallet's key (did:key), not an offered claim")
    trial = device_credential(claims, "did:key:z6Mkoffer", "urn:uuid:offer")
    trial.update({"issuer": "did:key:z6Mkoffer", "validFrom": "2026-01-01T00:00:00Z"})
    try:
        validate_credential(trial)
    except VerificationFailed as exc:
        raise issue_refusal(exc) from exc


def credential_configurations() -> dict[str, CredentialConfiguration]:
    """The credential configurations this issuer offers (OpenID4VCI 1.0 §12.2.4, Appendix A)."""
    kyc = {
        "format": "dc+sd-jwt",
        "vct": KYC_VCT,
        "scope": KYC_CONFIGURATION,
        "cryptographic_binding_methods_supported": ["jwk"],
        "credential_signing_alg_values_supported": ["EdDSA"],
        "proof_types_supported": _EDDSA_PROOFS,
        "credential_metadata": {
            "display": [{"name": "Verified identity (KYC)", "locale": "en"}],
            "claims": [{"path": [name]} for name in KYC_ATTRIBUTES],
        },
    }
    device = {
        "format": "ldp_vc",
        "scope": DEVICE_CONFIGURATION,
        "credential_definition": {
            "@context": [CREDENTIALS_V2, SIMTRUST_V1],
            "type": ["VerifiableCredential", DEVICE_CONFIGURATION],
        },
        "cryptographic_binding_methods_supported": ["did:key"],
        "credential_signing_alg_values_supported": ["eddsa-jcs-2022"],
        "proof_types_supported": _EDDSA_PROOFS,
        "credential_metadata": {"display": [{"name": "Device credential", "locale": "en"}]},
    }
    device_jwt = {
        "format": JWT_VC_JSON,
        "scope": DEVICE_JWT_CONFIGURATION,
        "credential_definition": {"type": ["VerifiableCredential", DEVICE_CONFIGURATION]},
        "cryptographic_binding_methods_supported": ["did:key"],
        "credential_signing_alg_values_supported": ["EdDSA"],
        "proof_types_supported": _EDDSA_PROOFS,
        "credential_metadata": {"display": [{"name": "Device credential (JWT)",
                                             "locale": "en"}]},
    }  # fmt: skip
    return {
        DEVICE_JWT_CONFIGURATION: CredentialConfiguration(
            DEVICE_JWT_CONFIGURATION, device_jwt, _check_device_claims
        ),
        # The KYC attributes are selectively disclosable; the holder may decline any at
        # consent. The level is the issuer's statement and always issued.
        KYC_CONFIGURATION: CredentialConfiguration(KYC_CONFIGURATION, kyc, _check_kyc_claims,
                                                   mandatory=frozenset({"kyc_level"})),
        DEVICE_CONFIGURATION: CredentialConfiguration(
            DEVICE_CONFIGURATION, device, _check_device_claims
        ),
    }


def issue_refusal(exc: VerificationFailed) -> InvalidInput:
    """An issue refused by the data model: 400 with the rule it breaks (RFC 9457 member)."""
    context = {k: v for k, v in exc.context.items() if k != "reason"}
    return InvalidInput(f"cannot issue: {exc.detail}", reason=exc.reason, **context)
