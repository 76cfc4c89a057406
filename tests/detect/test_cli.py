"""The offline analysis contract: ``simtrust detect pcap FILE... --subscribers MAP.csv
[--train FILE...] --json`` prints one JSON alert per line; exit 2 on unreadable input."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dpkt
import pytest

from simtrust.cli import main
from simtrust.testing.detect import attacks
from simtrust.testing.detect.cli import app as gear_app

DEVICE = "10.10.10.6"  # the Hue bridge's address in its captures


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def simtrust(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run the CLI in-process through its main wrapper (the same code as the console script)."""

    def run(*args: str | Path) -> Result:
        capsys.readouterr()
        try:
            if args[:1] == ("gear",):  # python -m simtrust.testing.detect ...
                gear_app([str(a) for a in args[1:]])
            else:
                main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@pytest.fixture(scope="module")
def hue_files(sentinel: Path) -> list[Path]:
    return sorted((sentinel / "HueBridge").glob("*.pcap"))


@pytest.fixture(scope="module")
def map_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("map") / "map.csv"
    path.write_text(f"ip,imsi,device_group\n{DEVICE},001010000000006,hue-bridge\n")
    return path


@pytest.fixture(scope="module")
def infected(hue_files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    with hue_files[1].open("rb") as fh:
        benign = [(float(ts), bytes(buf)) for ts, buf in dpkt.pcap.Reader(fh)]
    scan = attacks.mirai_scan(DEVICE, benign[0][0] + 20, duration=30)
    out = tmp_path_factory.mktemp("pcap") / "infected.pcap"
    attacks.write_pcap(out, attacks.inject(benign, scan))
    return out


def test_alerts_are_json_lines_with_the_contract_fields(
    simtrust: Callable[..., Result], infected: Path, map_csv: Path, hue_files: list[Path]
) -> None:
    res = simtrust(
        "detect",
        "pcap",
        infected,
        "--subscribers",
        map_csv,
        "--train",
        hue_files[0],
        "--train",
        hue_files[2],
        "--jsonl",
    )
    assert res.returncode == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert lines, "the scan must be reported"
    for doc in lines:
        assert {"imsi", "kind", "at", "evidence"} <= set(doc)
        assert doc["at"].endswith("Z")
    scan = [d for d in lines if d["kind"] == "scan"]
    assert scan[0]["imsi"] == "001010000000006"
    assert scan[0]["evidence"]["baseline"] in ("device:001010000000006", "cohort:hue-bridge")
    assert scan[0]["evidence"]["telnet_targets"] > 0


def test_benign_capture_without_training_is_quiet(
    simtrust: Callable[..., Result], hue_files: list[Path], map_csv: Path
) -> None:
    res = simtrust("detect", "pcap", hue_files[3], hue_files[4], "--subscribers", map_csv,
                   "--jsonl")
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""
    res = simtrust("detect", "pcap", hue_files[3], "--subscribers", map_csv, "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)  # one document, not lines
    assert [] == doc["alerts"]
    assert doc["packets"] > 0


def test_pcap_help_lists_its_options(simtrust: Callable[..., Result]) -> None:
    res = simtrust("detect", "pcap", "--help")
    assert res.returncode == 0, res.stderr
    for option in ("--subscribers", "--train", "--baselines", "--policies",
                   "--save-baselines", "--json", "--jsonl"):
        assert option in res.stdout


def test_unreadable_input_exits_2_with_one_line(
    simtrust: Callable[..., Result], tmp_path: Path, map_csv: Path
) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\x00" * 10)
    for args in (
        (bad, "--subscribers", map_csv, "--json"),
        (tmp_path / "missing.pcap", "--subscribers", map_csv),
        (bad, "--subscribers", tmp_path / "nomap.csv"),
    ):
        res = simtrust("detect", "pcap", *args)
        assert res.returncode == 2
        assert len(res.stderr.strip().splitlines()) == 1
        assert res.stdout == ""
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("address,sim\n1.2.3.4,1\n")
    res = simtrust("detect", "pcap", bad, "--subscribers", wrong)
    assert res.returncode == 2
    assert "ip,imsi,device_group" in res.stderr


def test_saved_baselines_can_be_reused(
    simtrust: Callable[..., Result],
    hue_files: list[Path],
    map_csv: Path,
    infected: Path,
    tmp_path: Path,
) -> None:
    saved = tmp_path / "baselines.json"
    res = simtrust(
        "detect",
        "pcap",
        hue_files[5],
        "--subscribers",
        map_csv,
        "--train",
        hue_files[0],
        "--save-baselines",
        saved,
        "--json",
    )
    assert res.returncode == 0, res.stderr
    stored = json.loads(saved.read_text())
    assert {b["scope"] for b in stored} == {"device", "cohort"}
    res = simtrust(
        "detect", "pcap", infected, "--subscribers", map_csv, "--baselines", saved, "--json"
    )
    assert res.returncode == 0, res.stderr
    assert any(alert["kind"] == "scan" for alert in json.loads(res.stdout)["alerts"])


def test_attack_command_writes_a_capture(
    simtrust: Callable[..., Result], tmp_path: Path, hue_files: list[Path]
) -> None:
    out = tmp_path / "syn.pcap"
    res = simtrust(
        "gear", "attack", "syn", "--device", DEVICE, "--out", out, "--inject", hue_files[0]
    )
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["class"] == "ddos"
    with out.open("rb") as fh:
        assert sum(1 for _ in dpkt.pcap.Reader(fh)) > summary["frames"]


def test_evaluate_command_reports_per_class(
    simtrust: Callable[..., Result], sentinel: Path
) -> None:
    res = simtrust(
        "gear",
        "evaluate",
        "--data",
        sentinel,
        "--types",
        "Aria",
        "--max-captures",
        "2",
        "--stress",
        "--json",
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["device_types"] == ["Aria"]
    assert set(doc["classes"]) == {"scan", "ddos", "beacon"}
    assert doc["benign"]["runs"] == 2
    assert doc["trained"] is True
    assert "scan-2pps" in doc["variants"]


def test_policies_run_beside_the_detectors(
    simtrust: Callable[..., Result], hue_files: list[Path], tmp_path: Path
) -> None:
    subs = tmp_path / "map.csv"
    subs.write_text(f"ip,imsi,device_group,tenant\n{DEVICE},001010000000006,hue-bridge,acme\n")
    policies = tmp_path / "policies.json"
    policies.write_text(
        json.dumps(
            [
                {
                    "tenant_id": "acme",
                    "scope": "tenant",
                    "rules": [
                        {
                            "kind": "destination",
                            "allow": [
                                {"cidrs": ["203.0.113.0/24"], "ports": [443], "protocols": ["tcp"]}
                            ],
                            "actions": ["alert"],
                        },
                    ],
                }
            ]
        )
    )
    res = simtrust(
        "detect", "pcap", hue_files[0], "--subscribers", subs, "--policies", policies, "--jsonl"
    )
    assert res.returncode == 0, res.stderr
    docs = [json.loads(line) for line in res.stdout.splitlines()]
    assert docs, "the Hue bridge talks to destinations outside the allow list"
    assert all(d["kind"] == "destination" for d in docs)
    assert docs[0]["evidence"]["source"] == "policy"
    assert docs[0]["tenant"] == "acme"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    res = simtrust("detect", "pcap", hue_files[0], "--subscribers", subs, "--policies", bad)
    assert res.returncode == 2
