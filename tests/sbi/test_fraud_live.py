"""The live fraud path over the SBI: one SUPI authenticated from Germany and the USA
seconds apart (httpx over HTTP/2 as the AUSF) raises an alert; repeated re-syncs
(resynchronizationInfo with a genuine AUTS) raise a cloned-SIM alert."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from simtrust.alerts import MemorySink
from simtrust.detect import Alert, DetectionService
from simtrust.runtime import Runtime
from simtrust.sbi import SbiServer, create_sbi_app
from simtrust.subscriber import Roaming, SubscriberServices

from ..diameter.reference import auts
from ..subscriber.conftest import TENANT, spec
from .test_sbi import AUSF, h2, supi


@pytest.fixture
def watched(sqlite_runtime: Runtime,
            subs: SubscriberServices) -> Iterator[tuple[str, MemorySink[Alert]]]:
    subs.inventory.add_sim(TENANT, spec(5, roaming=Roaming.parse(["*"])), actor="test")
    sink: MemorySink[Alert] = MemorySink()
    detect = DetectionService([sink])
    app = create_sbi_app(subs.udm, None, tenant_of=subs.hss.tenant_of,
                         observer=detect.observe_sim)
    server = SbiServer(app, "127.0.0.1", 0, lab_mode=True)
    _host, port = server.start()
    try:
        yield f"http://127.0.0.1:{port}", sink
    finally:
        server.stop()


def test_one_supi_from_two_continents_raises_an_alert(
    watched: tuple[str, MemorySink[Alert]],
) -> None:
    base, sink = watched
    path = f"/nudm-ueau/v1/{supi(5)}/security-information/generate-auth-data"
    with h2(base) as client:
        for snn in ("5G:mnc001.mcc262.3gppnetwork.org", "5G:mnc260.mcc310.3gppnetwork.org"):
            r = client.post(path, json={"servingNetworkName": snn, "ausfInstanceId": AUSF})
            assert 200 == r.status_code, r.text
    assert sink.alerts, "an authentication in Germany then the USA raised nothing"
    assert {supi(5).removeprefix("imsi-")} == {a.imsi for a in sink.alerts}


def test_repeated_resyncs_over_the_sbi_raise_a_clone_alert(
    watched: tuple[str, MemorySink[Alert]],
) -> None:
    """Three generate-auth-data requests carrying resynchronizationInfo (a USIM
    rejecting SQN each time, its SQN_MS one the AuC issued) are sync failures; one
    whose SQN_MS is beyond anything the AuC issued is a cloned key at once."""
    base, sink = watched
    path = f"/nudm-ueau/v1/{supi(5)}/security-information/generate-auth-data"
    snn = "5G:mnc001.mcc262.3gppnetwork.org"

    def resync(client: Any, sqn_ms: bytes) -> None:
        r = client.post(path, json={"servingNetworkName": snn, "ausfInstanceId": AUSF})
        assert 200 == r.status_code, r.text
        rand = bytes.fromhex(r.json()["authenticationVector"]["rand"])
        r = client.post(path, json={
            "servingNetworkName": snn, "ausfInstanceId": AUSF,
            "resynchronizationInfo": {"rand": rand.hex(), "auts": auts(rand, sqn_ms).hex()}})
        assert 200 == r.status_code, r.text

    with h2(base) as client:
        for _ in range(3):
            resync(client, (1 << 5).to_bytes(6, "big"))  # SEQ 1: issued already
        assert [("sim-clone", "auts_resync_failures")] == [
            (a.kind, a.evidence["feature"]) for a in sink.alerts]
        resync(client, (10_000 << 5).to_bytes(6, "big"))
    assert ("sim-clone", "sqn_out_of_window") == (
        sink.alerts[-1].kind, sink.alerts[-1].evidence["feature"])
