"""The UDM registers at an NRF built from the official OpenAPI, and tokens from that NRF work."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from simtrust.runtime import Runtime
from simtrust.sbi import NrfClient, SbiServer, TokenVerifier, create_sbi_app, udm_profile
from simtrust.subscriber import Imsi, SimSpec, SubscriberServices

from ..subscriber.conftest import TENANT, imsi, spec
from .conftest import NRF_ID, UDM_ID
from .nrf import SpecNrf

SNN = "5G:mnc001.mcc001.3gppnetwork.org"
AUSF = "6f1c0c64-3d6f-4a3e-9a62-2d7b5f3f1e10"


def _wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def nrf(shared_dir: Path) -> Iterator[tuple[SpecNrf, str]]:
    spec_nrf = SpecNrf(shared_dir / "specs" / "3gpp", NRF_ID,
                       ec.generate_private_key(ec.SECP256R1()), heartbeat_s=1, fail_first=2)
    server = SbiServer(spec_nrf.app(), "127.0.0.1", 0, lab_mode=True)
    _, port = server.start()
    try:
        yield spec_nrf, f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_register_heartbeat_update_reregister_deregister(
    nrf: tuple[SpecNrf, str], subs: SubscriberServices
) -> None:
    spec_nrf, url = nrf
    client = NrfClient(url, lambda: udm_profile(UDM_ID, subs.udm.supi_ranges(), "127.0.0.1",
                                                8443, "http"), min_backoff_s=0.1)
    client.start()
    try:
        # The NRF is down for its first two answers: the client backs off and retries.
        _wait_for(client.registered.is_set, "registration")
        assert 2 == client.counts["failures"]
        stored = spec_nrf.profiles[UDM_ID]
        assert [{"start": imsi(1).value, "end": imsi(1).value}] == stored["udmInfo"]["supiRanges"]
        assert "nudm-ueau" == stored["nfServices"][0]["serviceName"]
        assert 1.0 == client.heartbeat_s  # the NRF's heartBeatTimer, not the requested one
        _wait_for(lambda: client.counts["heartbeat"] >= 2, "heartbeats")
        # A SIM of another PLMN changes udmInfo: NFUpdate.
        other = spec(2)
        subs.inventory.add_sim(TENANT, SimSpec(other.iccid, Imsi("208930000000002", 2),
                                               secrets=other.secrets), actor="test")
        _wait_for(lambda: client.counts["update"] >= 1, "NFUpdate")
        assert 2 == len(spec_nrf.profiles[UDM_ID]["udmInfo"]["supiRanges"])
        # The NRF forgets the UDM: the next heartbeat gets 404 and the UDM registers again.
        del spec_nrf.profiles[UDM_ID]
        _wait_for(lambda: client.counts["register"] >= 2, "re-registration")
    finally:
        client.stop()
    assert UDM_ID not in spec_nrf.profiles
    assert 1 == client.counts["deregister"]
    assert [] == spec_nrf.invalid
    assert {"PUT", "PATCH", "DELETE"} == {method for method, _ in spec_nrf.log}


def test_token_from_the_nrf_opens_the_udm(nrf: tuple[SpecNrf, str],
                                          sqlite_runtime: Runtime,
                                          subs: SubscriberServices) -> None:
    spec_nrf, url = nrf
    spec_nrf.fail_next = 0
    public = spec_nrf.private.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    server = SbiServer(create_sbi_app(subs.udm, TokenVerifier(pem, UDM_ID, issuer=NRF_ID)),
                       "127.0.0.1", 0)
    _, port = server.start()
    try:
        with httpx.Client(http1=False, http2=True, timeout=15) as client:
            token = client.post(f"{url}/oauth2/token", data={
                "grant_type": "client_credentials", "nfInstanceId": AUSF, "nfType": "AUSF",
                "targetNfType": "UDM", "scope": "nudm-ueau"}).json()
            assert "Bearer" == token["token_type"]
            r = client.post(
                f"http://127.0.0.1:{port}/nudm-ueau/v1/{imsi(1).supi}/security-information/"
                "generate-auth-data", json={"servingNetworkName": SNN, "ausfInstanceId": AUSF},
                headers={"Authorization": f"Bearer {token['access_token']}"})
        assert 200 == r.status_code
        assert "HTTP/2" == r.http_version
    finally:
        server.stop()
    assert [] == spec_nrf.invalid
    actors = {e.actor for e in sqlite_runtime.audit.iter_all() if e.action == "auc.5g-he-av"}
    assert {f"sbi:{AUSF}"} == actors
