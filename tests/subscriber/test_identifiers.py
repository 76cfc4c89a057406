"""Typed identifiers: one validating constructor each, reasons on bad input, property tests."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simtrust.errors import InvalidIdentifier
from simtrust.subscriber import (
    Iccid,
    Imei,
    ImeiSv,
    Imsi,
    Plmn,
    Tac,
    luhn_check_digit,
    parse_equipment,
)

digits = st.text(alphabet="0123456789", min_size=1, max_size=22)


def with_luhn(body: str) -> str:
    return body + str(luhn_check_digit(body))


def test_luhn_known_values() -> None:
    # ISO/IEC 7812 example and the IMEI of TS 23.003 Annex B (check digit 8).
    assert 3 == luhn_check_digit("7992739871")
    assert 8 == luhn_check_digit("49015420323751")


def test_imei_annex_b_example() -> None:
    imei = Imei("490154203237518")
    assert "49015420" == str(imei.tac)
    assert "323751" == imei.snr


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("490154203237519", "check-digit"),
        ("49015420323751", "length"),
        ("4901542032375180", "length"),
        ("49015420323751a", "non-digit"),
        ("", "empty"),
    ],
)
def test_imei_rejects_with_reason(value: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        Imei(value)
    assert reason == info.value.context["reason"]
    assert "IMEI" == info.value.context["kind"]


def test_imeisv_gives_imei_and_tac() -> None:
    sv = ImeiSv("4901542032375101")
    assert Imei("490154203237518") == sv.imei
    assert "01" == sv.svn
    assert Tac("49015420") == sv.tac


def test_imeisv_reserved_svn() -> None:
    with pytest.raises(InvalidIdentifier) as info:
        ImeiSv("4901542032375199")
    assert "svn" == info.value.context["reason"]


def test_parse_equipment_by_length() -> None:
    assert isinstance(parse_equipment("490154203237518"), Imei)
    assert isinstance(parse_equipment("4901542032375101"), ImeiSv)


def test_iccid_rules() -> None:
    body = "8944110000000000001"[:18]
    good = with_luhn(body)
    assert good == str(Iccid(good))
    assert good == str(Iccid(good + "F"))  # EF_ICCID filler
    bad_check = good[:-1] + str((int(good[-1]) + 1) % 10)
    for value, reason in (
        (bad_check, "check-digit"),
        (with_luhn("7944110000000000001"[:18]), "prefix"),
        ("89441100", "length"),
        (with_luhn("89" * 10), "length"),
    ):
        with pytest.raises(InvalidIdentifier) as info:
            Iccid(value)
        assert reason == info.value.context["reason"], value


def test_imsi_parts_and_mnc_inference() -> None:
    eu = Imsi("262011234567890")
    assert ("262", "01", "1234567890") == (eu.mcc, eu.mnc, eu.msin)
    us = Imsi("310410123456789")
    assert ("310", "410") == (us.mcc, us.mnc)
    stated = Imsi("001001123456789", mnc_length=3)
    assert Plmn("001", "001") == stated.plmn
    assert "imsi-001001123456789" == stated.supi
    with pytest.raises(InvalidIdentifier) as info:
        Imsi("0010112345678901")
    assert "length" == info.value.context["reason"]
    with pytest.raises(InvalidIdentifier):
        Imsi("00101123", mnc_length=4)


def test_plmn_parse_forms() -> None:
    assert Plmn("001", "01") == Plmn.parse("00101")
    assert Plmn("310", "410") == Plmn.parse("310410")
    assert Plmn("001", "001") == Plmn.parse("001-001")
    assert "5G:mnc001.mcc001.3gppnetwork.org" == Plmn("001", "01").serving_network_name
    with pytest.raises(InvalidIdentifier):
        Plmn.parse("0010")


def test_identifiers_are_immutable() -> None:
    imei = Imei("490154203237518")
    with pytest.raises(dataclasses.FrozenInstanceError):
        imei.value = "1"  # type: ignore[misc]


@given(st.text(alphabet="0123456789", min_size=14, max_size=14))
def test_imei_roundtrip(body: str) -> None:
    imei = Imei(with_luhn(body))
    assert body == imei.value[:14]
    assert imei == Imei.from_tac_snr(body[:8], body[8:])


@given(st.text(alphabet="0123456789", min_size=14, max_size=14), st.integers(1, 9))
def test_imei_any_single_digit_change_is_caught(body: str, delta: int) -> None:
    good = with_luhn(body)
    for position in range(15):
        changed = good[:position] + str((int(good[position]) + delta) % 10) + good[position + 1:]
        with pytest.raises(InvalidIdentifier):
            Imei(changed)


@given(st.text(alphabet="0123456789", min_size=16, max_size=17))
def test_iccid_roundtrip(tail: str) -> None:
    value = with_luhn("89" + tail)
    assert value == Iccid(value).value


@given(st.text(max_size=30))
def test_constructors_raise_only_invalid_identifier(text: str) -> None:
    reasons = []
    for parse in (Imei, ImeiSv, Iccid, Imsi, Tac, Plmn.parse):
        try:
            parse(text)
        except InvalidIdentifier as exc:
            reasons.append(exc.context["reason"])
    assert all(reasons)


@given(digits)
def test_valid_digit_strings_keep_their_value(value: str) -> None:
    try:
        parsed = Imsi(value)
    except InvalidIdentifier:
        assert not 6 <= len(value) <= 15
    else:
        assert value == parsed.mcc + parsed.mnc + parsed.msin
