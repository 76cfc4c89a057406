"""Diagnosis of a failed attach from the captured challenge (RAND, AUTN).

The usual field failures behind "MAC failure" / "synch failure" (TS 24.301
§5.4.2.6, TS 33.102 §6.3.3): OP provisioned where OPc was expected or the
reverse, K and OP swapped, a wrong K, an AMF that differs from the one the MAC
was computed over, an AMF without the separation bit (TS 33.401 §6.1.2), and
SQN drift (not fresh, or beyond Δ, TS 33.102 Annex C.2). Each hypothesis is
tried with MILENAGE; the first one under which MAC-A verifies names the cause.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from simtrust.errors import InvalidInput
from simtrust.subscriber.auc._util import check_len, xor
from simtrust.subscriber.auc.milenage import Milenage
from simtrust.subscriber.auc.sqn import DEFAULT_DELTA, DEFAULT_IND_BITS, split_sqn

__all__ = ["VERDICTS", "Diagnosis", "Hypothesis", "diagnose"]

VERDICTS = {
    "ok": "MAC-A verifies and SQN is acceptable: the keys match; look elsewhere.",
    "op-given-as-opc": "The value provisioned as OPc is the OP: derive OPc = E_K(OP) ⊕ OP.",
    "opc-given-as-op": "The value provisioned as OP is already OPc: store it as OPc.",
    "k-op-swapped": "K and OP/OPc are swapped in the provisioning data.",
    "amf-mismatch": "MAC-A verifies only over a different AMF than the one in AUTN.",
    "amf-separation-bit": "AMF separation bit is 0: EPS/5G UEs reject the vector.",
    "sqn-resync": "SQN is not above the SIM's: the USIM answers synch failure (AUTS).",
    "sqn-out-of-window": "SQN is more than Δ ahead of the SIM's: synch failure (AUTS).",
    "wrong-k": "No hypothesis verifies: K (or OP/OPc) differs from the network's, "
    "or RAND and AUTN are not from the same challenge.",
}

_COMMON_AMFS = (b"\x80\x00", b"\x00\x00", b"\x90\x01", b"\xb9\xb9", b"\xff\xff")


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """One configuration tried and whether MAC-A verified under it."""

    name: str
    mac_verifies: bool
    sqn: str | None = None


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """The verdict (a key of :data:`VERDICTS`), why, and every hypothesis tried."""

    verdict: str
    explanation: str
    mac_verifies: bool
    sqn: str | None
    amf: str
    tried: tuple[Hypothesis, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "explanation": self.explanation,
            "mac_verifies": self.mac_verifies,
            "sqn": self.sqn,
            "amf": self.amf,
            "tried": [
                {"name": h.name, "mac_verifies": h.mac_verifies, "sqn": h.sqn} for h in self.tried
            ],
        }


def _mac_ok(m: Milenage, rand: bytes, autn: bytes, amf: bytes) -> tuple[bool, bytes]:
    sqn = xor(autn[:6], m.f2345(rand).ak)
    return hmac.compare_digest(m.f1(rand, sqn, amf), autn[8:16]), sqn


def diagnose(
    k: bytes,
    rand: bytes,
    autn: bytes,
    *,
    op: bytes | None = None,
    opc: bytes | None = None,
    sqn_ms: bytes | None = None,
    expected_amf: bytes | None = None,
    require_separation_bit: bool = True,
    ind_bits: int = DEFAULT_IND_BITS,
    delta: int = DEFAULT_DELTA,
) -> Diagnosis:
    """Explain a failed MILENAGE challenge. Exactly one of ``op``/``opc`` is given.

    ``sqn_ms`` is the highest SQN the SIM accepted (from its EF or an AUTS),
    ``expected_amf`` the AMF the subscriber profile should use. SQN freshness is
    judged against that highest SEQ, as a USIM applying the age limit L does
    (C.2.3); without L a USIM could still accept an older SEQ on an unused IND.
    """
    k = check_len("K", k, 16)
    rand = check_len("RAND", rand, 16)
    autn = check_len("AUTN", autn, 16)
    if op is not None and opc is None:
        value = check_len("OP", op, 16)
    elif opc is not None and op is None:
        value = check_len("OPc", opc, 16)
    else:
        raise InvalidInput("give exactly one of OP and OPc")
    if sqn_ms is not None:
        check_len("SQN_MS", sqn_ms, 6)
    if expected_amf is not None:
        check_len("AMF", expected_amf, 2)
    amf = autn[6:8]

    candidates: list[tuple[str, Milenage]] = []
    if op is not None:
        candidates += [
            ("as-given", Milenage.from_op(k, value)),
            ("opc-given-as-op", Milenage(k, value)),
            ("k-op-swapped", Milenage.from_op(value, k)),
        ]
    else:
        candidates += [
            ("as-given", Milenage(k, value)),
            ("op-given-as-opc", Milenage.from_op(k, value)),
            ("k-op-swapped", Milenage(value, k)),
        ]

    tried: list[Hypothesis] = []
    for name, m in candidates:
        ok, sqn = _mac_ok(m, rand, autn, amf)
        tried.append(Hypothesis(name, ok, sqn.hex() if ok else None))
        if not ok:
            continue
        if name != "as-given":
            return _result(name, True, sqn, amf, tried)
        return _after_mac(
            sqn, amf, tried, sqn_ms, expected_amf, require_separation_bit, ind_bits, delta
        )

    # MAC computed over another AMF than the one sent (HSS profile vs. AUTN).
    others = [a for a in (expected_amf, bytes((amf[0] ^ 0x80, amf[1])), *_COMMON_AMFS) if a]
    for name, m in candidates:
        for other in dict.fromkeys(others):
            if other == amf:
                continue
            ok, sqn = _mac_ok(m, rand, autn, other)
            label = f"{name}+amf-{other.hex()}"
            tried.append(Hypothesis(label, ok, sqn.hex() if ok else None))
            if ok:
                detail = (
                    f"{VERDICTS['amf-mismatch']} AUTN carries AMF {amf.hex()}, "
                    f"the MAC was computed over {other.hex()}"
                )
                if name != "as-given":
                    detail += f"; also {VERDICTS[name]}"
                return Diagnosis("amf-mismatch", detail, True, sqn.hex(), amf.hex(), tuple(tried))
    return _result("wrong-k", False, None, amf, tried)


def _result(
    verdict: str, ok: bool, sqn: bytes | None, amf: bytes, tried: list[Hypothesis], extra: str = ""
) -> Diagnosis:
    text = VERDICTS[verdict] + (f" {extra}" if extra else "")
    return Diagnosis(verdict, text, ok, sqn.hex() if sqn else None, amf.hex(), tuple(tried))


def _after_mac(
    sqn: bytes,
    amf: bytes,
    tried: list[Hypothesis],
    sqn_ms: bytes | None,
    expected_amf: bytes | None,
    require_separation_bit: bool,
    ind_bits: int,
    delta: int,
) -> Diagnosis:
    if require_separation_bit and not amf[0] & 0x80:
        return _result("amf-separation-bit", True, sqn, amf, tried)
    if expected_amf is not None and expected_amf != amf:
        return _result(
            "amf-mismatch", True, sqn, amf, tried,
            f"AUTN carries AMF {amf.hex()}, the profile expects {expected_amf.hex()}.",
        )  # fmt: skip
    if sqn_ms is not None:
        seq, _ = split_sqn(sqn, ind_bits)
        seq_ms, _ = split_sqn(sqn_ms, ind_bits)
        if seq <= seq_ms:
            return _result(
                "sqn-resync", True, sqn, amf, tried,
                f"SEQ {seq} ≤ SEQ_MS {seq_ms}; resynchronise from the AUTS.",
            )  # fmt: skip
        if seq - seq_ms > delta:
            return _result(
                "sqn-out-of-window", True, sqn, amf, tried,
                f"SEQ {seq} − SEQ_MS {seq_ms} > Δ {delta}.",
            )  # fmt: skip
    return _result("ok", True, sqn, amf, tried)
