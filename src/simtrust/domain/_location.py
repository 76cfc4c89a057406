"""Cell and tracking-area identities as the core network encodes them, as text keys.

The fraud detectors and the storm guard key a SIM's location by a short text
``cell`` (``ecgi:26201:1a2b3c4``); this module turns the binary encodings the
listeners receive into it:

* **PLMN** — 3 octets of BCD digits, TS 24.008 §10.5.1.13 (MCC digit 2 | MCC
  digit 1, MNC digit 3 | MCC digit 3, MNC digit 2 | MNC digit 1; MNC digit 3
  ``F`` for a two-digit MNC).
* **S6a** — E-UTRAN-Cell-Global-Identity (TS 29.272 §7.3.117: PLMN + 4 octets
  whose low 28 bits are the ECI, coded as TS 29.118 §9.4.3) and
  Tracking-Area-Identity (§7.3.118: PLMN + 2-octet TAC).
* **RADIUS** — 3GPP-User-Location-Info (TS 29.061 §16.4.7.2, vendor 10415
  attribute 22): a Geographic Location Type octet, then the identity as TS
  29.274 §8.21 codes it: 0 CGI (PLMN, LAC, CI), 1 SAI (PLMN, LAC, SAC), 2 RAI
  (PLMN, LAC, RAC), 128 TAI (PLMN, TAC), 129 ECGI, 130 TAI and ECGI, 135 NCGI
  (PLMN + 36-bit NR cell identity), 136 5GS TAI (PLMN + 3-octet TAC), 137 5GS
  TAI and NCGI.

The most precise identity wins (a cell over an area). Anything malformed or
of an unknown type gives ``""``: a location is an optional hint, never a
reason to refuse the message that carried it.
"""

from __future__ import annotations

__all__ = ["cell_key", "plmn_from_bcd", "user_location_cell"]


def plmn_from_bcd(data: bytes) -> str:
    """MCC+MNC digits of a 3-octet BCD PLMN identity, or ``""`` if not valid BCD."""
    if len(data) != 3:
        return ""
    d = [data[0] & 0x0F, data[0] >> 4, data[1] & 0x0F, data[2] & 0x0F, data[2] >> 4,
         data[1] >> 4]
    mcc, mnc = d[:3], d[3:5] + ([] if d[5] == 0x0F else [d[5]])
    if any(x > 9 for x in mcc + mnc):
        return ""
    return "".join(map(str, mcc + mnc))


def cell_key(kind: str, data: bytes) -> str:
    """The text key of one identity (``ecgi``, ``tai``, ``ncgi``, ``5gtai``, ``cgi``, ``sai``,
    ``rai``) from its octets (PLMN first), or ``""`` when the length or digits are wrong."""
    want = {"ecgi": 7, "tai": 5, "ncgi": 8, "5gtai": 6, "cgi": 7, "sai": 7, "rai": 6}.get(kind)
    if want is None or len(data) != want:
        return ""
    plmn = plmn_from_bcd(data[:3])
    if not plmn:
        return ""
    rest = int.from_bytes(data[3:], "big")
    if kind == "ecgi":
        rest &= 0x0FFF_FFFF  # 4 spare bits, 28-bit ECI
    elif kind == "ncgi":
        rest &= 0x0F_FFFF_FFFF  # 4 spare bits, 36-bit NCI
    return f"{kind}:{plmn}:{rest:x}"


#: Geographic Location Type → the identities it carries, most precise first, with offsets.
_ULI_LAYOUT: dict[int, tuple[tuple[str, int, int], ...]] = {
    0: (("cgi", 0, 7),),
    1: (("sai", 0, 7),),
    2: (("rai", 0, 6),),
    128: (("tai", 0, 5),),
    129: (("ecgi", 0, 7),),
    130: (("ecgi", 5, 12), ("tai", 0, 5)),
    135: (("ncgi", 0, 8),),
    136: (("5gtai", 0, 6),),
    137: (("ncgi", 6, 14), ("5gtai", 0, 6)),
}


def user_location_cell(value: bytes) -> str:
    """The cell (or area) of a RADIUS 3GPP-User-Location-Info value, or ``""``."""
    if not value:
        return ""
    layout = _ULI_LAYOUT.get(value[0])
    body = value[1:]
    if layout is None or len(body) != max(end for _, _, end in layout):
        return ""
    for kind, start, end in layout:
        key = cell_key(kind, body[start:end])
        if key:
            return key
    return ""
