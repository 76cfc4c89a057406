"""What devices report over LwM2M reaches the fraud detectors: the IMEI of a
registration and the positions of the Location object, read or sent; a meter that reports
Paris and, a minute later, Sydney raises impossible travel. A SIM registering from a
device its bindings do not name raises ``imei-not-bound``."""

from __future__ import annotations

from typing import Any

from simtrust.detect import SimEvent
from simtrust.devices import CF_SENML_JSON, check_bindings, feed_fraud_checks

from .conftest import IMEI1, IMEI2, Env, dm_client, iccid, imsi


def test_registration_imei_and_reported_positions_feed_the_fraud_checks(env: Env) -> None:
    events: list[SimEvent] = []
    alerts: list[Any] = []

    def observe(event: SimEvent) -> None:
        events.append(event)
        alerts.extend(env.rt.detect.observe_sim(event))

    m = env.devices.manager
    env.devices.run_sync(lambda: feed_fraud_checks(m, observe, env.clock))
    dev = dm_client(env, 2, IMEI1)

    async def scenario() -> None:
        try:
            await dev.register()
            await m.read(dev.endpoint_name, (6, 0), fmt=CF_SENML_JSON)  # Paris
            env.clock.advance(seconds=60)
            dev.values[(6, 0, 0)], dev.values[(6, 0, 1)] = -33.8688, 151.2093  # Sydney
            assert 0x44 == await dev.send({(6, 0, 0): -33.8688, (6, 0, 1): 151.2093})
        finally:
            dev.close()

    env.devices.call(scenario())
    assert [(imsi(2).value, "location", IMEI1, None), (imsi(2).value, "location", IMEI1, 48.8566),
            (imsi(2).value, "location", IMEI1, -33.8688)] == [
        (e.imsi, e.kind, e.imei, e.lat) for e in events]
    assert "impossible-travel" in [a.kind for a in alerts], alerts


def test_registration_from_an_unbound_device_raises_an_alert(env: Env) -> None:
    m = env.devices.manager
    bound = {iccid(1).value: [IMEI2], iccid(2).value: []}
    env.devices.run_sync(lambda: check_bindings(m, lambda number: bound.get(number, [])))
    unbound, free = dm_client(env, 1, IMEI1), dm_client(env, 2, IMEI1)

    async def scenario() -> None:
        for dev in (unbound, free):
            try:
                await dev.register()
            finally:
                dev.close()

    env.devices.call(scenario())
    alerts = [a for a in env.alerts.alerts if a.kind == "imei-not-bound"]
    assert [imsi(1).value] == [a.imsi for a in alerts]  # the SIM without bindings is free
    assert [IMEI2] == alerts[0].details["bound_imeis"]
