"""simtrust.domain: the values several packages exchange, typed once in the base layer.

Subscriber and equipment identifiers (:class:`Imsi`, :class:`Iccid`,
:class:`Imei`, :class:`ImeiSv`, :class:`Tac`, :class:`Plmn`; TS 23.003,
ITU-T E.118), the flow record every meter and exporter produces
(:class:`FlowRecord`, RFC 7012 information elements) and the device context
policy evaluation reads (:class:`DeviceContext`). Packages of the security
services layer (``subscriber``, ``policy``, ``detect``, ``flows``) meet on
these values instead of importing each other.
"""

from simtrust.domain._device import DeviceContext
from simtrust.domain._flow import PROTO_ICMP, PROTO_TCP, PROTO_UDP, FlowRecord
from simtrust.domain._identifiers import (
    THREE_DIGIT_MNC_MCCS,
    Iccid,
    Imei,
    ImeiSv,
    Imsi,
    ImsiDigits,
    Plmn,
    Tac,
    imsi_digits,
    luhn_check_digit,
    parse_equipment,
)
from simtrust.domain._location import cell_key, plmn_from_bcd, user_location_cell

__all__ = [
    "PROTO_ICMP",
    "PROTO_TCP",
    "PROTO_UDP",
    "THREE_DIGIT_MNC_MCCS",
    "DeviceContext",
    "FlowRecord",
    "Iccid",
    "Imei",
    "ImeiSv",
    "Imsi",
    "ImsiDigits",
    "Plmn",
    "Tac",
    "cell_key",
    "imsi_digits",
    "luhn_check_digit",
    "parse_equipment",
    "plmn_from_bcd",
    "user_location_cell",
]
