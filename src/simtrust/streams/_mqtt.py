"""Channel frames over MQTT (OASIS MQTT 3.1.1/5, paho-mqtt) on a real broker.

One topic per channel and branch, ``<prefix>/<channel id hex>/<branch>``;
each frame is one message at QoS 1, its bytes unchanged (frames carry their
own signatures, so the broker is not trusted). The subscriber hands every
payload to its :class:`~simtrust.streams.Reader`, which never raises, so a
malformed or forged message on the topic cannot stop it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simtrust.errors import ConfigError
from simtrust.streams._reader import Delivery, Reader

__all__ = ["MqttChannelPublisher", "MqttChannelSubscriber", "channel_topic"]


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
