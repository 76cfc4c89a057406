"""Channel frames over MQTT (OASIS MQTT 3.1.1/5, paho-mqtt) on a real broker.

One topic per channel and branch, ``<prefix>/<channel id hex>/<branch>``;
each frame is one message at QoS 1, its bytes unchanged (frames carry their
own signatures, so the broker is not trusted). The subscriber hands every
payload to its :class:`~simtrust.streams.Reader`, which never raises, so a
malformed or forged message on the topic cannot stop it.

:class:`MqttStreamIngest` feeds every channel topic into the stored streams
service. It acknowledges a message (PUBACK, manual acknowledgement) only once
the service stored it or refused it for good, and keeps a persistent session,
so a frame the broker holds as delivered is on disk: acknowledged = durable
over MQTT as over HTTP. A store failure leaves the message unacknowledged for
the broker to deliver again.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simtrust.errors import ConfigError, SimtrustError, StoreError
from simtrust.streams._reader import Delivery, Reader
from simtrust.streams._service import StreamService

__all__ = ["MqttChannelPublisher", "MqttChannelSubscriber", "MqttStreamIngest", "channel_topic"]

_log = logging.getLogger("simtrust.streams.mqtt")


def channel_topic(prefix: str, channel: bytes, branch: int | None = 0) -> str:
    tail = "+" if branch is None else str(branch)
    return f"{prefix}/{channel.hex()}/{tail}"


def _connect(url: str, client: mqtt.Client) -> None:
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ConfigError(f"MQTT URL {url!r} must look like mqtt://host:port")
    client.connect(parts.hostname, parts.port or 1883, keepalive=30)


class MqttChannelPublisher:
    """Publishes frames of one channel; :meth:`publish` returns once the broker acked."""

    def __init__(self, url: str, prefix: str = "simtrust/streams") -> None:
        self.prefix = prefix
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self._client.max_inflight_messages_set(1000)
        self._pending: list[mqtt.MQTTMessageInfo] = []
        _connect(url, self._client)
        self._client.loop_start()

    def publish(self, channel: bytes, frame: bytes, branch: int = 0) -> None:
        info = self._client.publish(channel_topic(self.prefix, channel, branch), frame, qos=1)
        info.wait_for_publish()

    def publish_many(self, channel: bytes, frames: list[bytes], branch: int = 0) -> None:
        topic = channel_topic(self.prefix, channel, branch)
        infos = [self._client.publish(topic, frame, qos=1) for frame in frames]
        for info in infos:
            info.wait_for_publish()

    def publish_nowait(self, channel: bytes, frames: list[bytes], branch: int = 0) -> None:
        """Queue frames without waiting for the broker (pipelined); :meth:`flush` waits."""
        topic = channel_topic(self.prefix, channel, branch)
        publish = self._client.publish
        self._pending.extend(publish(topic, frame, qos=1) for frame in frames)
        if len(self._pending) > 10_000:
            self._pending = [i for i in self._pending if not i.is_published()]

    def flush(self) -> None:
        """Return once the broker acknowledged every frame queued by :meth:`publish_nowait`."""
        pending, self._pending = self._pending, []
        for info in pending:
            info.wait_for_publish()

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


class MqttChannelSubscriber:
    """Feeds every frame on a channel's topics to a reader; calls ``on_delivery``."""

    def __init__(self, url: str, reader: Reader,
                 on_delivery: Callable[[Delivery], None] | None = None,
                 prefix: str = "simtrust/streams") -> None:
        self.reader = reader
        self._on_delivery = on_delivery
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self._client.on_message = self._message
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._topic = channel_topic(prefix, reader.channel, None)
        self._client.on_connect = lambda c, *_: c.subscribe(self._topic, qos=1)
        _connect(url, self._client)
        self._client.loop_start()

    def wait_subscribed(self, timeout: float = 30.0) -> bool:
        return self._subscribed.wait(timeout)

    def _message(self, _client: mqtt.Client, _userdata: object,
                 message: mqtt.MQTTMessage) -> None:
        with self._lock:
            delivery = self.reader.accept(bytes(message.payload))
        if self._on_delivery is not None:
            self._on_delivery(delivery)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


class MqttStreamIngest:
    """Stores every frame published on ``<prefix>/<channel>/<branch>`` through the service."""

    def __init__(self, url: str, service: StreamService, *, prefix: str = "simtrust/streams",
                 client_id: str = "simtrust-streams-ingest") -> None:
        self._service = service
        self.counts: Counter[str] = Counter()
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                   clean_session=False, manual_ack=True)
        self._client.max_inflight_messages_set(1000)
        self._client.on_message = self._message
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._topic = f"{prefix}/+/+"
        self._client.on_connect = lambda c, *_: c.subscribe(self._topic, qos=1)
        _connect(url, self._client)
        self._client.loop_start()

    def __repr__(self) -> str:
        return f"MqttStreamIngest(topic={self._topic!r}, counts={dict(self.counts)})"

    def wait_subscribed(self, timeout: float = 30.0) -> bool:
        return self._subscribed.wait(timeout)

    def _message(self, client: mqtt.Client, _userdata: object,
                 message: mqtt.MQTTMessage) -> None:
        channel = message.topic.rsplit("/", 2)[-2] if message.topic.count("/") >= 2 else ""
        try:
            result = self._service.publish(channel, bytes(message.payload), actor="mqtt")
            outcome = str(result["verdict"])
        except StoreError as exc:
            # Not acknowledged: the broker delivers it again once the store is back.
            _log.warning("frame on %s not stored: %s", message.topic, exc.detail)
            with self._lock:
                self.counts["store-error"] += 1
            return
        except SimtrustError as exc:
            outcome = str(exc.context.get("verdict", exc.code))
        with self._lock:
            self.counts[outcome] += 1
        client.ack(message.mid, message.qos)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()
