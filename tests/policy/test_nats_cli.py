"""``simtrust flows nats-setup | collect --nats | consume`` against the real NATS server."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import nats

from tests.policy.test_cli import MAIN, run
from tests.policy.test_ipfix import FLOW_FIELDS, REC, ipfix, set_, template


def _drop(stream: str) -> None:
    async def go() -> None:
        nc = await nats.connect("nats://127.0.0.1:4222")
        try:
            await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()

    asyncio.run(go())


def test_collect_to_nats_then_consume_counts_every_published_flow(
        tmp_path: Path, require_service: Callable[[str], None]) -> None:
    require_service("nats")
    home = tmp_path / "home"
    tag = uuid.uuid4().hex[:10]
    stream, subject = f"T_CLI_{tag}", f"t{tag}.flows"
    assert 0 == run(home, "init").returncode
    common = ("--stream", stream, "--subject", subject)
    try:
        first = run(home, "flows", "nats-setup", *common, "--memory", "--max-bytes",
                    str(16 << 20), "--max-age", "600", "--json")
        again = run(home, "flows", "nats-setup", *common, "--memory", "--max-bytes",
                    str(16 << 20), "--max-age", "600", "--json")
        assert ("created", "unchanged") == (json.loads(first.stdout)["outcome"],
                                            json.loads(again.stdout)["outcome"]), first.stderr
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {**os.environ, "SIMTRUST_HOME": str(home)}
        proc = subprocess.Popen(
            [sys.executable, "-c", MAIN, "flows", "collect", "--port", str(port), "--count", "4",
             "--duration", "40", "--json", "--nats", "--partitions", "2", *common],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            msg = ipfix([set_(2, template(256, FLOW_FIELDS)), set_(256, REC + REC)])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                for _ in range(250):
                    tx.sendto(msg, ("127.0.0.1", port))
                    time.sleep(0.1)
                    if proc.poll() is not None:
                        break
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        published = json.loads(out.splitlines()[-1])["published"]
        assert published["records"] >= 4, err
        assert (0, published["records"]) == (published["errors"], published["unmapped"])
        done = run(home, "flows", "consume", "--partitions", "0-1", "--of", "2", *common,
                   "--idle-exit", "1", "--json")
        assert 0 == done.returncode, done.stderr
        doc = json.loads(done.stdout.splitlines()[-1])
        assert published["records"] == doc["consumed"]["records"]
        assert published["records"] * 900 == sum(p["octets"] for p in doc["partitions"].values())
        bad = run(home, "flows", "consume", "--partitions", "2", "--of", "2", *common)
        assert 2 == bad.returncode
    finally:
        _drop(stream)
