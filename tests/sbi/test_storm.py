"""Storm protection on the SBI: over the tenant limit, generate-auth-data is 503 + Retry-After.

httpx over HTTP/2 is the AUSF; the ProblemDetails is validated against the
official TS 29.571 file. Buckets refill one token in 1,000 s: no timing.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from referencing import Registry

from simtrust.detect import BucketRate, StormGuard, StormLimits
from simtrust.runtime import Runtime
from simtrust.sbi import SbiServer, create_sbi_app
from simtrust.subscriber import SubscriberServices

from ..subscriber.conftest import spec
from ..subscriber.test_nudm import check, registry  # noqa: F401 - fixture by name
from .conftest import Udm
from .test_sbi import AUSF, COMMON, SNN, h2, supi


@pytest.fixture
def limited(sqlite_runtime: Runtime, subs: SubscriberServices) -> Iterator[Udm]:
    sqlite_runtime.tenants.create_tenant("other", "Other Co")
    subs.inventory.add_sim("other", spec(2), actor="test")
    guard = StormGuard(StormLimits(tenant=BucketRate(0.001, 1), tac=None, cell=None))
    app = create_sbi_app(subs.udm, None, storm=guard, tenant_of=subs.hss.tenant_of)
    server = SbiServer(app, "127.0.0.1", 0, lab_mode=True)
    _host, port = server.start()
    try:
        yield Udm(sqlite_runtime, subs, server, f"http://127.0.0.1:{port}")
    finally:
        server.stop()


def _generate(client: httpx.Client, subject: str) -> httpx.Response:
    return client.post(
        f"/nudm-ueau/v1/{subject}/security-information/generate-auth-data",
        json={"servingNetworkName": SNN, "ausfInstanceId": AUSF})


def test_over_the_tenant_limit_is_503_with_retry_after(
    limited: Udm, registry: Registry,  # noqa: F811
) -> None:
    with h2(limited.base) as client:
        assert 200 == _generate(client, supi(1)).status_code
        refused = _generate(client, supi(1))
        # the other tenant's subscriber is not held back by this tenant's storm
        other = _generate(client, supi(2))
    assert 503 == refused.status_code
    assert "application/problem+json" == refused.headers["content-type"]
    retry = refused.headers["retry-after"]
    assert retry.isdigit()
    assert int(retry) >= 1
    body = refused.json()
    check(registry, COMMON, "ProblemDetails", body)
    assert "NF_CONGESTION" == body["cause"]
    assert 200 == other.status_code
    # nothing was generated for the refused request
    issued = [e for e in limited.rt.audit.iter_all() if e.action.startswith("auc.")]
    assert 2 == len(issued)
