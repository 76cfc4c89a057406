"""AuC vector generation on one core, next to this machine's AES-128 block rate.

Figures (issue 4): ``metrics.eps_vectors_per_s`` (MILENAGE EPS-AKA vectors:
RAND, XRES, AUTN, K_ASME), ``metrics.fiveg_vectors_per_s`` (5G HE AVs: RAND,
AUTN, XRES*, K_AUSF), ``metrics.tuak_vectors_per_s`` (TUAK EPS-AKA vectors),
``limits.aes_blocks_per_s`` (one 16-octet AES-128 ECB ``update`` call through
``cryptography``, the library MILENAGE uses) and ``ratios.eps_to_bound`` with
bound = aes_blocks_per_s / 6 (six kernel blocks per vector done one by one).

Vectors are generated the way the AuC serves a request for several vectors of
one SIM (``BATCH`` per call, SQNs from the SIM's state); the one-vector-per-call
rate is reported as ``metrics.eps_single_vectors_per_s`` (and for one 5G HE AV
per request, as a UDM serves Nudm_UEAU, ``metrics.fiveg_single_vectors_per_s``),
and the MILENAGE part
alone (SQNs, RANDs and the kernel records: MAC-A, SQN ⊕ AK, XRES, CK, IK; no
K_ASME) as ``metrics.milenage_kernel_vectors_per_s``. Rates are per CPU
second of this process, each the best of several interleaved rounds, so a
neighbour's burst on this shared machine hits the limit and the metric alike.

The bound counts AES blocks only. K_ASME (and for 5G, XRES* and K_AUSF) is an
HMAC-SHA-256 per vector on top of them (TS 33.401 A.2, TS 33.501 A.2/A.4), work
the bound leaves out, so the AuC may do it as cheaply as it can: in the C
extension on OpenSSL's SHA-256 when it is built (``notes.kdf = "native"``),
else in Python (``"python"``). The limit is measured the same way either way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from simtrust.benchmark import BenchResult
from simtrust.subscriber.auc import (
    KDF_BACKEND,
    KECCAK_BACKEND,
    AucSqnState,
    Milenage,
    Tuak,
    eps_vector,
    eps_vectors,
    he_avs_5g,
    plmn_id,
    serving_network_name,
)

NAME = "auc"
DESCRIPTION = "MILENAGE/TUAK EPS-AKA and 5G-AKA vector generation vs the AES-128 block rate"

BATCH = 32


def _rate(step: Callable[[], int], seconds: float) -> float:
    """Items per CPU second of ``step`` (which returns how many items it made).

    CPU time of this process, not wall time: on a shared machine the wait for a
    core is not part of what one core can do.
    """
    done = 0
    clock = time.process_time
    start = clock()
    deadline = start + seconds
    while True:
        done += step()
        now = clock()
        if now >= deadline:
            return done / (now - start)


def run(quick: bool) -> BenchResult:
    seconds = 0.05 if quick else 0.5
    rounds = 2 if quick else 6
    k, opc = os.urandom(16), os.urandom(16)
    mil = Milenage(k, opc)
    tuak = Tuak(os.urandom(16), os.urandom(32))
    sn_id = plmn_id("208", "93")
    sn_name = serving_network_name("208", "93")

    # A single-block AES-128 ECB encryptor of the same library, as MILENAGE uses it.
    enc_update = Cipher(algorithms.AES(k), modes.ECB()).encryptor().update
    block = os.urandom(16)

    def aes_step() -> int:
        for _ in range(1000):
            enc_update(block)
        return 1000

    state = {name: AucSqnState() for name in ("eps", "5g", "5g1", "tuak", "kernel")}

    def eps_step() -> int:
        _, state["eps"] = eps_vectors(mil, state["eps"], BATCH, sn_id)
        return BATCH

    def kernel_step() -> int:
        sqns, state["kernel"] = state["kernel"].issue_joined(BATCH)
        mil.kernel_batch(os.urandom(16 * BATCH), sqns, b"\x80\x00")
        return BATCH

    def fiveg_step() -> int:
        _, state["5g"] = he_avs_5g(mil, state["5g"], BATCH, sn_name)
        return BATCH

    def tuak_step() -> int:
        _, state["tuak"] = eps_vectors(tuak, state["tuak"], 4, sn_id)
        return 4

    sqn = bytes(6)
    rand = os.urandom(16)

    def single_step() -> int:
        for _ in range(100):
            eps_vector(mil, sqn, b"\x80\x00", sn_id, rand)
        return 100

    def fiveg_single_step() -> int:
        # What a UDM does per Nudm_UEAU request: one HE AV, SQN from the SIM's state.
        for _ in range(100):
            _, state["5g1"] = he_avs_5g(mil, state["5g1"], 1, sn_name)
        return 100

    steps = {
        "aes": aes_step,
        "eps": eps_step,
        "5g": fiveg_step,
        "single": single_step,
        "5g1": fiveg_single_step,
        "kernel": kernel_step,
    }
    best = dict.fromkeys(steps, 0.0)
    for _ in range(rounds):
        for name, step in steps.items():
            best[name] = max(best[name], _rate(step, seconds))
    tuak_rate = max(_rate(tuak_step, seconds) for _ in range(2))

    result = BenchResult(bench=NAME)
    result.limits["aes_blocks_per_s"] = round(best["aes"], 1)
    result.metrics["eps_vectors_per_s"] = round(best["eps"], 1)
    result.metrics["fiveg_vectors_per_s"] = round(best["5g"], 1)
    result.metrics["tuak_vectors_per_s"] = round(tuak_rate, 1)
    result.metrics["eps_single_vectors_per_s"] = round(best["single"], 1)
    result.metrics["fiveg_single_vectors_per_s"] = round(best["5g1"], 1)
    result.metrics["milenage_kernel_vectors_per_s"] = round(best["kernel"], 1)
    result.ratio("eps_to_bound", "eps_vectors_per_s", "aes_blocks_per_s", divisor=6)
    result.ratio("eps_single_to_bound", "eps_single_vectors_per_s", "aes_blocks_per_s", divisor=6)
    result.ratio("kernel_to_bound", "milenage_kernel_vectors_per_s", "aes_blocks_per_s", divisor=6)
    result.notes.update(
        {
            "batch": BATCH,
            "rounds": rounds,
            "seconds_per_round": seconds,
            "clock": "process CPU time",
            "fiveg": "HE AV (RAND, AUTN, XRES*, K_AUSF) per TS 33.501 §6.1.3.2",
            "kernel": "issue SQNs + RANDs + Milenage.kernel_batch, no key derivation",
            "tuak": "EPS vectors, 64-bit MAC/RES, 128-bit CK/IK, 1 Keccak iteration",
            "kdf": KDF_BACKEND,
            "keccak": KECCAK_BACKEND,
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        }
    )
    return result


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv).to_json()))
