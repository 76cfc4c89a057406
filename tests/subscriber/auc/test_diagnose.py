"""The attach-failure diagnosis names each common cause by the hypothesis that verifies."""

from __future__ import annotations

import pytest

from simtrust.errors import InvalidInput
from simtrust.subscriber.auc import Milenage, compute_opc, eps_vector, plmn_id
from simtrust.subscriber.auc.diagnose import VERDICTS, diagnose

K = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
OP = bytes.fromhex("cdc202d5123e20f62b6d676ac72cb318")
OPC = compute_opc(K, OP)
RAND = bytes(range(16))
SQN = ((100 << 5) | 3).to_bytes(6, "big")
SN = plmn_id("001", "01")


def challenge(amf: bytes = b"\x80\x00") -> tuple[bytes, bytes]:
    m = Milenage(K, OPC)
    f = m.f2345(RAND)
    autn = bytes(a ^ b for a, b in zip(SQN, f.ak, strict=True)) + amf + m.f1(RAND, SQN, amf)
    return RAND, autn


def test_matching_keys_are_ok() -> None:
    rand, autn = challenge()
    d = diagnose(K, rand, autn, opc=OPC)
    assert ("ok", True, SQN.hex()) == (d.verdict, d.mac_verifies, d.sqn)
    assert eps_vector(Milenage(K, OPC), SQN, b"\x80\x00", SN, RAND).autn == autn


def test_op_given_as_opc() -> None:
    rand, autn = challenge()
    d = diagnose(K, rand, autn, opc=OP)
    assert "op-given-as-opc" == d.verdict
    assert [False, True] == [h.mac_verifies for h in d.tried]


def test_opc_given_as_op() -> None:
    rand, autn = challenge()
    assert "opc-given-as-op" == diagnose(K, rand, autn, op=OPC).verdict


def test_op_given_correctly_as_op_is_ok() -> None:
    rand, autn = challenge()
    assert "ok" == diagnose(K, rand, autn, op=OP).verdict


def test_k_and_opc_swapped() -> None:
    rand, autn = challenge()
    assert "k-op-swapped" == diagnose(OPC, rand, autn, opc=K).verdict


def test_wrong_k() -> None:
    rand, autn = challenge()
    d = diagnose(bytes(16), rand, autn, opc=OPC)
    assert ("wrong-k", False, None) == (d.verdict, d.mac_verifies, d.sqn)
    assert all(not h.mac_verifies for h in d.tried)


def test_sqn_not_fresh_needs_resync() -> None:
    rand, autn = challenge()
    d = diagnose(K, rand, autn, opc=OPC, sqn_ms=((150 << 5) | 1).to_bytes(6, "big"))
    assert "sqn-resync" == d.verdict
    assert "150" in d.explanation


def test_sqn_out_of_window() -> None:
    rand, autn = challenge()
    d = diagnose(K, rand, autn, opc=OPC, sqn_ms=(1).to_bytes(6, "big"), delta=50)
    assert "sqn-out-of-window" == d.verdict


def test_amf_in_autn_differs_from_the_mac_input() -> None:
    rand, autn = challenge(b"\x80\x00")
    sent = autn[:6] + b"\x80\x01" + autn[8:]
    d = diagnose(K, rand, sent, opc=OPC)
    assert "amf-mismatch" == d.verdict
    assert "8000" in d.explanation


def test_amf_differs_from_the_profile() -> None:
    rand, autn = challenge(b"\x90\x01")
    d = diagnose(K, rand, autn, opc=OPC, expected_amf=b"\x80\x00")
    assert "amf-mismatch" == d.verdict


def test_amf_without_separation_bit() -> None:
    rand, autn = challenge(b"\x00\x00")
    assert "amf-separation-bit" == diagnose(K, rand, autn, opc=OPC).verdict
    assert "ok" == diagnose(K, rand, autn, opc=OPC, require_separation_bit=False).verdict


def test_every_verdict_is_explained_and_json_is_plain() -> None:
    rand, autn = challenge()
    data = diagnose(K, rand, autn, opc=OP).to_json()
    assert VERDICTS["op-given-as-opc"] == data["explanation"]
    assert {"verdict", "explanation", "mac_verifies", "sqn", "amf", "tried"} == set(data)
    assert K.hex() not in str(data)


def test_exactly_one_of_op_and_opc() -> None:
    rand, autn = challenge()
    with pytest.raises(InvalidInput):
        diagnose(K, rand, autn)
    with pytest.raises(InvalidInput):
        diagnose(K, rand, autn, op=OP, opc=OPC)
