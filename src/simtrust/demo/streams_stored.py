"""Streams, stored: a certified meter's readings kept, proven and re-scored by live events.

A community tenant's meter has a SIM whose DID key (generated in its secure
element) signs the readings; the platform issuer certifies the device with a
``DeviceCertificate`` naming that DID. The meter's channel is registered with
the certificate, the SIM attaches in its certified device, and two readings
are published to the stored streams service: each is checked, stored durably
and annotated. The batch is anchored and one reading proven against the
ledger's root alone. Then the SIM turns up in another device: the attach event
drops ``sim`` on the stored readings and the next reading raises a
cloned-meter alert, so the score falls (docs/streams.md).
"""

from __future__ import annotations

import base64
import itertools
import os
import secrets
from typing import Any

from simtrust.identity import provision_sim_identity
from simtrust.streams import (
    Author,
    MeterReading,
    ProvenanceGraph,
    encode_reading,
    stream_domain,
    verify_message_proof,
)
from simtrust.subscriber import (
    AttachPolicy,
    BindingMode,
    Iccid,
    Imei,
    Imsi,
    OpKind,
    SimSecrets,
    SimSpec,
    SimState,
    luhn_check_digit,
)

ORDER = 66
TENANT = "sunny-street-coop"


def run(ctx: Any) -> dict[str, Any]:
    rt = ctx.rt
    if TENANT not in {t.id for t in rt.tenants.list_tenants()}:
        rt.tenants.create_tenant(TENANT, "Sunny Street energy community")
    inventory = rt.subscriber.inventory
    inventory.set_policy(AttachPolicy(TENANT, binding_mode=BindingMode.ICCID_PRIMARY),
                         actor="demo")
    body = "898827700000000066"
    iccid = Iccid(body + str(luhn_check_digit(body)))
    imsi = Imsi("001019900000066", 2)
    imei, elsewhere = Imei.from_tac_snr("35209900", "000066"), Imei.from_tac_snr(
        "35209900", "000067")
    inventory.add_sim(TENANT, SimSpec(iccid, imsi, secrets=SimSecrets(
        os.urandom(16), os.urandom(16), OpKind.OPC), state=SimState.ACTIVE,
        static_ip="10.66.0.1"), actor="demo")
    identity = rt.identity
    sim = provision_sim_identity(identity.element(iccid.value), network=identity.network,
                                 now=identity.now())
    identity.submit_operation(sim.operation)
    meter_did = "did:example:sunny-street-meter-7"
    certificate = identity.issue({
        "@context": ["https://www.w3.org/ns/credentials/v2",
                     "https://www.w3.org/ns/credentials/examples/v2"],
        "id": f"urn:uuid:{secrets.token_hex(16)}",
        "type": ["VerifiableCredential", "DeviceCertificate"],
        "validFrom": "2026-01-01T00:00:00Z",
        "credentialSubject": {"id": sim.did, "meter": meter_did, "iccid": iccid.value,
                              "imei": imei.value},
    }, {"credentialStatus": {"type": "BitstringStatusListEntry"}})
    ticks = itertools.count(1_767_225_600_000, 900_000)
    author = Author(sim.signer, lambda: next(ticks))
    streams = rt.streams
    channel = streams.open_channel(TENANT, author.announce.to_bytes(), label="meter 7",
                                   actor="demo")["id"]
    streams.register_meter(TENANT, channel, certificate, actor="demo")
    ctx.say(f"meter {meter_did} registered by its device certificate (SIM DID {sim.did[:32]}…)")
    rt.subscriber.attach.decide(imsi, imei, "00101")
    address = rt.subscriber.addresses.address_of(imsi.value)
    published = []
    for wh, at in ((52_000, 1_767_225_600), (52_400, 1_767_226_500)):
        frame = author.publish(encode_reading(MeterReading(meter_did, wh, at))).to_bytes()
        published.append(streams.publish(channel, frame, source=address, actor="demo"))
    first = published[0]["message_id"]
    ctx.say(f"two readings stored and annotated; score {published[0]['score']} "
            "(no tier-2 certificate yet, not anchored yet)")
    anchored = streams.anchor(channel, actor="demo")
    message = streams.message(first)
    anchor = rt.ledger.anchor_covering(stream_domain(bytes.fromhex(channel)),
                                       message["proof"]["position"])
    if anchor is None:
        raise RuntimeError("the batch anchor is not on the ledger")
    verify_message_proof(base64.b64decode(message["frame"]), message["proof"], anchor["root"])
    before = streams.score(first)
    ctx.say(f"batch of {anchored['anchored']} anchored; reading {first[:16]}… proven against "
            f"the ledger root; score {before}")
    # The SIM shows up in another device: the attach event re-annotates the stored readings,
    # and the next reading from there is a cloned meter.
    rt.subscriber.attach.decide(imsi, elsewhere, "00101")
    clone = streams.publish(channel, author.publish(encode_reading(
        MeterReading(meter_did, 52_900, 1_767_227_400))).to_bytes(), actor="demo")
    after = streams.score(first)
    graph = streams.provenance(first)
    ProvenanceGraph.check(graph)
    for alert in clone["alerts"]:
        ctx.say(f"alert {alert['kind']}: {alert['explanation']}")
    ctx.say(f"score of the stored reading {before} -> {after} after the SIM moved")
    if not clone["alerts"] or after >= before:
        raise RuntimeError("the stored streams demo misbehaved")
    return {
        "meter": meter_did,
        "channel": channel,
        "score_before": str(before),
        "score_after": str(after),
        "alerts": [a["kind"] for a in clone["alerts"]],
        "anchor": anchored["anchor"],
        "annotations": len(graph["nodes"][first]["annotations"]),
    }
