"""Independent peers: libcoap's coap-client (OpenSSL and GnuTLS builds) registers,
updates and de-registers over DTLS-PSK and sends a Bootstrap-Request; an LwM2M device built
on aiocoap runs the Firmware Update state machine through a staged campaign."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiocoap
import aiocoap.resource as resource
import httpx
import pytest

from simtrust.devices import CF_SENML_JSON, FirmwareCampaigns, new_endpoint_name
from simtrust.subscriber import Iccid

from .conftest import IMEI1, IMEI2, TENANT, Env, iccid, imsi

CLIENTS = ["coap-client-openssl", "coap-client-gnutls"]


def coap_client(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which(binary)
    assert path is not None, f"{binary} (Debian libcoap3-bin) is needed"
    return subprocess.run([path, "-B", "20", *args], capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize("binary", CLIENTS)
def test_coap_client_registers_updates_deregisters_over_dtls_psk(env: Env, binary: str) -> None:
    key = b"coap-client-key1"
    identity, _ = env.devices.credentials.issue("dm", imsi(2).value, TENANT, key=key)
    name = new_endpoint_name(IMEI2, imsi(2).value)
    base = f"coaps://127.0.0.1:{env.devices.dm_port}"
    psk = ["-u", identity, "-k", key.decode()]
    done = coap_client(binary, "-m", "post", *psk, "-t", "40", "-e", "</1/1>,</3/0>,</5/0>",
                       f"{base}/rd?ep={name}&lt=120&lwm2m=1.1&b=U")
    assert 0 == done.returncode, done.stderr
    reg = env.devices.run_sync(lambda: env.devices.manager.get(name))
    assert (imsi(2).value, IMEI2, 120) == (reg.imsi, reg.imei, reg.lifetime)
    assert Iccid(reg.iccid) == env.subs.inventory.find_sim(imsi(2)).iccid  # type: ignore[union-attr]
    assert ["/1/1", "/3/0", "/5/0"] == reg.objects()
    done = coap_client(binary, "-m", "post", *psk, f"{base}/rd/{reg.reg_id}?lt=300")
    assert 0 == done.returncode, done.stderr
    assert 300 == env.devices.run_sync(lambda: env.devices.manager.get(name).lifetime)
    # Another SIM's endpoint name with this SIM's credential is refused (4.03).
    other = new_endpoint_name(IMEI1, imsi(3).value)
    done = coap_client(binary, "-m", "post", *psk, "-t", "40", "-e", "</3/0>",
                       f"{base}/rd?ep={other}")
    assert "endpoint-mismatch" in done.stdout + done.stderr
    done = coap_client(binary, "-m", "delete", *psk, f"{base}/rd/{reg.reg_id}")
    assert 0 == done.returncode, done.stderr
    assert 0 == env.devices.run_sync(lambda: len(env.devices.manager))


@pytest.mark.parametrize("binary", CLIENTS)
def test_coap_client_wrong_psk_gets_no_session(env: Env, binary: str) -> None:
    identity, _ = env.devices.credentials.issue("dm", imsi(2).value, TENANT,
                                                key=b"coap-client-key2")
    base = f"coaps://127.0.0.1:{env.devices.dm_port}"
    name = new_endpoint_name(IMEI2, imsi(2).value)
    before = env.devices.manager.endpoint.counters.handshake_failures
    unknown = env.devices.manager.endpoint.counters.unknown_identity
    coap_client(binary, "-B", "3", "-m", "post", "-u", identity, "-k", "not-the-right-k",
                f"{base}/rd?ep={name}")
    coap_client(binary, "-B", "3", "-m", "post", "-u", "dm-nobody", "-k", "whatever-key",
                f"{base}/rd?ep={name}")
    counters = env.devices.manager.endpoint.counters
    assert counters.handshake_failures > before
    assert counters.unknown_identity > unknown
    assert 0 == env.devices.run_sync(lambda: len(env.devices.manager))


def test_coap_client_bootstrap_request_with_device_psk(env: Env) -> None:
    """A SIM without GBA: a per-device bootstrap PSK; the server accepts the request (2.04)
    and starts provisioning (coap-client cannot serve the writes, so it fails after)."""
    key = b"bootstrap-key-03"
    identity, _ = env.devices.credentials.issue("bootstrap", imsi(3).value, TENANT, key=key)
    name = new_endpoint_name(IMEI1, imsi(3).value)
    done = coap_client("coap-client-openssl", "-m", "post", "-u", identity, "-k", key.decode(),
                       f"coaps://127.0.0.1:{env.devices.bs_port}/bs?ep={name}")
    assert 0 == done.returncode, done.stderr
    assert name in env.devices.bootstrap.status
    # A DM credential is not a bootstrap credential.
    dm_identity, _ = env.devices.credentials.issue("dm", imsi(3).value, TENANT, key=key)
    before = env.devices.bootstrap.endpoint.counters.unknown_identity
    coap_client("coap-client-openssl", "-B", "3", "-m", "post", "-u", dm_identity,
                "-k", key.decode(), f"coaps://127.0.0.1:{env.devices.bs_port}/bs?ep={name}")
    assert env.devices.bootstrap.endpoint.counters.unknown_identity > before


# -- an aiocoap device running the Firmware Update state machine -------------------------------


class _Package(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/fw-2.0.0.bin":
            body = b"firmware 2.0.0"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def package_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Package)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def senml(base: str, values: dict[int, Any]) -> bytes:
    recs: list[dict[str, Any]] = []
    for rid, value in values.items():
        rec: dict[str, Any] = {"n": f"{base}/{rid}"}
        rec["vs" if isinstance(value, str) else "v"] = value
        recs.append(rec)
    return json.dumps(recs).encode()


class AiocoapDevice:
    """An LwM2M 1.1 client on aiocoap: objects 3 and 5 with the Firmware Update states."""

    def __init__(self, name: str, *, broken: bool = False) -> None:
        self.name = name
        self.broken = broken
        self.version = "1.0.0"
        self.state, self.result = 0, 0
        self.history: list[int] = []
        dev = self

        class Fw(resource.ObservableResource):  # type: ignore[misc]
            async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
                return aiocoap.Message(payload=senml("/5/0", {3: dev.state, 5: dev.result}),
                                       content_format=CF_SENML_JSON)

        class Uri(resource.Resource):  # type: ignore[misc]
            async def render_put(self, request: aiocoap.Message) -> aiocoap.Message:
                uri = request.payload.decode()
                asyncio.get_running_loop().create_task(dev.download(uri))
                return aiocoap.Message(code=aiocoap.CHANGED)

        class Update(resource.Resource):  # type: ignore[misc]
            async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
                if dev.state != 2:
                    return aiocoap.Message(code=aiocoap.METHOD_NOT_ALLOWED)
                asyncio.get_running_loop().create_task(dev.install())
                return aiocoap.Message(code=aiocoap.CHANGED)

        class Version(resource.Resource):  # type: ignore[misc]
            async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
                return aiocoap.Message(payload=senml("/3/0", {3: dev.version}),
                                       content_format=CF_SENML_JSON)

        self.fw = Fw()
        site = resource.Site()
        site.add_resource(["5", "0"], self.fw)
        site.add_resource(["5", "0", "1"], Uri())
        site.add_resource(["5", "0", "2"], Update())
        site.add_resource(["3", "0", "3"], Version())
        self.site = site

    def _set(self, state: int, result: int) -> None:
        self.state, self.result = state, result
        self.history.append(state)
        self.fw.updated_state()

    async def download(self, uri: str) -> None:
        self._set(1, 0)
        async with httpx.AsyncClient() as http:
            got = await http.get(uri)
        if got.status_code != 200:
            self._set(0, 7)
            return
        self._package = got.content
        self._set(2, 0)

    async def install(self) -> None:
        self._set(3, 0)
        await asyncio.sleep(0)
        if self.broken:
            self._set(0, 8)
            return
        self.version = self._package.decode().split()[-1]
        self._set(0, 1)

    async def register(self, port: int) -> aiocoap.Context:
        ctx = await aiocoap.Context.create_server_context(self.site, bind=("127.0.0.1", 0))
        req = aiocoap.Message(code=aiocoap.POST, payload=b"</3/0>,</5/0>", content_format=40,
                              uri=f"coap://127.0.0.1:{port}/rd?ep={self.name}&lt=300&b=U")
        resp = await ctx.request(req).response
        assert aiocoap.CREATED == resp.code, resp
        return ctx


def test_aiocoap_devices_take_a_staged_firmware_rollout(env: Env, package_server: str) -> None:
    inv = env.subs.inventory
    canary = inv.create_group(TENANT, "canary", actor="test")
    fleet = inv.create_group(TENANT, "fleet", actor="test")
    inv.update_sim(iccid(1), group_id=canary.id, actor="test")
    inv.update_sim(iccid(2), group_id=fleet.id, actor="test")
    inv.update_sim(iccid(3), group_id=fleet.id, actor="test")
    devices = [AiocoapDevice(new_endpoint_name(IMEI1, imsi(1).value)),
               AiocoapDevice(new_endpoint_name(IMEI2, imsi(2).value)),
               AiocoapDevice(new_endpoint_name(IMEI1, imsi(3).value))]
    campaigns = FirmwareCampaigns(env.devices.manager, step_timeout=30, fmt=CF_SENML_JSON)

    async def scenario() -> dict[str, Any]:
        contexts = [await d.register(env.devices.nosec_port or 0) for d in devices]
        try:
            campaign = campaigns.create(TENANT, f"{package_server}/fw-2.0.0.bin", "2.0.0",
                                        groups=[canary.id, fleet.id], failure_threshold=0.0)
            assert [[devices[0].name], sorted([devices[1].name, devices[2].name])] == \
                campaign.stages
            done = await campaigns.run(campaign.campaign_id)
            return done.to_json()
        finally:
            for ctx in contexts:
                await ctx.shutdown()

    result = env.devices.call(scenario())
    assert "completed" == result["status"]
    assert {d.name: "updated" for d in devices} == result["results"]
    for dev in devices:
        assert "2.0.0" == dev.version
        assert [1, 2, 3, 0] == dev.history  # Downloading, Downloaded, Updating, Idle (§E.6)
    assert "2.0.0" == env.devices.run_sync(
        lambda: env.devices.manager.get(devices[0].name).firmware)


def test_failed_canary_halts_the_rollout_and_alerts(env: Env, package_server: str) -> None:
    inv = env.subs.inventory
    canary = inv.create_group(TENANT, "canary", actor="test")
    fleet = inv.create_group(TENANT, "fleet", actor="test")
    inv.update_sim(iccid(1), group_id=canary.id, actor="test")
    inv.update_sim(iccid(2), group_id=fleet.id, actor="test")
    broken = AiocoapDevice(new_endpoint_name(IMEI1, imsi(1).value), broken=True)
    healthy = AiocoapDevice(new_endpoint_name(IMEI2, imsi(2).value))
    campaigns = FirmwareCampaigns(env.devices.manager, step_timeout=30, fmt=CF_SENML_JSON)

    async def scenario() -> dict[str, Any]:
        contexts = [await broken.register(env.devices.nosec_port or 0),
                    await healthy.register(env.devices.nosec_port or 0)]
        try:
            campaign = campaigns.create(TENANT, f"{package_server}/fw-2.0.0.bin", "2.0.0",
                                        groups=[canary.id, fleet.id], failure_threshold=0.0)
            return (await campaigns.run(campaign.campaign_id)).to_json()
        finally:
            for ctx in contexts:
                await ctx.shutdown()

    result = env.devices.call(scenario())
    assert ("halted", 0) == (result["status"], result["halted_at_stage"])
    assert "update failed: update failed" == result["results"][broken.name]
    assert result["results"][healthy.name].startswith("not started")
    assert "1.0.0" == healthy.version
    assert ["rollout-halted"] == [a.kind for a in env.alerts.alerts]
