"""``simtrust testnet up|status|down`` and ``simtrust node run`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simtrust.ledger.net import Testnet

from .conftest import wait_sync


def _simtrust(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simtrust", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.mark.slow
def test_testnet_up_status_down(tmp_path: Path) -> None:
    directory = tmp_path / "tn"
    up = _simtrust("testnet", "up", "1", "--dir", str(directory), "--json")
    try:
        assert 0 == up.returncode, up.stderr
        data = json.loads(up.stdout)
        node = data["nodes"][0]
        assert node["api"].startswith("127.0.0.1:")
        assert node["p2p"].startswith("127.0.0.1:")
        assert node["running"]

        def round_of_node_0() -> int:
            status = json.loads(_simtrust("testnet", "status", "--dir", str(directory),
                                          "--json").stdout)
            return int(status["nodes"][0].get("round", 0))

        # A committee of one: every round it proposes is a quorum, so rounds advance.
        wait_sync(lambda: round_of_node_0() >= 3, "node 0 to reach round 3")
    finally:
        down = _simtrust("testnet", "down", "--dir", str(directory), "--json")
    assert 0 == down.returncode, down.stderr
    net = Testnet.load(directory)
    assert not net.running(0)


def test_node_run_with_a_bad_genesis_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "genesis.json"
    bad.write_text('{"format": "something else"}')
    key = tmp_path / "key.json"
    key.write_text("{}")
    result = _simtrust("node", "run", "--genesis", str(bad), "--key", str(key),
                       "--home", str(tmp_path / "home"), timeout=60)
    assert 2 == result.returncode
    assert 1 == len(result.stderr.strip().splitlines())
    assert "genesis" in result.stderr


def test_a_validator_process_freezes_its_start_state_and_collects_rarely() -> None:
    import gc  # noqa: PLC0415 - only this test touches the collector

    from simtrust.cli.node import settle_gc  # noqa: PLC0415

    before = gc.get_threshold()
    try:
        settle_gc()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] >= 50 * before[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
