"""TS 33.220 / TS 33.535 key derivations against a second, independent encoding of the KDF."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.bootstrap import (
    UA_DIGEST_OVER_TLS,
    NafId,
    a_kid,
    a_tid,
    b_tid,
    impi_from_imsi,
    k_af,
    k_akma,
    ks_from_ck_ik,
    ks_naf,
    rand_of_b_tid,
)
from simtrust.errors import InvalidInput
from simtrust.subscriber.auc import kdf


def reference_kdf(key: bytes, fc: int, *params: bytes) -> bytes:
    """TS 33.220 Annex B.2.0 written out independently: S = FC || P0 || L0 || ... ."""
    s = struct.pack("B", fc)
    for p in params:
        s += p + struct.pack(">H", len(p))
    return hmac.new(key, s, hashlib.sha256).digest()


RAND = bytes.fromhex("23553cbe9637a89d218ae64dae47bf35")
CK = bytes.fromhex("b40ba9a3c58b2a05bbf0d987b21bf8cb")
IK = bytes.fromhex("f769bcd751044604127672711c6d3441")
IMPI = "001010123456789@ims.mnc001.mcc001.3gppnetwork.org"


def test_ks_naf_layout_is_annex_b3() -> None:
    ks = ks_from_ck_ik(CK, IK)
    naf = NafId("naf.example.com")
    naf_id = b"naf.example.com" + bytes((0x01, 0x00, 0x01, 0x00, 0x00))
    assert naf_id == naf.encode()
    expected = reference_kdf(CK + IK, 0x01, b"gba-me", RAND, IMPI.encode(), naf_id)
    assert expected == ks_naf(ks, RAND, IMPI, naf)
    # The S string spelled out byte by byte for one case (FC, P0 "gba-me", L0 = 0x0006, ...).
    s = (b"\x01" + b"gba-me" + b"\x00\x06" + RAND + b"\x00\x10" + IMPI.encode()
         + len(IMPI).to_bytes(2, "big") + naf_id + len(naf_id).to_bytes(2, "big"))
    assert hmac.new(CK + IK, s, hashlib.sha256).digest() == ks_naf(ks, RAND, IMPI, naf)


def test_ua_protocol_changes_the_key() -> None:
    ks = ks_from_ck_ik(CK, IK)
    plain = NafId("naf.example.com", bytes((1, 0, 0, 0, 2)))
    assert ks_naf(ks, RAND, IMPI, plain) != ks_naf(ks, RAND, IMPI, NafId("naf.example.com"))
    assert UA_DIGEST_OVER_TLS == NafId("x.example").ua_protocol


def test_akma_derivations_are_annex_a() -> None:
    k_ausf = bytes(range(32))
    supi = "imsi-001010123456789"
    assert reference_kdf(k_ausf, 0x80, b"AKMA", b"001010123456789") == k_akma(k_ausf, supi)
    assert reference_kdf(k_ausf, 0x81, b"A-TID", b"001010123456789") == a_tid(k_ausf, supi)
    af = NafId("af.example.com")
    kakma = k_akma(k_ausf, supi)
    assert reference_kdf(kakma, 0x82, af.encode()) == k_af(kakma, af)
    akid = a_kid(a_tid(k_ausf, supi), "0", "5gc.mnc001.mcc001.3gppnetwork.org")
    user, realm = akid.split("@")
    assert "5gc.mnc001.mcc001.3gppnetwork.org" == realm
    assert a_tid(k_ausf, supi) == base64.b64decode(user.split(".", 1)[1])


def test_b_tid_and_impi_formats() -> None:
    value = b_tid(RAND, "bsf.mnc001.mcc001.pub.3gppnetwork.org")
    assert base64.b64encode(RAND).decode() + "@bsf.mnc001.mcc001.pub.3gppnetwork.org" == value
    assert RAND == rand_of_b_tid(value)
    assert IMPI == impi_from_imsi("001010123456789", 2)
    assert "310150123456789@ims.mnc150.mcc310.3gppnetwork.org" == impi_from_imsi(
        "310150123456789", 3)
    for bad in ("", "no-at-sign", "!!!@x", base64.b64encode(b"short").decode() + "@x"):
        with pytest.raises(InvalidInput):
            rand_of_b_tid(bad)
    with pytest.raises(InvalidInput):
        NafId("bad fqdn")
    with pytest.raises(InvalidInput):
        NafId("naf.example.com", b"\x01")


@settings(max_examples=100, deadline=None)
@given(key=st.binary(min_size=1, max_size=64), fc=st.integers(0, 255),
       params=st.lists(st.binary(max_size=300), max_size=5))
def test_generic_kdf_matches_the_reference(key: bytes, fc: int, params: list[bytes]) -> None:
    assert reference_kdf(key, fc, *params) == kdf(key, fc, *params)
