"""SUCI (TS 33.501 Annex C, TS 23.003 §2.2B): C.4 test data, round trips, rejections, fuzzing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.errors import DecryptionFailed, InvalidIdentifier, InvalidInput, UnknownKey
from simtrust.subscriber.auc.suci import (
    PROFILE_A,
    PROFILE_B,
    HomeNetworkKey,
    conceal_imsi,
    decode_msin,
    deconceal,
    ecies_decrypt,
    encode_msin,
    parse_suci,
)
from tests.subscriber.auc.conftest import h


def _c4(data_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((data_dir / "ts33501_annex_c4.json").read_text())
    return data


def test_profile_a_reproduces_c43(data_dir: Path) -> None:
    v = _c4(data_dir)["profile_a"]
    key = HomeNetworkKey.from_private_bytes(PROFILE_A, 1, h(v["home_network_private_key"]))
    assert v["home_network_public_key"] == key.public_bytes.hex()
    assert v["eph_shared_key"] == key.shared_secret(h(v["eph_public_key"])).hex()
    assert h(v["plaintext_block"]) == encode_msin(v["msin"])
    suci = conceal_imsi(
        v["mcc"] + v["mnc"] + v["msin"],
        3,
        scheme=PROFILE_A,
        key_id=1,
        hn_public_key=key.public_bytes,
        ephemeral_private_key=h(v["eph_private_key"]),
    )
    assert v["scheme_output"] == suci.scheme_output
    assert v["eph_public_key"] + v["ciphertext"] + v["mac_tag"] == suci.scheme_output
    assert f"imsi-{v['mcc']}{v['mnc']}{v['msin']}" == deconceal(suci, {1: key})


def test_profile_b_reproduces_c44(data_dir: Path) -> None:
    v = _c4(data_dir)["profile_b"]
    key = HomeNetworkKey.from_private_bytes(PROFILE_B, 2, h(v["home_network_private_key"]))
    assert v["home_network_public_key_compressed"] == key.public_bytes.hex()
    assert v["eph_shared_key"] == key.shared_secret(h(v["eph_public_key_compressed"])).hex()
    for hn_public in ("home_network_public_key_compressed", "home_network_public_key_uncompressed"):
        suci = conceal_imsi(
            v["mcc"] + v["mnc"] + v["msin"],
            3,
            scheme=PROFILE_B,
            key_id=2,
            hn_public_key=h(v[hn_public]),
            ephemeral_private_key=h(v["eph_private_key"]),
        )
        assert v["scheme_output"] == suci.scheme_output
    text = f"suci-0-{v['mcc']}-{v['mnc']}-0-2-2-{v['scheme_output']}"
    assert f"imsi-{v['mcc']}{v['mnc']}{v['msin']}" == deconceal(text, {2: key})


def test_profile_b_rejects_an_uncompressed_ephemeral_key(data_dir: Path) -> None:
    v = _c4(data_dir)["profile_b"]
    key = HomeNetworkKey.from_private_bytes(PROFILE_B, 2, h(v["home_network_private_key"]))
    output = h(v["eph_public_key_uncompressed"] + v["ciphertext"] + v["mac_tag"])
    with pytest.raises(DecryptionFailed):
        ecies_decrypt(key, output)


def test_null_scheme() -> None:
    suci = conceal_imsi("imsi-2089300007487", 2, scheme=0)
    assert "suci-0-208-93-0-0-0-00007487" == str(suci)
    assert "imsi-2089300007487" == deconceal(str(suci), {})


def test_tampered_mac_is_rejected() -> None:
    key = HomeNetworkKey.generate(PROFILE_A, 3)
    suci = conceal_imsi("001010123456789", 2, key_id=3, hn_public_key=key.public_bytes)
    tampered = str(suci)[:-1] + ("0" if str(suci)[-1] != "0" else "1")
    with pytest.raises(DecryptionFailed):
        deconceal(tampered, {3: key})


def test_unknown_key_id_and_wrong_scheme() -> None:
    a = HomeNetworkKey.generate(PROFILE_A, 1)
    b = HomeNetworkKey.generate(PROFILE_B, 1)
    suci = conceal_imsi("001010123456789", 2, key_id=1, hn_public_key=a.public_bytes)
    with pytest.raises(UnknownKey):
        deconceal(suci, {2: a})
    with pytest.raises(UnknownKey):
        deconceal(suci, {1: b})
    assert "imsi-001010123456789" == deconceal(suci, lambda scheme, kid: a)


def test_key_repr_is_redacted() -> None:
    raw = bytes(range(1, 33))
    key = HomeNetworkKey.from_private_bytes(PROFILE_A, 9, raw)
    assert raw.hex() not in repr(key)
    assert "redacted" in repr(key)


@settings(max_examples=25)
@given(
    scheme=st.sampled_from([PROFILE_A, PROFILE_B]),
    msin=st.text(alphabet="0123456789", min_size=1, max_size=10),
    mnc_len=st.sampled_from([2, 3]),
    ri=st.text(alphabet="0123456789", min_size=1, max_size=4),
)
def test_conceal_deconceal_round_trip(scheme: int, msin: str, mnc_len: int, ri: str) -> None:
    key = HomeNetworkKey.generate(scheme, 7)
    imsi = ("310" + "4" * mnc_len + msin)[:15]
    if len(imsi) < 6:
        imsi += "0" * (6 - len(imsi))
    suci = conceal_imsi(imsi, mnc_len, routing_indicator=ri, scheme=scheme, key_id=7,
                        hn_public_key=key.public_bytes)  # fmt: skip
    assert suci == parse_suci(str(suci))
    assert f"imsi-{imsi}" == deconceal(str(suci), {7: key})


@given(st.text(alphabet="0123456789", min_size=1, max_size=10))
def test_msin_bcd_round_trip(msin: str) -> None:
    assert msin == decode_msin(encode_msin(msin))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("sui-0-208-93-0-0-0-1", "prefix"),
        ("suci-0-20-93-0-0-0-1", "mcc"),
        ("suci-0-208-9-0-0-0-1", "mnc"),
        ("suci-0-208-93-12345-0-0-1", "routing"),
        ("suci-0-208-93-0-g-0-1", "scheme"),
        ("suci-0-208-93-0-1-256-00", "key-id"),
        ("suci-0-208-93-0-0-1-1234", "key-id"),
        ("suci-0-208-93-0-1-0-00", "key-id"),
        ("suci-0-208-93-0-1-1-abc", "output"),
        ("suci-0-208-93-0-0-0-12ab", "output"),
        ("suci-9-208-93-0-0-0-1", "supi-type"),
        ("suci-0-208-93", "fields"),
    ],
)
def test_malformed_sucis_are_rejected_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier) as err:
        parse_suci(text)
    assert reason == err.value.context["reason"]


def test_nai_suci_with_null_scheme() -> None:
    suci = parse_suci("suci-1-iot.example-net.com-12-0-0-sensor17")
    assert "iot.example-net.com" == suci.home_network
    assert "nai-sensor17@iot.example-net.com" == deconceal(suci, {})


@given(st.text(max_size=120))
def test_parser_raises_only_invalid_identifier(text: str) -> None:
    reason = None
    try:
        parsed = parse_suci(text)
    except InvalidIdentifier as err:
        reason, parsed = err.context.get("reason"), None
    if parsed is None:
        assert reason
    else:
        assert parsed == parse_suci(str(parsed))


@settings(max_examples=60)
@given(st.binary(max_size=80))
def test_deconcealing_random_scheme_outputs_only_fails_cleanly(output: bytes) -> None:
    key = HomeNetworkKey.from_private_bytes(PROFILE_B, 1, bytes(31) + b"\x07")
    with pytest.raises(DecryptionFailed):
        ecies_decrypt(key, output)


def test_conceal_needs_the_public_key() -> None:
    with pytest.raises(InvalidInput):
        conceal_imsi("001010123456789", 2, scheme=PROFILE_A)
