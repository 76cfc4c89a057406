"""Where alerts go: the audit log, MQTT (MQTT 3.1.1 / 5.0 via paho-mqtt), memory.

The MQTT topic is ``simtrust/alerts/<tenant>/<imsi>`` (tenant ``-`` when the
SIM has none); the payload is the alert's JSON form, published with QoS 1 so
the broker acknowledges it (MQTT 3.1.1 §4.3.2). Topic levels are sanitised
so an identifier can never inject ``+``, ``#`` or ``/`` (MQTT 3.1.1 §4.7).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Protocol
from urllib.parse import urlparse

from simtrust.detect._model import Alert
from simtrust.errors import ConfigError, StoreError

__all__ = ["AlertSink", "AuditSink", "FanoutSink", "MemorySink", "MqttSink", "alert_topic"]

_TOPIC_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def alert_topic(alert: Alert, prefix: str = "simtrust/alerts") -> str:
    tenant = _TOPIC_SAFE.sub("_", alert.tenant) or "-"
    imsi = _TOPIC_SAFE.sub("_", alert.imsi) or "-"
    return f"{prefix}/{tenant}/{imsi}"


class AlertSink(Protocol):
    """Anything that accepts alerts."""

    def emit(self, alert: Alert) -> None: ...


class MemorySink:
    """Keeps alerts in a list (tests, the demo, the offline CLI)."""

    __slots__ = ("alerts",)

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def emit(self, alert: Alert) -> None:
        self.alerts.append(alert)


class _AuditLike(Protocol):
    def append(
        self,
        *,
        actor: str,
        action: str,
        subject: str,
        outcome: str,
        reason: str = "",
        tenant_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Any: ...


class AuditSink:
    """Appends ``detect.alert`` events (subject ``sim:<imsi>``) to the hash-chained audit log."""

    __slots__ = ("_audit", "actor")

    def __init__(self, audit: _AuditLike, actor: str = "detect") -> None:
        self._audit = audit
        self.actor = actor

    def emit(self, alert: Alert) -> None:
        self._audit.append(
            actor=self.actor,
            action=f"detect.alert.{alert.kind}",
            subject=f"sim:{alert.imsi}",
            outcome="alert",
            reason=alert.summary,
            tenant_id=alert.tenant or None,
            details=alert.to_json(),
        )


class MqttSink:
    """Publishes alerts to an MQTT broker with QoS 1 and waits for the acknowledgement."""

    def __init__(
        self,
        url: str = "mqtt://127.0.0.1:1883",
        client_id: str = "",
        timeout: float = 5.0,
        prefix: str = "simtrust/alerts",
    ) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
            raise ConfigError(f"MQTT URL must be mqtt://host:port, got {url!r}")
        self.host = parsed.hostname
        self.port = parsed.port or 1883
        self.prefix = prefix
        self.timeout = timeout
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if parsed.username:
            self._client.username_pw_set(parsed.username, parsed.password)
        self._connected = False

    def __repr__(self) -> str:
        return f"MqttSink({self.host}:{self.port})"

    def _connect(self) -> None:
        if self._connected:
            return
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise StoreError(f"MQTT broker {self.host}:{self.port} unreachable: {exc}") from exc
        self._client.loop_start()
        self._connected = True

    def emit(self, alert: Alert) -> None:
        self._connect()
        payload = json.dumps(alert.to_json(), sort_keys=True)
        info = self._client.publish(alert_topic(alert, self.prefix), payload, qos=1)
        info.wait_for_publish(self.timeout)
        if not info.is_published():
            raise StoreError(f"MQTT broker {self.host}:{self.port} did not acknowledge the alert")

    def close(self) -> None:
        if self._connected:
            self._client.loop_stop()
            self._client.disconnect()
            self._connected = False


class FanoutSink:
    """Sends every alert to several sinks, in order."""

    __slots__ = ("sinks",)

    def __init__(self, sinks: Iterable[AlertSink]) -> None:
        self.sinks = list(sinks)

    def emit(self, alert: Alert) -> None:
        for sink in self.sinks:
            sink.emit(alert)
