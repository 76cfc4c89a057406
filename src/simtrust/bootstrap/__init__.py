"""Tier-2 credentials bootstrapped from the SIM: GBA and AKMA keys, a certificate server, EST.

Tier 1 is what the SIM shares with the network: GBA (TS 33.220: a BSF over Ub
with HTTP Digest AKA, RFC 3310; Ks_NAF per Annex B) and AKMA (TS 33.535: K_AKMA,
A-KID, K_AF; an AAnF). With it the device authenticates to the certificate server
(a NAF speaking EST, RFC 7030) and enrols a key pair generated in its SIM under
its enterprise's own CA; revocation follows the SIM (docs/bootstrap.md).
"""

from simtrust.bootstrap._akma import Aanf, AkmaAnchor, register_from_ausf
from simtrust.bootstrap._bsf import (
    BootstrapInfo,
    Bsf,
    NafKey,
    VectorSource,
    bootstrapping_info_xml,
    imsi_of_impi,
    parse_bootstrapping_info,
)
from simtrust.bootstrap._ca import (
    REVOCATION_REASONS,
    CaRecord,
    CertificateAuthorities,
    CertProfile,
    DeviceClaims,
    IssuedCert,
    load_csr,
)
from simtrust.bootstrap._client import (
    DeviceClient,
    EnrolmentRefused,
    https_client,
    parse_certs_only,
)
from simtrust.bootstrap._cmp import CmpProtection
from simtrust.bootstrap._cmp_config import protection_from_pem
from simtrust.bootstrap._csr import build_csr, csr_attrs
from simtrust.bootstrap._device import KEY_BINDING_LABEL, SimApplet, key_binding
from simtrust.bootstrap._digest import (
    check_response,
    digest_response,
    format_challenge,
    format_credentials,
    parse_digest,
)
from simtrust.bootstrap._est import (
    EST_OPERATIONS,
    CertificateServer,
    EstRequest,
    EstResponse,
    SimDirectory,
)
from simtrust.bootstrap._http import HttpClient, LeanHttps
from simtrust.bootstrap._kdf import (
    UA_DIGEST_OVER_TLS,
    UA_HTTP_DIGEST,
    UA_SUBSCRIBER_CERTIFICATE,
    NafId,
    a_kid,
    a_tid,
    b_tid,
    bsf_domain,
    home_realm,
    impi_from_imsi,
    k_af,
    k_akma,
    ks_from_ck_ik,
    ks_naf,
    rand_of_b_tid,
)
from simtrust.bootstrap._revocation import SimRevocation
from simtrust.bootstrap._services import BootstrapServices, build_bootstrap

__all__ = [
    "EST_OPERATIONS",
    "KEY_BINDING_LABEL",
    "REVOCATION_REASONS",
    "UA_DIGEST_OVER_TLS",
    "UA_HTTP_DIGEST",
    "UA_SUBSCRIBER_CERTIFICATE",
    "Aanf",
    "AkmaAnchor",
    "BootstrapInfo",
    "BootstrapServices",
    "Bsf",
    "CaRecord",
    "CertProfile",
    "CertificateAuthorities",
    "CertificateServer",
    "CmpProtection",
    "DeviceClaims",
    "DeviceClient",
    "EnrolmentRefused",
    "EstRequest",
    "EstResponse",
    "HttpClient",
    "IssuedCert",
    "LeanHttps",
    "NafId",
    "NafKey",
    "SimApplet",
    "SimDirectory",
    "SimRevocation",
    "VectorSource",
    "a_kid",
    "a_tid",
    "b_tid",
    "bootstrapping_info_xml",
    "bsf_domain",
    "build_bootstrap",
    "build_csr",
    "check_response",
    "csr_attrs",
    "digest_response",
    "format_challenge",
    "format_credentials",
    "home_realm",
    "https_client",
    "impi_from_imsi",
    "imsi_of_impi",
    "k_af",
    "k_akma",
    "key_binding",
    "ks_from_ck_ik",
    "ks_naf",
    "load_csr",
    "parse_bootstrapping_info",
    "parse_certs_only",
    "parse_digest",
    "protection_from_pem",
    "rand_of_b_tid",
    "register_from_ausf",
]
