"""Streams over HTTP: channels, frames, proofs, provenance and meters, tenant-scoped,
with RFC 9457 problems that name the verdict of a refused frame."""

from __future__ import annotations

import base64
from typing import Any

from simtrust.identity import Ed25519Signer
from simtrust.runtime import Runtime
from simtrust.streams import (
    Author,
    MeterReading,
    ProvenanceGraph,
    Reader,
    encode_reading,
    stream_domain,
    verify_message_proof,
)
from tests.streams.world import TENANT, setup_tenant, sim_meter

PROBLEM = "application/problem+json"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_a_meter_publishes_over_http_and_its_reading_is_proven(
        api: Any, sqlite_runtime: Runtime) -> None:
    rt = sqlite_runtime
    setup_tenant(rt)
    admin = {"Authorization": "Bearer " + rt.tenants.create_key(
        "tenant-admin", "acme admin", tenant_id=TENANT).secret}
    rt.tenants.create_tenant("other", "Other")
    stranger = {"Authorization": "Bearer " + rt.tenants.create_key(
        "tenant-admin", "other admin", tenant_id="other").secret}
    meter = sim_meter(rt, 1)
    author = meter.author
    created = api.post("/v1/streams/channels", headers=admin, json={
        "announce": _b64(author.announce.to_bytes()), "label": "meter 1"})
    assert 201 == created.status_code, created.text
    channel = created.json()["id"]
    registered = api.post("/v1/meters", headers=admin, json={
        "channel": channel, "credential": meter.credential})
    assert 201 == registered.status_code, registered.text
    rt.subscriber.attach.decide(meter.imsi, meter.imei, "00101")
    frames = [author.publish(encode_reading(MeterReading(meter.meter_did, wh, at))).to_bytes()
              for wh, at in ((100, 1), (250, 2))]
    for frame in frames:
        sent = api.post(f"/v1/streams/channels/{channel}/messages", headers=admin,
                        json={"frame": _b64(frame)})
        assert 201 == sent.status_code, sent.text
    assert "ok" == sent.json()["verdict"]
    # Refused frames are problems naming the verdict, and counted.
    replay = api.post(f"/v1/streams/channels/{channel}/messages", headers=admin,
                      json={"frame": _b64(frames[0])})
    assert (409, PROBLEM, "replay") == (replay.status_code,
                                        replay.headers["content-type"].split(";")[0],
                                        replay.json()["verdict"])
    forged = bytearray(author.publish(b"x").to_bytes())
    forged[-1] ^= 1
    bad = api.post(f"/v1/streams/channels/{channel}/messages", headers=admin,
                   json={"frame": _b64(bytes(forged))})
    assert (400, "forged") == (bad.status_code, bad.json()["verdict"])
    assert {"replay": 1, "forged": 1} == api.get(
        f"/v1/streams/channels/{channel}", headers=admin).json()["rejected"]
    # Another tenant sees nothing, exactly like a missing channel.
    hidden = api.get(f"/v1/streams/channels/{channel}", headers=stranger)
    missing = api.get(f"/v1/streams/channels/{'ab' * 32}", headers=stranger)
    assert (404, 404) == (hidden.status_code, missing.status_code)
    assert hidden.json()["detail"].split()[:2] == missing.json()["detail"].split()[:2]
    assert [] == api.get("/v1/meters", headers=stranger).json()["meters"]
    # A subscriber reads the stored frames and verifies them itself.
    listed = api.get(f"/v1/streams/channels/{channel}/messages", headers=admin).json()
    reader = Reader(base64.b64decode(listed["messages"][0]["frame"]))
    verdicts = [reader.accept(base64.b64decode(m["frame"])).verdict
                for m in listed["messages"][1:]]
    assert ["ok", "ok"] == verdicts
    # Anchored, one reading is proven against the ledger's root alone.
    assert 3 == api.post(f"/v1/streams/channels/{channel}/anchor",
                         headers=admin).json()["anchored"]
    datum = sent.json()["message_id"]
    message = api.get(f"/v1/streams/messages/{datum}", headers=admin).json()
    anchor = rt.ledger.anchor_covering(stream_domain(bytes.fromhex(channel)),
                                       message["proof"]["position"])
    assert anchor is not None
    verify_message_proof(base64.b64decode(message["frame"]), message["proof"], anchor["root"])
    # A derived datum and its provenance graph, checked by anyone.
    first = listed["messages"][1]["message_id"]
    derived = api.post("/v1/provenance/derived", headers=admin,
                       json={"inputs": [first, datum], "label": "total"})
    assert 201 == derived.status_code, derived.text
    graph = api.get(f"/v1/provenance/{derived.json()['datum']}", headers=admin).json()
    ProvenanceGraph.check(graph)
    assert {first, datum, derived.json()["datum"]} == set(graph["nodes"])
    assert 404 == api.get(f"/v1/provenance/{datum}", headers=stranger).status_code
    meter_doc = api.get(f"/v1/meters/{meter.meter_did}", headers=admin).json()
    assert (250, []) == (meter_doc["register_wh"], meter_doc["alerts"])


def test_policy_weights_and_bad_input(api: Any, sqlite_runtime: Runtime,
                                      operator_headers: dict[str, str]) -> None:
    rt = sqlite_runtime
    setup_tenant(rt, sims=0)
    put = api.put("/v1/streams/policy", headers=operator_headers,
                  json={"tenant_id": TENANT, "weights": {"signature": 1, "clean": 1}})
    assert 200 == put.status_code, put.text
    got = api.get(f"/v1/streams/policy?tenant_id={TENANT}", headers=operator_headers).json()
    assert {"signature": 1, "clean": 1} == got["weights"]
    unknown = api.put("/v1/streams/policy", headers=operator_headers,
                      json={"tenant_id": TENANT, "weights": {"vibes": 1}})
    assert (400, PROBLEM) == (unknown.status_code,
                              unknown.headers["content-type"].split(";")[0])
    author = Author(Ed25519Signer.generate(), lambda: 1)
    not_b64 = api.post("/v1/streams/channels", headers=operator_headers,
                       json={"tenant_id": TENANT, "announce": "***"})
    assert 400 == not_b64.status_code
    no_tenant = api.post("/v1/streams/channels", headers=operator_headers,
                         json={"announce": _b64(author.announce.to_bytes())})
    assert 400 == no_tenant.status_code
    data = author.publish(b"not an announce").to_bytes()
    wrong = api.post("/v1/streams/channels", headers=operator_headers,
                     json={"tenant_id": TENANT, "announce": _b64(data)})
    assert 400 == wrong.status_code
