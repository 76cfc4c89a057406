"""Delivery of attach alerts (SIM swap) to a tenant's webhook and to MQTT.

Alerts leave the decision path through a queue: a worker thread posts each one
as JSON to the tenant's webhook (httpx, a few attempts) and publishes it on the
MQTT topic ``simtrust/alerts/<tenant>/<imsi>`` (paho-mqtt, QoS 1) of the
broker the settings name. A slow or absent receiver never slows attach
decisions; failures are logged and counted, never raised into the decision.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import httpx

__all__ = [
    "AlertDispatcher",
    "AlertSink",
    "MemorySink",
    "MqttSink",
    "SwapAlert",
    "WebhookSink",
    "alert_topic",
]

_log = logging.getLogger("simtrust.subscriber.alerts")


def alert_topic(tenant_id: str, imsi: str) -> str:
    return f"simtrust/alerts/{tenant_id}/{imsi}"


@dataclass(frozen=True, slots=True)
class SwapAlert:
    """A SIM seen in a new device (``sim-in-new-device``) or a bound device with
    another SIM (``device-with-new-sim``); ``action`` is what the decision did."""

    kind: str
    tenant_id: str
    imsi: str
    iccid: str
    imei: str
    bound_to: list[str]
    serving_plmn: str
    action: str
    reason: str
    at: str
    webhook_url: str | None = field(default=None, compare=False)

    @property
    def topic(self) -> str:
        return alert_topic(self.tenant_id, self.imsi)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "simtrust.attach.sim-swap",
            "kind": self.kind,
            "tenant_id": self.tenant_id,
            "imsi": self.imsi,
            "iccid": self.iccid,
            "imei": self.imei,
            "bound_to": self.bound_to,
            "serving_plmn": self.serving_plmn,
            "action": self.action,
            "reason": self.reason,
            "at": self.at,
        }


class AlertSink(ABC):
    """Where alerts go; ``send`` raises on failure (the dispatcher counts it)."""

    name: str = "sink"

    @abstractmethod
    def send(self, alert: SwapAlert) -> None: ...

    def close(self) -> None:  # noqa: B027 - most sinks hold nothing to release
        """Release connections (default: nothing to release)."""


class MemorySink(AlertSink):
    """Keeps alerts in a list (tests and the demo)."""

    name = "memory"

    def __init__(self) -> None:
        self.alerts: list[SwapAlert] = []

    def send(self, alert: SwapAlert) -> None:
        self.alerts.append(alert)


class WebhookSink(AlertSink):
    """POSTs the alert as JSON to the tenant's webhook URL, if it has one."""

    name = "webhook"

    def __init__(self, timeout: float = 5.0, attempts: int = 3) -> None:
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)
        self._attempts = attempts

    def send(self, alert: SwapAlert) -> None:
        if not alert.webhook_url:
            return
        body = alert.to_json()
        for attempt in range(1, self._attempts + 1):
            try:
                response = self._client.post(
                    alert.webhook_url, json=body, headers={"User-Agent": "simtrust-alerts"}
                )
                if response.status_code < 300:
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            if attempt == self._attempts:
                raise OSError(f"webhook {urlparse(alert.webhook_url).netloc}: {problem}")
            time.sleep(0.1 * attempt)

    def close(self) -> None:
        self._client.close()


class MqttSink(AlertSink):
    """Publishes on ``simtrust/alerts/<tenant>/<imsi>`` at QoS 1; connects on first use."""

    name = "mqtt"

    def __init__(self, url: str = "mqtt://127.0.0.1:1883", timeout: float = 5.0) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "tcp"):
            raise ValueError(f"MQTT URL must be mqtt://HOST:PORT, got {url!r}")
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or 1883
        self._timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", clean_session=True)
        client.connect(self._host, self._port, keepalive=30)
        client.loop_start()
        return client

    def send(self, alert: SwapAlert) -> None:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            info = self._client.publish(
                alert.topic, json.dumps(alert.to_json()).encode(), qos=1
            )
        info.wait_for_publish(timeout=self._timeout)
        if not info.is_published():
            raise OSError(f"MQTT publish to {self._host}:{self._port} not acknowledged")

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.loop_stop()
                self._client.disconnect()
                self._client = None


class AlertDispatcher:
    """A queue and one worker thread feeding every sink."""

    __slots__ = ("_lock", "_queue", "_sinks", "_thread", "delivered", "failed")

    def __init__(self, sinks: list[AlertSink]) -> None:
        self._sinks = list(sinks)
        self._lock = threading.Lock()
        self._queue: queue.Queue[SwapAlert | None] = queue.Queue(maxsize=10_000)
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.failed = 0

    def __repr__(self) -> str:
        return f"AlertDispatcher(sinks={[s.name for s in self._sinks]!r})"

    @property
    def sinks(self) -> list[AlertSink]:
        return list(self._sinks)

    def add_sink(self, sink: AlertSink) -> None:
        """Deliver later alerts to ``sink`` too (services built after the subscriber's)."""
        with self._lock:
            self._sinks.append(sink)

    def submit(self, alert: SwapAlert) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="simtrust-alerts", daemon=True
                    )
                    self._thread.start()
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self.failed += len(self._sinks)
            _log.warning("alert queue full; dropped a %s alert for %s", alert.kind, alert.imsi)

    def _run(self) -> None:
        while True:
            alert = self._queue.get()
            try:
                if alert is None:
                    return
                for sink in list(self._sinks):
                    try:
                        sink.send(alert)
                        self.delivered += 1
                    except Exception as exc:  # noqa: BLE001 - a sink failure must not stop the worker
                        self.failed += 1
                        _log.warning("alert delivery via %s failed: %s", sink.name, exc)
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued alert was handled; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self.flush()
            self._queue.put(None)
            thread.join(timeout=5)
        for sink in self._sinks:
            sink.close()
