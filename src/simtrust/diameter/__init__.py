"""Diameter for the core network: the HSS on S6a and the EIR on S13 (RFC 6733, TS 29.272).

The codec (:mod:`._codec`), the vocabulary (:mod:`._dictionary`), the node
with capabilities exchange, watchdog and dispatch (:mod:`._node`) and the
S6a/S13 applications over the subscriber package's HSS and EIR services
(:mod:`._apps`). ``simtrust serve`` starts a :class:`DiameterListener` when
``SIMTRUST_DIAMETER_BIND`` is set (docs/core-network.md).
"""

from simtrust.diameter._apps import CoreNetworkApps, decode_plmn, encode_plmn, subscription_data
from simtrust.diameter._codec import Avp, DiameterError, Message, decode_avps, decode_message
from simtrust.diameter._listener import DiameterListener
from simtrust.diameter._node import (
    DiameterNode,
    Handler,
    NodeSettings,
    PeerInfo,
    answer_to,
    tls_context,
)

__all__ = [
    "Avp",
    "CoreNetworkApps",
    "DiameterError",
    "DiameterListener",
    "DiameterNode",
    "Handler",
    "Message",
    "NodeSettings",
    "PeerInfo",
    "answer_to",
    "decode_avps",
    "decode_message",
    "decode_plmn",
    "encode_plmn",
    "subscription_data",
    "tls_context",
]
