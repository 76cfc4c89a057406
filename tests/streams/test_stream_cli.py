"""``simtrust stream``, ``provenance`` and ``meter``: --json documents, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from simtrust.cli import main
from simtrust.config import load_settings
from simtrust.runtime import Runtime
from tests.streams.world import TENANT, setup_tenant, sim_meter


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    rt = Runtime.initialise(load_settings(env={}, home=path))
    try:
        setup_tenant(rt)
    finally:
        rt.close()
    monkeypatch.setenv("SIMTRUST_HOME", str(path))
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    captured = capsys.readouterr()
    code = int(done.value.code or 0)
    return code, json.loads(captured.out) if code == 0 and "--json" in argv else None, \
        captured.err


def test_open_publish_read_anchor_and_show_provenance(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "author.key"
    code, made, _ = _run(["stream", "keygen", str(key), "--json"], capsys)
    assert (0, 0o600) == (code, key.stat().st_mode & 0o777)
    _, channel, _ = _run(["stream", "open", "--tenant", TENANT, "--key", str(key),
                          "--label", "sensor", "--json"], capsys)
    assert made["public_key"] == channel["author"]
    ids = []
    for text in ("21.5", "21.7"):
        code, sent, err = _run(["stream", "publish", channel["id"], "--key", str(key),
                                "--data", text, "--json"], capsys)
        assert (0, "ok") == (code, sent["verdict"]), err
        ids.append(sent["message_id"])
    _, read, _ = _run(["stream", "read", channel["id"], "--json"], capsys)
    assert ["announce", "data", "data"] == [m["kind"] for m in read["messages"]]
    _, anchored, _ = _run(["stream", "anchor", channel["id"], "--json"], capsys)
    assert 3 == anchored["anchored"]
    _, derived, _ = _run(["stream", "derive", *ids, "--label", "mean", "--json"], capsys)
    svg = tmp_path / "graph.svg"
    code, graph, _ = _run(["provenance", derived["datum"], "--svg", str(svg), "--json"], capsys)
    assert 0 == code
    assert {*ids, derived["datum"]} == set(graph["nodes"])
    assert graph["nodes"][ids[0]]["proof"]["root"] == anchored["root"]
    assert svg.read_text(encoding="utf-8").startswith("<svg")
    code, _, _ = _run(["stream", "policy", TENANT, "--set", "signature=2", "--json"], capsys)
    assert 0 == code


@pytest.mark.parametrize("argv", [
    ["stream", "publish", "00" * 32, "--key", "{bad_key}", "--data", "x"],
    ["stream", "publish", "zz", "--frame", "{bad_key}"],
    ["stream", "show", "zz"],
    ["provenance", "no-such-datum"],
    ["meter", "register", "00" * 32, "{bad_key}", "--tenant", TENANT],
    ["stream", "policy", TENANT, "--set", "signature"],
])
def test_bad_input_is_one_line(home: Path, tmp_path: Path, argv: list[str],
                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n", encoding="utf-8")
    code, _, err = _run([a.format(bad_key=bad) for a in argv], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert 1 == len(lines), err
    assert code in (1, 2), err
    assert code == (1 if "no-such-datum" in argv else 2), err


def test_meter_register_and_show(home: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    rt = Runtime.open(load_settings(env={}, home=home))
    try:
        meter = sim_meter(rt, 1)
        channel = rt.streams.open_channel(TENANT, meter.author.announce.to_bytes(),
                                          actor="t")["id"]
    finally:
        rt.close()
    credential = tmp_path / "cert.json"
    credential.write_text(json.dumps(meter.credential), encoding="utf-8")
    code, doc, err = _run(["meter", "register", channel, str(credential), "--tenant", TENANT,
                           "--json"], capsys)
    assert (0, meter.meter_did) == (code, doc["meter"]), err
    _, listed, _ = _run(["meter", "list", "--json"], capsys)
    assert [meter.meter_did] == [m["meter"] for m in listed["meters"]]
    code, _, err = _run(["meter", "register", channel, str(credential), "--tenant", TENANT],
                        capsys)
    assert 1 == code
    assert "registered already" in err


def test_energy_order_interval_clear_and_settle(home: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The stored market from the command line: orders until the gate closes, then a
    past interval clears (nothing crosses) and settles; bad input is one line."""
    rt = Runtime.open(load_settings(env={}, home=home))
    try:
        meter = sim_meter(rt, 1)
        channel = rt.streams.open_channel(TENANT, meter.author.announce.to_bytes(),
                                          actor="t")["id"]
        rt.streams.register_meter(TENANT, channel, meter.credential, actor="t")
    finally:
        rt.close()
    future = 4_102_444_800  # 2100-01-01T00:00:00Z, a multiple of 900 s
    code, made, err = _run(["energy", "order", "--interval", str(future), "--meter",
                            meter.meter_did, "--side", "sell", "--wh", "100", "--price", "9",
                            "--tenant", TENANT, "--json"], capsys)
    assert (0, "sell") == (code, made["side"]), err
    code, shown, err = _run(["energy", "interval", str(future), "--tenant", TENANT, "--json"],
                            capsys)
    assert (0, 1, "open") == (code, len(shown["orders"]), shown["status"]), err
    code, _, err = _run(["energy", "clear-interval", str(future), "--tenant", TENANT], capsys)
    assert 1 == code  # the gate has not closed
    past = 1_767_225_600
    code, due, err = _run(["energy", "clear-due", "--tenant", TENANT, "--json"], capsys)
    assert (0, []) == (code, due["cleared"]), err  # the only order's gate is still open
    code, cleared, err = _run(["energy", "clear-interval", str(past), "--tenant", TENANT,
                               "--json"], capsys)
    assert (0, "cleared", None) == (code, cleared["status"], cleared["price"]), err
    code, settled, err = _run(["energy", "settle", str(past), "--tenant", TENANT, "--token",
                               "ab" * 32, "--json"], capsys)
    assert (0, "settled", []) == (code, settled["status"], settled["payments"]["transfers"]), err
    code, balance, err = _run(["energy", "balance", "--meter", meter.meter_did, "--tenant",
                               TENANT, "--json"], capsys)
    assert (0, {}) == (code, balance["balances"]), err
    code, _, err = _run(["energy", "deposit", "--meter", meter.meter_did, "--message-id",
                         "00" * 32, "--tenant", TENANT], capsys)
    assert 1 == code, err  # no such finalized transfer
    code, _, err = _run(["energy", "order", "--interval", str(future), "--meter",
                         meter.meter_did, "--side", "buy", "--wh", "100", "--price", "9",
                         "--tenant", TENANT], capsys)
    assert 1 == code, err  # a bid needs a deposit first
    assert "no deposit" in err
    code, _, err = _run(["energy", "withdraw", "--meter", meter.meter_did, "--token", "ab" * 32,
                         "--amount", "1", "--tenant", TENANT], capsys)
    assert 1 == code, err  # nothing deposited, nothing to withdraw
    code, recovered, err = _run(["energy", "recover", "--json"], capsys)
    assert (0, []) == (code, recovered["recovered"]), err
    for argv in (["energy", "order", "--interval", str(future + 1), "--meter", meter.meter_did,
                  "--side", "sell", "--wh", "1", "--price", "1", "--tenant", TENANT],
                 ["energy", "order", "--interval", str(future), "--meter", meter.meter_did,
                  "--side", "hold", "--wh", "1", "--price", "1", "--tenant", TENANT],
                 ["energy", "settle", str(past), "--tenant", TENANT, "--token", "xyz"],
                 ["energy", "deposit", "--meter", meter.meter_did, "--message-id", "zz",
                  "--tenant", TENANT],
                 ["energy", "withdraw", "--meter", meter.meter_did, "--token", "zz",
                  "--amount", "1", "--tenant", TENANT]):
        code, _, err = _run(argv, capsys)
        assert 2 == code, (argv, err)
        assert 1 == len([line for line in err.splitlines() if line.strip()]), err
