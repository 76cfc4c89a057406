"""Streams: authenticated data channels with provenance and a data-confidence score.

Authors publish signed, hash-chained messages on channels (public, or private
with HPKE keyloads); readers verify each frame and say what is wrong with it;
batches are anchored on the ledger so one message can be proven later;
annotations signed by the components that saw a datum score how far it can
be trusted (docs/streams.md).
"""

from simtrust.streams._anchor import (
    AnchoredBatch,
    BatchAnchorer,
    stream_domain,
    verify_message_proof,
)
from simtrust.streams._channel import (
    Author,
    SubscriberKey,
    decode_keyload,
    open_payload,
    recipient_id,
)
from simtrust.streams._devices import (
    DeviceBinding,
    DeviceCredentials,
    IdentityDeviceCredentials,
)
from simtrust.streams._energy import (
    Clearing,
    Order,
    Payment,
    Trade,
    clear,
    delivered_wh,
    settle,
)
from simtrust.streams._escrow import ClearingHouse, Escrow, NodeClearingHouse
from simtrust.streams._evidence import ClientCertificate, TlsDelivery
from simtrust.streams._frame import (
    HEADER_SIZE,
    MAX_FRAME,
    MAX_PAYLOAD,
    Frame,
    FrameKind,
    decode_frame,
    frame_id,
)
from simtrust.streams._keys import SodiumSigner
from simtrust.streams._ledger_proof import did_ed25519_keys, prove_reading_on_ledger
from simtrust.streams._market import DEFAULT_INTERVAL_SECONDS, DEFAULT_THRESHOLD, EnergyMarket
from simtrust.streams._meter import (
    MeterAlert,
    MeterReading,
    MeterWatch,
    decode_reading,
    encode_reading,
)
from simtrust.streams._mqtt import (
    MqttChannelPublisher,
    MqttChannelSubscriber,
    MqttStreamIngest,
    channel_topic,
)
from simtrust.streams._picture import provenance_svg
from simtrust.streams._provenance import (
    ANNOTATION_KINDS,
    DEFAULT_WEIGHTS,
    Annotation,
    ConfidencePolicy,
    Datum,
    ProvenanceGraph,
    sign_annotation,
)
from simtrust.streams._reader import VERDICTS, Delivery, Reader
from simtrust.streams._service import SimRef, StreamService
from simtrust.streams._tls_receipts import tls_domain, verify_tls_receipt

__all__ = [
    "ANNOTATION_KINDS",
    "DEFAULT_INTERVAL_SECONDS",
    "DEFAULT_THRESHOLD",
    "DEFAULT_WEIGHTS",
    "HEADER_SIZE",
    "MAX_FRAME",
    "MAX_PAYLOAD",
    "VERDICTS",
    "AnchoredBatch",
    "Annotation",
    "Author",
    "BatchAnchorer",
    "Clearing",
    "ClearingHouse",
    "ClientCertificate",
    "ConfidencePolicy",
    "Datum",
    "Delivery",
    "DeviceBinding",
    "DeviceCredentials",
    "EnergyMarket",
    "Escrow",
    "Frame",
    "FrameKind",
    "IdentityDeviceCredentials",
    "MeterAlert",
    "MeterReading",
    "MeterWatch",
    "MqttChannelPublisher",
    "MqttChannelSubscriber",
    "MqttStreamIngest",
    "NodeClearingHouse",
    "Order",
    "Payment",
    "ProvenanceGraph",
    "Reader",
    "SimRef",
    "SodiumSigner",
    "StreamService",
    "SubscriberKey",
    "TlsDelivery",
    "Trade",
    "channel_topic",
    "clear",
    "decode_frame",
    "decode_keyload",
    "decode_reading",
    "delivered_wh",
    "did_ed25519_keys",
    "encode_reading",
    "frame_id",
    "open_payload",
    "prove_reading_on_ledger",
    "provenance_svg",
    "recipient_id",
    "settle",
    "sign_annotation",
    "stream_domain",
    "tls_domain",
    "verify_message_proof",
    "verify_tls_receipt",
]
