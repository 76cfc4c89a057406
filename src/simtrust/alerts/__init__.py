"""simtrust.alerts: the one alert delivery stack (webhook, MQTT, audit log, memory).

Base layer (DESIGN.md "Layers"), so that every package that raises alerts —
attach decisions (``subscriber``), policy actions (``policy``), detection
(``detect``) and whatever comes later — delivers them the same way without
importing another package of its layer. The stack needs nothing above base:
the audit log is reached through the small :class:`AuditWriter` protocol that
:class:`simtrust.audit.AuditLog` satisfies, and an alert is any value with the
:class:`Alert` shape (source, kind, tenant, IMSI, summary, JSON document).
See ``docs/decisions/architecture-alert-stack.md``.

* :class:`WebhookSink` — HTTP POST of the JSON document (httpx), bounded
  retries with back-off and a timeout per attempt; the URL is the alert's own,
  the sink's, or the tenant's (a lookup function).
* :class:`MqttSink` — MQTT 3.1.1 PUBLISH with QoS 1 (paho-mqtt) on
  ``<prefix>/<tenant>/<imsi>``, waiting for the PUBACK (MQTT 3.1.1 §4.3.2);
  topic levels are sanitised so an identifier never injects ``+``, ``#`` or
  ``/`` (§4.7).
* :class:`AuditSink` — ``<source>.alert.<kind>`` events in the hash-chained
  audit log.
* :class:`MemorySink`, :class:`FanoutSink`, and :class:`AlertDispatcher` (a
  bounded queue and one worker thread, for callers that must never wait on a
  receiver).

Every sink raises :class:`AlertDeliveryError` when delivery fails; callers
count and audit failures, never let them into their data path.
"""

from simtrust.alerts._dispatch import AlertDispatcher
from simtrust.alerts._sinks import (
    Alert,
    AlertDeliveryError,
    AlertSink,
    AuditSink,
    AuditWriter,
    FanoutSink,
    MemorySink,
    MqttSink,
    WebhookSink,
    alert_topic,
)

__all__ = [
    "Alert",
    "AlertDeliveryError",
    "AlertDispatcher",
    "AlertSink",
    "AuditSink",
    "AuditWriter",
    "FanoutSink",
    "MemorySink",
    "MqttSink",
    "WebhookSink",
    "alert_topic",
]
