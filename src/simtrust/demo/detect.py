"""Detection: a fleet of meters behaves, one turns scanner, it is caught and alerted."""

from __future__ import annotations

import ipaddress
import random
import socket
from typing import Any

from simtrust.alerts import AlertSink, AuditSink, FanoutSink, MemorySink, MqttSink
from simtrust.detect import Alert, AttachEvent, Detector, DeviceRef
from simtrust.domain import PROTO_TCP, PROTO_UDP, FlowRecord, Imei, Imsi, Plmn, imsi_digits
from simtrust.errors import SimtrustError
from simtrust.flows import IDLE_TIMEOUT_S

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


_SCAN_NET = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544 benchmarking range


def _scan_flows(device: str, start: float, duration: float, rate: float,
                seed: int) -> list[tuple[float, FlowRecord]]:
    """A Mirai-style telnet scan as a meter exports it: one SYN-only flow per probe
    (ports 23:2323 about 9:1, random hosts), each exported when its idle timeout ends."""
    rng = random.Random(seed)
    sport = rng.randrange(1024, 65535)
    out = []
    step = 1.0 / rate
    for i in range(int(duration * rate)):
        t = start + i * step + rng.uniform(0, step * 0.5)
        dst = str(_SCAN_NET[rng.randrange(_SCAN_NET.num_addresses)])
        dport = 2323 if i % 10 == 0 else 23
        flow = FlowRecord(t, t, device, dst, sport, dport, PROTO_TCP, 1, 40, 0x02)
        out.append((t + IDLE_TIMEOUT_S, flow))
    return out


def _broker_reachable(url: str) -> bool:
    host_port = url.split("://", 1)[-1]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port or 1883)), timeout=1.0):
            return True
    except OSError:
        return False


def _fleet(ctx: Any) -> tuple[dict[str, DeviceRef], str, bool]:
    """The subscriber step's attached meters when it ran; a synthetic fleet otherwise."""
    sub = ctx.data.get("subscriber")
    if sub and sub.get("addresses"):
        tenant = str(sub["tenant"])
        # Skip the SIMs the subscriber step swapped (7) and blocklisted (9).
        imsis = [i for i in sub["imsis"][20:] if sub["addresses"].get(i)][:6]
        return (
            {sub["addresses"][i]: DeviceRef(imsi_digits(i), "smart-meter", tenant) for i in imsis},
            tenant,
            True,
        )
    tenant = ctx.data.get("tenant", "acme-meters")
    return (
        {
            f"192.0.2.{11 + i}": DeviceRef(imsi_digits(f"00101000000{100 + i}"), "smart-meter",
                                           tenant)
            for i in range(6)
        },
        tenant,
        False,
    )


def run(ctx: Any) -> dict[str, Any]:
    rt = ctx.rt
    fleet, tenant, attached = _fleet(ctx)
    addresses = sorted(fleet)
    ctx.say(
        f"fleet of {len(fleet)} meters of tenant {tenant} "
        f"({'attached by the subscriber step' if attached else 'synthetic'})"
    )
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

    memory: MemorySink[Alert] = MemorySink()
    sinks: list[AlertSink[Alert]] = [memory, AuditSink(rt.audit)]
    mqtt: MqttSink | None = None
    if _broker_reachable(rt.settings.mqtt_url):
        mqtt = MqttSink(rt.settings.mqtt_url)
        sinks.append(mqtt)
    sink: FanoutSink[Alert] = FanoutSink(sinks)

    det = Detector(fleet, baselines)
    det.learn_names(_CLOUD, "telemetry.meters.example")
    live0 = now - 3600
    benign = _fleet_day(addresses, live0, 1, seed=2)
    infected = addresses[3]
    scan_start = live0 + 1800
    scan_records = _scan_flows(infected, scan_start, duration=60.0, rate=160.0, seed=7)
    stream = sorted([(r.end, r) for r in benign] + scan_records, key=lambda x: x[0])
    first_alert_at: float | None = None
    try:
        for exported, rec in stream:
            for alert in det.observe(rec):
                sink.send(alert)
                if first_alert_at is None:
                    first_alert_at = exported
        swap = _sim_swap(ctx, det, tenant, now)
        for alert in swap:
            sink.send(alert)
    finally:
        if mqtt is not None:
            mqtt.close()
    flow_alerts = [a for a in memory.alerts if a.kind != "sim-swap"]
    alerts = [a for a in flow_alerts if a.imsi == fleet[infected].imsi]
    others = [a for a in flow_alerts if a.imsi != fleet[infected].imsi]
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
    removal = _remove(ctx, alert)
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
        "sim_swap_alert": swap[0].to_json() if swap else None,
    }


def _sim_swap(ctx: Any, det: Detector, tenant: str, now: float) -> list[Alert]:
    """Attach events: a SIM known in its meter shows up in another device."""
    sub = ctx.data.get("subscriber")
    if sub and len(sub.get("imsis", ())) > 7:
        imsi = sub["imsis"][7]
        old, new = sub["devices"][imsi], Imei.from_tac_snr("35209900", "777777").value
    else:
        imsi, old, new = "001010000000107", "867530900000007", "352099007777773"
    det.observe_attach(AttachEvent(now - 30 * _DAY, imsi, old, tenant, "smart-meter"))
    alerts = det.observe_attach(AttachEvent(now - 60, imsi, new, tenant, "smart-meter"))
    for a in alerts:
        ctx.say(f"[bold]{a.kind}[/bold] alert for SIM {a.imsi}: {a.summary}")
    return alerts


def _remove(ctx: Any, alert: Alert) -> dict[str, Any]:
    """Remove the device: the policy remove action the composition root wires (suspend
    the SIM, so its next attach is denied) when the SIM is in the inventory; otherwise
    record the request."""
    rt = ctx.rt
    sub = ctx.data.get("subscriber")
    if not (sub and alert.imsi in sub.get("devices", {})):
        rt.audit.append(
            actor="detect",
            action="detect.remove-requested",
            subject=f"sim:{alert.imsi}",
            outcome="info",
            reason="SIM not in the inventory (synthetic fleet); alert recorded",
            tenant_id=alert.tenant or None,
            details={"kind": alert.kind, "at": alert.to_json()["at"]},
        )
        return {"outcome": "recorded (SIM not in the inventory)", "via": "audit"}
    services = rt.subscriber
    reason = f"detect:{alert.kind} {alert.summary}"
    services.suspender().remove(Imsi(alert.imsi), tenant_id=alert.tenant, reason=reason,
                                actor="detect")
    via = "simtrust.subscriber.SuspendSim (the policy remove action)"
    again = services.attach.decide(
        alert.imsi, sub["devices"][alert.imsi], Plmn("001", "01"), actor="demo"
    )
    return {
        "outcome": "removed (SIM suspended)",
        "via": via,
        "next_attach": "allowed" if again.allowed else f"denied ({again.reason})",
    }
