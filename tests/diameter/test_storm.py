"""Storm protection on S6a: a refused AIR/ULR is 3004 DIAMETER_TOO_BUSY (RFC 6733 §7.1.3).

The MME is python-diameter (independent codec); the guard's buckets refill so
slowly (one token in 1,000 s) that the test does not depend on timing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simtrust.alerts import MemorySink
from simtrust.detect import BucketRate, StormGuard, StormLimits
from simtrust.diameter import DiameterListener, NodeSettings
from simtrust.runtime import Runtime
from simtrust.subscriber import Roaming, build_services

from ..subscriber.conftest import TENANT, imei, imsi, spec
from .conftest import HSS, MME, REALM, Env, Mme
from .test_s6a import air, ulr


def _env(rt: Runtime, limits: StormLimits) -> Iterator[Env]:
    rt.tenants.create_tenant(TENANT, "Acme Meters")
    rt.tenants.create_tenant("other", "Other Co")
    subs = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[MemorySink()])
    subs.inventory.add_sim(TENANT, spec(1, roaming=Roaming.parse(["*"])), actor="test")
    subs.inventory.add_sim(TENANT, spec(2, roaming=Roaming.parse(["*"])), actor="test")
    subs.inventory.add_sim("other", spec(3, roaming=Roaming.parse(["*"])), actor="test")
    settings = NodeSettings(HSS, REALM, frozenset({MME}), watchdog_s=1.0)
    listener = DiameterListener(settings, subs.hss, subs.eir, rt.audit,
                                storm=StormGuard(limits))
    host, port = listener.start("127.0.0.1", 0)
    try:
        yield Env(rt, subs, listener, host, port)
    finally:
        listener.stop()
        subs.close()


@pytest.fixture
def tenant_limited(sqlite_runtime: Runtime) -> Iterator[Env]:
    yield from _env(sqlite_runtime, StormLimits(tenant=BucketRate(0.001, 2), tac=None, cell=None))


@pytest.fixture
def tac_limited(sqlite_runtime: Runtime) -> Iterator[Env]:
    yield from _env(sqlite_runtime, StormLimits(tenant=None, tac=BucketRate(0.001, 1), cell=None))


def _mme(env: Env) -> Mme:
    client = Mme(env.port)
    assert 2001 == client.cer().result_code
    return client


def test_air_over_the_tenant_limit_is_3004_and_other_tenants_keep_flowing(
    tenant_limited: Env,
) -> None:
    client = _mme(tenant_limited)
    try:
        assert 2001 == client.exchange(air(str(imsi(1)))).result_code
        assert 2001 == client.exchange(air(str(imsi(2)))).result_code
        refused = client.exchange(air(str(imsi(1))))
        assert 3004 == refused.result_code
        assert refused.header.is_error
        # another tenant's SIM is not throttled by this tenant's storm
        assert 2001 == client.exchange(air(str(imsi(3)))).result_code
    finally:
        client.close()
    stats = tenant_limited.listener.apps.storm_stats()
    assert stats is not None
    assert 3 == stats["admitted"]
    assert {"tenant": 1} == stats["refused"]


def test_ulr_over_the_tac_limit_is_3004_before_any_decision(tac_limited: Env) -> None:
    client = _mme(tac_limited)
    try:
        assert 2001 == client.exchange(ulr(str(imsi(1)), str(imei(1)))).result_code
        refused = client.exchange(ulr(str(imsi(2)), str(imei(2))))
        assert 3004 == refused.result_code
        # a device model the storm is not about still registers
        assert 2001 == client.exchange(
            ulr(str(imsi(3)), str(imei(3, tac="35693803")))).result_code
    finally:
        client.close()
    assert tac_limited.subs.hss.serving_node(str(imsi(2))) is None
