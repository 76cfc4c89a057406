"""tshark (Debian) dissects what the servers exchanged — DTLS 1.2 handshakes and records
on the management and bootstrap ports, plain CoAP with LwM2M paths and SenML on the NoSec
port — and finds no malformed packet."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiocoap

from simtrust.devices import CF_SENML_JSON, FirmwareCampaigns, Lwm2mClient, new_endpoint_name
from tests.aaa.peers import Capture

from .conftest import IMEI1, IMEI2, TENANT, Env, imsi
from .test_blockwise import PACKAGE, BlockDevice


def _tap(link: Any, capture: Capture, port: int) -> None:
    """Record every datagram a server link sends and receives."""
    transport = link._transport
    sendto = transport.sendto
    received = link.datagram_received

    def send(data: bytes, addr: Any = None) -> None:
        capture.add(port, addr[1], data)
        sendto(data, addr)

    def receive(data: bytes, addr: Any) -> None:
        capture.add(addr[1], port, data)
        received(data, addr)

    transport.sendto = send
    link.datagram_received = receive


def test_tshark_dissects_dtls_and_coap_without_malformed_packets(env: Env,
                                                                  tmp_path: Path) -> None:
    tshark = shutil.which("tshark")
    assert tshark is not None, "tshark (Debian) is needed"
    capture = Capture()
    dev = env.devices
    links = {dev.dm_port: dev.dm_link, dev.bs_port: dev.bs_link, dev.nosec_port: dev.nosec_link}

    async def tap() -> None:
        for port, link in links.items():
            assert port is not None
            _tap(link, capture, port)

    dev.call(tap())
    identity, key = env.gba(1)
    meter = Lwm2mClient(new_endpoint_name(IMEI1, imsi(1).value))

    async def traffic() -> None:
        await meter.bootstrap(env.bs_uri, identity, key)
        await meter.register()
        await dev.manager.read(meter.endpoint_name, (3, 0))
        ctx = await aiocoap.Context.create_client_context()
        try:
            name = new_endpoint_name(IMEI2, imsi(2).value)
            req = aiocoap.Message(code=aiocoap.POST, payload=b"</3/0>,</5/0>",
                                  content_format=40,
                                  uri=f"coap://127.0.0.1:{dev.nosec_port}/rd?ep={name}&lt=60")
            resp = await ctx.request(req).response
            assert aiocoap.CREATED == resp.code
            bad = aiocoap.Message(code=aiocoap.POST, uri=f"coap://127.0.0.1:{dev.nosec_port}/rd")
            assert aiocoap.BAD_REQUEST == (await ctx.request(bad).response).code
        finally:
            await ctx.shutdown()

    try:
        dev.call(traffic())
    finally:
        meter.close()
    ports = {dev.dm_port: 5684, dev.bs_port: 5784, dev.nosec_port or 0: 5683}
    pcap = capture.write_pcap(tmp_path / "lwm2m.pcap", ports)
    args = [tshark, "-r", str(pcap), "-d", "udp.port==5784,dtls"]
    malformed = subprocess.run([*args, "-Y", "_ws.malformed || _ws.expert.severity >= 0x00800000"],
                               capture_output=True, text=True, timeout=60, check=True)
    assert "" == malformed.stdout.strip(), malformed.stdout
    fields = subprocess.run([*args, "-T", "fields", "-e", "frame.protocols",
                             "-e", "dtls.record.content_type", "-e", "coap.opt.uri_path"],
                            capture_output=True, text=True, timeout=60, check=True).stdout
    assert "udp:dtls" in fields
    assert "22" in fields  # handshake records
    assert "23" in fields  # application data records
    assert "udp:coap" in fields
    assert "rd" in fields
    frames = fields.splitlines()
    assert len(frames) >= 20
    assert all(f.startswith(("raw:ip:udp:dtls", "raw:ip:udp:coap")) for f in frames), frames


def test_tshark_dissects_certificate_handshakes_and_block_wise_coap(env: Env,
                                                                      tmp_path: Path) -> None:
    """Certificate mode (bootstrap-provisioned, Certificate and CertificateVerify in the
    DTLS handshake) and Block1/Block2 exchanges with an aiocoap device on the NoSec port."""
    tshark = shutil.which("tshark")
    assert tshark is not None, "tshark (Debian) is needed"
    env.boot.cas.create_hosted(TENANT, "lwm2m", common_name="Acme LwM2M CA", actor="test")
    capture = Capture()
    dev = env.devices
    links = {dev.dm_port: dev.dm_link, dev.bs_port: dev.bs_link, dev.nosec_port: dev.nosec_link}

    async def tap() -> None:
        for port, link in links.items():
            assert port is not None
            _tap(link, capture, port)

    dev.call(tap())
    identity, key = env.gba(1)
    meter = Lwm2mClient(new_endpoint_name(IMEI1, imsi(1).value))
    block_device = BlockDevice(new_endpoint_name(IMEI2, imsi(2).value))
    campaigns = FirmwareCampaigns(dev.manager, step_timeout=30, fmt=CF_SENML_JSON)

    async def traffic() -> None:
        await meter.bootstrap(env.bs_uri, identity, key)
        await meter.register()
        await dev.manager.read(meter.endpoint_name, (3, 0))
        ctx = await block_device.register(dev.nosec_port or 0)
        try:
            await dev.manager.read(block_device.name, (3, 0), fmt=CF_SENML_JSON)
            campaign = campaigns.create(TENANT, "", "3.0.0", stages=[[block_device.name]],
                                        package=PACKAGE)
            assert "completed" == (await campaigns.run(campaign.campaign_id)).status
        finally:
            await ctx.shutdown()

    try:
        dev.call(traffic())
    finally:
        meter.close()
    ports = {dev.dm_port: 5684, dev.bs_port: 5784, dev.nosec_port or 0: 5683}
    pcap = capture.write_pcap(tmp_path / "lwm2m-cert-block.pcap", ports)
    args = [tshark, "-r", str(pcap), "-d", "udp.port==5784,dtls"]
    malformed = subprocess.run([*args, "-Y", "_ws.malformed || _ws.expert.severity >= 0x00800000"],
                               capture_output=True, text=True, timeout=60, check=True)
    assert "" == malformed.stdout.strip(), malformed.stdout
    handshakes = subprocess.run(
        [*args, "-Y", "udp.port==5684", "-T", "fields", "-e", "dtls.handshake.type"],
        capture_output=True, text=True, timeout=60, check=True).stdout
    types = {t for line in handshakes.split() for t in line.split(",")}
    assert {"11", "13", "15"} <= types, types  # Certificate, CertificateRequest, Verify
    blocks = subprocess.run(
        [*args, "-Y", "coap.opt.block_number", "-T", "fields", "-e", "coap.code",
         "-e", "coap.opt.block_number"],
        capture_output=True, text=True, timeout=60, check=True).stdout.splitlines()
    codes = {line.split("\t")[0] for line in blocks}
    assert {"3", "95"} <= codes, codes  # PUT blocks of the package, 2.31 Continue
    assert "69" in codes  # 2.05 Content carrying Block2
