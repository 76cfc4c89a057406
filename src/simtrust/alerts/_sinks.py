"""Alert sinks: webhook (HTTP POST, httpx), MQTT (paho-mqtt, QoS 1), audit log, memory.

MQTT 3.1.1 §4.3.2 (QoS 1: the sender keeps the message until the PUBACK) and
§4.7 (topic levels; ``+``, ``#`` and ``/`` are never taken from identifiers).
The webhook sink follows the usual delivery contract of webhook senders: a
2xx answer is delivery, anything else or a transport error is retried a
bounded number of times with linear back-off, redirects are not followed.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urlparse

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simtrust.errors import ConfigError, SimtrustError

__all__ = [
    "Alert",
    "AlertDeliveryError",
    "AlertSink",
    "AuditSink",
    "AuditWriter",
    "FanoutSink",
    "MemorySink",
    "MqttSink",
    "WebhookSink",
    "alert_topic",
]

_TOPIC_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class AlertDeliveryError(SimtrustError):
    """An alert could not be delivered to its sink."""

    code = "alert-delivery-failed"
    status = 502
    title = "Alert delivery failed"


class Alert(Protocol):
    """What every alert offers the sinks.

    ``source`` names the package that raised it (``attach``, ``policy``,
    ``detect``); ``document()`` is the JSON form posted and published;
    ``webhook_url`` is set when the alert names its own receiver.
    """

    @property
    def source(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def tenant_id(self) -> str: ...

    @property
    def imsi(self) -> str: ...

    @property
    def summary(self) -> str: ...

    @property
    def webhook_url(self) -> str | None: ...

    def document(self) -> dict[str, Any]: ...


A = TypeVar("A", bound=Alert)
A_contra = TypeVar("A_contra", bound=Alert, contravariant=True)


class AlertSink(Protocol[A_contra]):
    """Delivers one alert; raises :class:`AlertDeliveryError` when it cannot."""

    name: str

    def send(self, alert: A_contra) -> None: ...

    def close(self) -> None: ...


def alert_topic(alert: Alert, prefix: str = "simtrust/alerts") -> str:
    """``<prefix>/<tenant>/<imsi>``, each level sanitised (``-`` when empty)."""
    tenant = _TOPIC_SAFE.sub("_", alert.tenant_id) or "-"
    imsi = _TOPIC_SAFE.sub("_", alert.imsi) or "-"
    return f"{prefix}/{tenant}/{imsi}"


class MemorySink(Generic[A]):
    """Keeps alerts in a list (tests, the demo, offline runs)."""

    name = "memory"

    def __init__(self) -> None:
        self.alerts: list[A] = []

    def __repr__(self) -> str:
        return f"MemorySink({len(self.alerts)} alerts)"

    def send(self, alert: A) -> None:
        self.alerts.append(alert)

    def close(self) -> None:
        """Nothing to release."""


class FanoutSink(Generic[A]):
    """Sends every alert to several sinks, in order; the first failure is raised."""

    name = "fanout"

    def __init__(self, sinks: Iterable[AlertSink[A]]) -> None:
        self.sinks = list(sinks)

    def __repr__(self) -> str:
        return f"FanoutSink({self.sinks!r})"

    def send(self, alert: A) -> None:
        for sink in self.sinks:
            sink.send(alert)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


class WebhookSink:
    """POSTs the alert's JSON document to its receiver, retrying a bounded number of times.

    The receiver is the alert's own ``webhook_url``, else ``url``, else
    ``lookup(tenant_id)`` (the tenant's configured webhook); an alert with none
    is not sent. Each attempt is bounded by ``timeout`` seconds; at most
    ``attempts`` attempts are made, ``backoff × n`` seconds apart.
    """

    name = "webhook"

    def __init__(self, url: str | None = None, *,
                 lookup: Callable[[str], str | None] | None = None,
                 timeout: float = 5.0, attempts: int = 3, backoff: float = 0.1,
                 client: httpx.Client | None = None) -> None:
        if attempts < 1:
            raise ConfigError("webhook attempts must be at least 1")
        self.url = url
        self._lookup = lookup
        self._attempts = attempts
        self._backoff = backoff
        self._own = client is None
        self._client = client if client is not None else httpx.Client(
            timeout=timeout, follow_redirects=False)

    def __repr__(self) -> str:
        target = urlparse(self.url).netloc if self.url else "per-alert"
        return f"WebhookSink({target})"

    def target(self, alert: Alert) -> str | None:
        if alert.webhook_url:
            return alert.webhook_url
        if self.url:
            return self.url
        return self._lookup(alert.tenant_id) if self._lookup is not None else None

    def send(self, alert: Alert) -> None:
        url = self.target(alert)
        if not url:
            return
        body = alert.document()
        problem = ""
        for attempt in range(1, self._attempts + 1):
            try:
                response = self._client.post(
                    url, json=body, headers={"User-Agent": "simtrust-alerts"})
                if response.status_code < 300:
                    return
                problem = f"answered HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = f"unreachable ({type(exc).__name__})"
            if attempt < self._attempts:
                time.sleep(self._backoff * attempt)
        raise AlertDeliveryError(f"webhook {urlparse(url).netloc} {problem}")

    def close(self) -> None:
        if self._own:
            self._client.close()


class MqttSink:
    """Publishes on ``<prefix>/<tenant>/<imsi>`` at QoS 1; connects on first use.

    ``url`` is ``mqtt://[user:password@]host[:port]``. A broker that is down fails
    the delivery (:class:`AlertDeliveryError`), never the construction.
    """

    name = "mqtt"

    def __init__(self, url: str = "mqtt://127.0.0.1:1883", *,
                 prefix: str = "simtrust/alerts", timeout: float = 5.0,
                 client_id: str = "") -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
            raise ConfigError(f"MQTT URL must be mqtt://host[:port], got {url!r}")
        self.host = parsed.hostname
        self.port = parsed.port or 1883
        self.prefix = prefix.rstrip("/")
        self.timeout = timeout
        self._username = parsed.username
        self._password = parsed.password
        self._client_id = client_id
        self._client: mqtt.Client | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MqttSink({self.host}:{self.port})"

    def topic(self, alert: Alert) -> str:
        return alert_topic(alert, self.prefix)

    def _connected(self) -> mqtt.Client:
        with self._lock:
            if self._client is None:
                client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self._client_id)
                if self._username:
                    client.username_pw_set(self._username, self._password)
                try:
                    client.connect(self.host, self.port, keepalive=30)
                except OSError as exc:
                    raise AlertDeliveryError(
                        f"MQTT broker {self.host}:{self.port} unreachable: "
                        f"{type(exc).__name__}") from None
                client.loop_start()
                self._client = client
            return self._client

    def send(self, alert: Alert) -> None:
        client = self._connected()
        payload = json.dumps(alert.document(), sort_keys=True)
        info = client.publish(self.topic(alert), payload, qos=1)
        info.wait_for_publish(self.timeout)
        if not info.is_published():
            raise AlertDeliveryError(
                f"MQTT broker {self.host}:{self.port} did not acknowledge the alert")

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.loop_stop()
                self._client.disconnect()
                self._client = None


class AuditWriter(Protocol):
    """What :class:`simtrust.audit.AuditLog` offers (``append``)."""

    def append(self, *, actor: str, action: str, subject: str, outcome: str,
               reason: str = "", tenant_id: str | None = None,
               details: dict[str, Any] | None = None) -> object: ...


class AuditSink:
    """Appends ``<source>.alert.<kind>`` events (subject ``sim:<imsi>``) to the audit log."""

    name = "audit"

    def __init__(self, audit: AuditWriter, actor: str | None = None) -> None:
        self._audit = audit
        self.actor = actor

    def __repr__(self) -> str:
        return "AuditSink()"

    def send(self, alert: Alert) -> None:
        try:
            self._audit.append(
                actor=self.actor or alert.source,
                action=f"{alert.source}.alert.{alert.kind}",
                subject=f"sim:{alert.imsi}",
                outcome="alert",
                reason=alert.summary,
                tenant_id=alert.tenant_id or None,
                details=alert.document(),
            )
        except SimtrustError as exc:
            raise AlertDeliveryError(f"audit log: {exc.detail}") from exc

    def close(self) -> None:
        """The audit log belongs to the caller."""
