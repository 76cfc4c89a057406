"""The AuC: 3GPP authentication algorithms, vectors, SQN management, SUCI.

One algorithm per module: :mod:`.milenage` (TS 35.206), :mod:`.tuak` (TS 35.231)
with :mod:`.keccak`, :mod:`.kdf` (TS 33.220/33.401/33.402/33.501 key
derivations), :mod:`.vectors` (EPS-AKA, 5G-AKA, EAP-AKA' vectors), :mod:`.sqn`
(TS 33.102 Annex C), :mod:`.resync` (AUTS), :mod:`.usim` (the device side),
:mod:`.suci` (TS 33.501 Annex C) and :mod:`.diagnose`. Pure logic: no I/O, no
clock; randomness is passed in.
"""

from simtrust.subscriber.auc._util import parse_hex
from simtrust.subscriber.auc.diagnose import VERDICTS, Diagnosis, Hypothesis, diagnose
from simtrust.subscriber.auc.errors import MacFailure, SyncFailure
from simtrust.subscriber.auc.kdf import (
    ck_ik_prime,
    hmac_sha256,
    hres_star,
    kasme,
    kausf,
    kdf,
    kseaf,
    plmn_id,
    res_star,
    serving_network_name,
)
from simtrust.subscriber.auc.keccak import (
    KECCAK_BACKEND,
    keccak_f1600,
    keccak_f1600_bytes,
    keccak_f1600_reference,
)
from simtrust.subscriber.auc.milenage import F2345, Milenage, MilenageOutput, compute_opc
from simtrust.subscriber.auc.resync import RESYNC_AMF, build_auts, resynchronise, verify_auts
from simtrust.subscriber.auc.sqn import (
    DEFAULT_DELTA,
    DEFAULT_IND_BITS,
    AucSqnState,
    UsimSqnArray,
    split_sqn,
)
from simtrust.subscriber.auc.suci import (
    NULL_SCHEME,
    PROFILE_A,
    PROFILE_B,
    HomeNetworkKey,
    Suci,
    conceal_imsi,
    deconceal,
    parse_suci,
)
from simtrust.subscriber.auc.tuak import Tuak, TuakF2345, TuakOutput, compute_topc
from simtrust.subscriber.auc.usim import AkaResponse, Usim
from simtrust.subscriber.auc.vectors import (
    KDF_BACKEND,
    AkaFunctions,
    EapAkaPrimeVector,
    EpsVector,
    HeAv5g,
    RandSource,
    SeAv5g,
    UmtsVector,
    build_autn,
    eap_aka_prime_vector,
    eps_vector,
    eps_vectors,
    he_av_5g,
    he_avs_5g,
    se_av_5g,
    umts_vector,
    with_separation_bit,
)

__all__ = [
    "DEFAULT_DELTA",
    "DEFAULT_IND_BITS",
    "F2345",
    "KDF_BACKEND",
    "KECCAK_BACKEND",
    "NULL_SCHEME",
    "PROFILE_A",
    "PROFILE_B",
    "RESYNC_AMF",
    "VERDICTS",
    "AkaFunctions",
    "AkaResponse",
    "AucSqnState",
    "Diagnosis",
    "EapAkaPrimeVector",
    "EpsVector",
    "HeAv5g",
    "HomeNetworkKey",
    "Hypothesis",
    "MacFailure",
    "Milenage",
    "MilenageOutput",
    "RandSource",
    "SeAv5g",
    "Suci",
    "SyncFailure",
    "Tuak",
    "TuakF2345",
    "TuakOutput",
    "UmtsVector",
    "Usim",
    "UsimSqnArray",
    "build_autn",
    "build_auts",
    "ck_ik_prime",
    "compute_opc",
    "compute_topc",
    "conceal_imsi",
    "deconceal",
    "diagnose",
    "eap_aka_prime_vector",
    "eps_vector",
    "eps_vectors",
    "he_av_5g",
    "he_avs_5g",
    "hmac_sha256",
    "hres_star",
    "kasme",
    "kausf",
    "kdf",
    "keccak_f1600",
    "keccak_f1600_bytes",
    "keccak_f1600_reference",
    "kseaf",
    "parse_hex",
    "parse_suci",
    "plmn_id",
    "res_star",
    "resynchronise",
    "se_av_5g",
    "serving_network_name",
    "split_sqn",
    "umts_vector",
    "verify_auts",
    "with_separation_bit",
]
