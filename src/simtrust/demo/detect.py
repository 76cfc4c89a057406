"""Detection: a fleet of meters behaves, one turns scanner, it is caught and alerted."""

from __future__ import annotations

import random
import socket
from typing import Any

from simtrust.detect import Detector, DeviceRef, FlowMeter
from simtrust.detect._meter import decode_packet
from simtrust.detect._sinks import AuditSink, FanoutSink, MemorySink, MqttSink
from simtrust.detect.attacks import mirai_scan
from simtrust.errors import SimtrustError
from simtrust.policy.flow import PROTO_TCP, PROTO_UDP, FlowRecord

ORDER = 60

_CLOUD = "198.51.100.10"
_NTP = "198.51.100.123"
_DAY = 86_400.0


def _fleet_day(addresses: list[str], start: float, hours: float, seed: int) -> list[FlowRecord]:
    """Meters report to their cloud every 5 minutes over TLS and sync time hourly."""
    rng = random.Random(seed)
    out = []
    for addr in addresses:
        t = start + rng.uniform(0, 300)
        while t < start + hours * 3600:
            sport = rng.randrange(32768, 61000)
            out.append(FlowRecord(t, t + 0.4, addr, _CLOUD, sport, 443, PROTO_TCP, 9, 2100, 0x1B))
            out.append(
                FlowRecord(t + 0.05, t + 0.4, _CLOUD, addr, 443, sport, PROTO_TCP, 8, 4200, 0x1B)
            )
            if int(t) % 3600 < 300:
                out.append(FlowRecord(t, t + 0.1, addr, _NTP, 123, 123, PROTO_UDP, 1, 76))
            t += 300 + rng.uniform(-3, 3)
    out.sort(key=lambda r: r.end)
    return out


def _broker_reachable(url: str) -> bool:
    host_port = url.split("://", 1)[-1]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port or 1883)), timeout=1.0):
            return True
    except OSError:
        return False


def run(ctx: Any) -> dict[str, Any]:
    rt = ctx.rt
    tenant = ctx.data.get("tenant", "acme-meters")
    addresses = [f"192.0.2.{11 + i}" for i in range(6)]
    fleet = {
        a: DeviceRef(f"00101000000{100 + i}", "smart-meter", tenant)
        for i, a in enumerate(addresses)
    }
    now = rt.clock().timestamp()
    day0 = now - 2 * _DAY

    learner = Detector(fleet, learn=True)
    learner.learn_names(_CLOUD, "telemetry.meters.example")
    for r in _fleet_day(addresses, day0, 24, seed=1):
        learner.observe(r)
    baselines = learner.baselines()
    cohort = next(b for b in baselines if b.scope == "cohort")
    ctx.say(
        f"learnt baselines for {len(addresses)} meters over 24 h: cohort reaches "
        f"{len(cohort.addresses)} destinations, max {cohort.feature('dst_packets_10s'):.0f} "
        "packets/10 s to one"
    )

    memory = MemorySink()
    sinks: list[Any] = [memory, AuditSink(rt.audit)]
    mqtt: MqttSink | None = None
    if _broker_reachable(rt.settings.mqtt_url):
        mqtt = MqttSink(rt.settings.mqtt_url)
        sinks.append(mqtt)
    sink = FanoutSink(sinks)

    det = Detector(fleet, baselines)
    det.learn_names(_CLOUD, "telemetry.meters.example")
    live0 = now - 3600
    benign = _fleet_day(addresses, live0, 1, seed=2)
    infected = addresses[3]
    scan_start = live0 + 1800
    scan = mirai_scan(infected, scan_start, duration=60.0, rate=160.0, seed=7)
    meter = FlowMeter()
    scan_records: list[tuple[float, FlowRecord]] = []
    for ts, frame in scan.frames:
        p = decode_packet(ts, 1, frame)
        if p is not None:
            scan_records += [(ts, r) for r in meter.add(p)]
    scan_records += [(r.end + meter.idle_timeout, r) for r in meter.flush()]
    stream = sorted([(r.end, r) for r in benign] + scan_records, key=lambda x: x[0])
    first_alert_at: float | None = None
    try:
        for exported, rec in stream:
            for alert in det.observe(rec):
                sink.emit(alert)
                if first_alert_at is None:
                    first_alert_at = exported
    finally:
        if mqtt is not None:
            mqtt.close()
    alerts = [a for a in memory.alerts if a.imsi == fleet[infected].imsi]
    others = [a for a in memory.alerts if a.imsi != fleet[infected].imsi]
    if not alerts or others:
        raise SimtrustError("the scanner was not the one (and only) device alerted")
    alert = alerts[0]
    ctx.say(f"[bold]{alert.kind}[/bold] alert for SIM {alert.imsi}: {alert.summary}")
    ev = alert.evidence
    ctx.say(
        f"  evidence: {ev['feature']} observed {ev['observed']} vs threshold "
        f"{ev['threshold']} (baseline {ev['baseline']} expected {ev['expected']}), "
        f"telnet share {ev.get('telnet_share')}"
    )
    removal = _remove(rt, alert)
    ctx.say(f"  removal: {removal['outcome']}")
    ctx.data["detect_alert"] = alert.to_json()
    return {
        "fleet": len(addresses),
        "infected": {"address": infected, "imsi": alert.imsi},
        "alert": alert.to_json(),
        "time_to_detect_s": round((first_alert_at or scan_start) - scan_start, 1),
        "delivered_to": ["memory", "audit"] + (["mqtt"] if mqtt is not None else []),
        "alerts_on_healthy_meters": len(others),
        "removal": removal,
    }


def _remove(rt: Any, alert: Any) -> dict[str, Any]:
    """Ask the policy layer to remove the device when it offers that; otherwise record it."""
    from simtrust import policy

    remover = getattr(policy, "remove_device", None)
    if callable(remover):
        result = remover(rt, alert.imsi, reason=f"detect:{alert.kind}")
        return {"outcome": "removed", "via": "simtrust.policy.remove_device", "result": str(result)}
    rt.audit.append(
        actor="detect",
        action="detect.remove-requested",
        subject=f"sim:{alert.imsi}",
        outcome="info",
        reason="policy remove action not available in this build; alert recorded",
        tenant_id=alert.tenant or None,
        details={"kind": alert.kind, "at": alert.to_json()["at"]},
    )
    return {"outcome": "recorded (no policy remove action available)", "via": "audit"}
