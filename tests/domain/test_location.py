"""Cell and tracking-area identities (TS 24.008 §10.5.1.13 PLMN, TS 29.272 §7.3.117/118,
TS 29.061 §16.4.7.2 with TS 29.274 §8.21) decode to text keys; anything else to ``""``.

The expected values are worked by hand from the specifications' layouts; tshark,
an independent decoder, reads the same 3GPP-User-Location-Info octets in
``tests/aaa/test_fraud_live.py``.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from simtrust.domain import cell_key, plmn_from_bcd, user_location_cell

DE = bytes.fromhex("62f210")  # MCC 262, MNC 01 (two digits: filler F)
US = bytes.fromhex("130062")  # MCC 310, MNC 260 (three digits)


def test_plmn_bcd() -> None:
    assert "26201" == plmn_from_bcd(DE)
    assert "310260" == plmn_from_bcd(US)
    assert "" == plmn_from_bcd(bytes.fromhex("6af210"))  # not a digit
    assert "" == plmn_from_bcd(b"\x62\xf2")


def test_s6a_identities() -> None:
    # the 4 spare bits of an ECGI are dropped; the ECI is 28 bits
    assert "ecgi:26201:1a2b3c4" == cell_key("ecgi", DE + bytes.fromhex("f1a2b3c4"))
    assert "tai:310260:1234" == cell_key("tai", US + bytes.fromhex("1234"))
    assert "" == cell_key("ecgi", DE + b"\x01\x02")
    assert "" == cell_key("nope", DE + b"\x01\x02")


def test_user_location_info_types() -> None:
    ecgi = DE + bytes.fromhex("01a2b3c4")
    tai = DE + bytes.fromhex("00ff")
    assert "tai:26201:ff" == user_location_cell(b"\x80" + tai)
    assert "ecgi:26201:1a2b3c4" == user_location_cell(b"\x81" + ecgi)
    assert "ecgi:26201:1a2b3c4" == user_location_cell(b"\x82" + tai + ecgi)  # the cell wins
    assert "cgi:26201:12340056" == user_location_cell(b"\x00" + DE + bytes.fromhex("12340056"))
    # 5G: NR cell identity (36 bits) and the 3-octet 5GS TAC
    assert "ncgi:26201:123456789" == user_location_cell(
        b"\x87" + DE + bytes.fromhex("f123456789"))
    assert "5gtai:26201:abcdef" == user_location_cell(b"\x88" + DE + bytes.fromhex("abcdef"))
    assert "" == user_location_cell(b"\x81" + ecgi[:-1])  # short
    assert "" == user_location_cell(b"\x7f" + ecgi)  # unknown type
    assert "" == user_location_cell(b"")


@given(st.binary(max_size=24))
def test_any_octets_decode_or_give_nothing(data: bytes) -> None:
    key = user_location_cell(data)
    assert key == "" or key.split(":")[0] in {"cgi", "sai", "rai", "tai", "ecgi", "ncgi",
                                               "5gtai"}
    for kind in ("ecgi", "tai", "ncgi", "5gtai"):
        assert isinstance(cell_key(kind, data), str)
