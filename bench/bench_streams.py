"""Signed channel messages through the real MQTT broker, and confidence scoring.

Figures (issue 17): ``metrics.messages_per_s``: messages an author signs and
publishes to Mosquitto (127.0.0.1:1883, QoS 1) and a subscriber in a second
process receives and verifies (signature, hash chain) per second, counted
from the subscriber's ready signal to its last verified message;
``limits.ed25519_sign_verify_per_s``: one Ed25519 sign plus one verify of a
frame-sized message with the same primitives (libsodium for both: the author
key is a ``SodiumSigner``, the reader verifies with the project's verifier),
in the same run;
``ratios.messages_to_raw``; ``metrics.scores_per_s``: confidence scores of a
datum with all six annotation kinds under the default policy;
``metrics.clearing_s``: one double-auction clearing for 10,000 prosumers.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from random import Random

from simtrust.benchmark import BenchResult, rate
from simtrust.identity import Ed25519Signer, verify_ed25519
from simtrust.streams import (
    ANNOTATION_KINDS,
    Author,
    ConfidencePolicy,
    MqttChannelPublisher,
    MqttChannelSubscriber,
    Order,
    Reader,
    SodiumSigner,
    clear,
    sign_annotation,
)

NAME = "streams"
DESCRIPTION = "signed messages through Mosquitto verified per second vs raw Ed25519; scores/s"

URL = os.environ.get("SIMTRUST_MQTT_URL", "mqtt://127.0.0.1:1883")
PREFIX = "simtrust-bench/streams"
# Mosquitto queues at most 1,000 QoS 1 messages for a slow subscriber and drops
# the rest, so the publisher keeps at most WINDOW messages ahead of it.
WINDOW = 750
WINDOW_STEP = 250


def _child(announce_hex: str, count: int) -> None:
    """The subscriber process: verify ``count`` messages, then print the verdicts."""


    reader = Reader(bytes.fromhex(announce_hex))
    done = threading.Event()
    seen = itertools.count(1)

    def on_delivery(_delivery: object) -> None:
        n = next(seen)
        if n % WINDOW_STEP == 0:
            print(f"p {n}", flush=True)  # progress: the publisher's flow control
        if n >= count:
            done.set()

    subscriber = MqttChannelSubscriber(URL, reader, on_delivery, prefix=PREFIX)
    subscriber.wait_subscribed()
    print("ready", flush=True)
    done.wait(120)
    subscriber.close()
    print(json.dumps(dict(reader.counts)), flush=True)


def _through_broker(count: int) -> tuple[float, dict[str, int]]:

    ticks = itertools.count(1_700_000_000_000)
    author = Author(SodiumSigner.generate(), lambda: next(ticks))
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", author.announce.to_bytes().hex(), str(count)],
        stdout=subprocess.PIPE, text=True,
    )
    assert child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        child.kill()
        raise RuntimeError("the subscriber process did not come up")
    publisher = MqttChannelPublisher(URL, prefix=PREFIX)
    payload = b'{"meter":"m-1","kWh":1234567}'
    start = time.perf_counter()
    sent = acked = 0
    while sent < count:
        batch = [author.publish(payload).to_bytes() for _ in range(min(WINDOW_STEP, count - sent))]
        # Pipelined: the next batch is signed while the broker acknowledges this one.
        publisher.publish_nowait(author.channel, batch)
        sent += len(batch)
        while sent - acked > WINDOW:
            line = child.stdout.readline().split()
            if not line or line[0] != "p":
                break
            acked = int(line[1])
    line = child.stdout.readline()
    while line.startswith("p "):
        line = child.stdout.readline()
    counts = json.loads(line)
    publisher.flush()
    elapsed = time.perf_counter() - start
    child.wait(60)
    publisher.close()
    return count / elapsed, counts


def _raw_sign_verify() -> float:
    signer = SodiumSigner.generate()
    message = bytes(260)

    def once() -> None:
        verify_ed25519(signer.public_key, signer.sign(message), message)

    return rate(once, min_seconds=0.5)


def _scores() -> float:

    annotator = Ed25519Signer.generate()
    annotations = [sign_annotation(annotator, "d", kind, True) for kind in ANNOTATION_KINDS]
    policy = ConfidencePolicy()
    return rate(lambda: policy.score(annotations), min_seconds=0.5, batch=1000)


def _clearing_seconds(prosumers: int) -> float:
    """Seconds to clear one interval with ``prosumers`` orders (half bids, half offers)."""


    draw = Random(17)
    orders = [
        Order(f"p{i}", "buy" if i % 2 else "sell", draw.randint(100, 5000), draw.randint(5, 40))
        for i in range(prosumers)
    ]
    start = time.perf_counter()
    clear(orders)
    return time.perf_counter() - start


def run(quick: bool) -> BenchResult:
    count = 1_000 if quick else 30_000
    raw = _raw_sign_verify()
    messages, counts = _through_broker(count)
    raw = max(raw, _raw_sign_verify())
    result = BenchResult(bench=NAME)
    result.metrics["messages_per_s"] = round(messages, 1)
    result.metrics["scores_per_s"] = round(_scores(), 1)
    result.metrics["clearing_s"] = round(min(_clearing_seconds(10_000) for _ in range(3)), 4)
    result.limits["ed25519_sign_verify_per_s"] = round(raw, 1)
    result.ratio("messages_to_raw", "messages_per_s", "ed25519_sign_verify_per_s")
    result.notes.update({
        "messages": count,
        "verdicts": counts,
        "broker": URL,
        "targets": "messages >= 5000/s and >= 0.3 of raw sign+verify; scores >= 20000/s; "
                   "clearing of 10,000 prosumers <= 1 s",
    })
    return result


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--child":
    _child(sys.argv[2], int(sys.argv[3]))
