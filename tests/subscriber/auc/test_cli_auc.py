"""The ``simtrust auc`` contract: JSON outputs, one-line errors with exit code 2."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from simtrust.cli.auc import NAME, app

runner = CliRunner()
FUNCTIONS = ["f1", "f1star", "f2", "f3", "f4", "f5", "f5star"]


def _milenage_args(s: dict[str, Any], op_flag: str, op_value: str) -> list[str]:
    return ["milenage", "--k", s["K"], op_flag, op_value, "--rand", s["RAND"],
            "--sqn", s["SQN"], "--amf", s["AMF"], "--json"]  # fmt: skip


def test_name() -> None:
    assert "auc" == NAME


@pytest.mark.parametrize("use_op", [True, False])
def test_milenage_json_contract(milenage_set: dict[str, Any], use_op: bool) -> None:
    s = milenage_set
    args = _milenage_args(s, "--op", s["OP"]) if use_op else _milenage_args(s, "--opc", s["OPc"])
    result = runner.invoke(app, args)
    assert 0 == result.exit_code, result.output
    data = json.loads(result.stdout)
    assert ["opc", *FUNCTIONS] == list(data)
    assert {k: s["OPc" if k == "opc" else k].lower() for k in data} == data


def test_tuak_json_contract(tuak_set: dict[str, Any]) -> None:
    s = tuak_set
    args = ["tuak", "--k", s["K"], "--top", s["TOP"], "--rand", s["RAND"], "--sqn", s["SQN"],
            "--amf", s["AMF"], "--keccak-iterations", str(s["keccak_iterations"]),
            "--mac-bits", str(len(s["f1"]) * 4), "--res-bits", str(len(s["f2"]) * 4),
            "--ck-bits", str(len(s["f3"]) * 4), "--ik-bits", str(len(s["f4"]) * 4), "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert 0 == result.exit_code, result.output
    data = json.loads(result.stdout)
    assert ["topc", *FUNCTIONS] == list(data)
    assert {k: s["TOPc" if k == "topc" else k] for k in data} == data


BASE = {
    "--k": "465b5ce8b199b49faa5f0a2ee238a6bc",
    "--rand": "23553cbe9637a89d218ae64dae47bf35",
    "--sqn": "ff9bb4d0b607",
    "--amf": "b9b9",
}
OP = "cdc202d5123e20f62b6d676ac72cb318"


def _args(command: str, **override: str | None) -> list[str]:
    opts = {**BASE, **{k.replace("_", "-"): v for k, v in override.items()}}
    out = [command]
    for key, value in opts.items():
        if value is not None:
            out += [key if key.startswith("--") else f"--{key}", value]
    return [*out, "--json"]


@pytest.mark.parametrize(
    "args",
    [
        _args("milenage", op=OP, **{"--k": "zz5b5ce8b199b49faa5f0a2ee238a6bc"}),
        _args("milenage", op=OP, **{"--k": "465b5ce8b199b49faa5f0a2ee238a6"}),
        _args("milenage", op=OP, **{"--sqn": "ff9bb4d0b6"}),
        _args("milenage", op=OP, **{"--amf": "b9b9b9"}),
        _args("milenage", op=OP, **{"--rand": "123"}),
        _args("milenage", op=OP, opc=OP),
        _args("milenage"),
        _args("milenage", op=OP, **{"--rand": None}),
        _args("tuak", top=OP * 2, **{"mac-bits": "100"}),
        _args("tuak", top=OP * 2, **{"res-bits": "16"}),
        _args("tuak", top=OP * 2, **{"ck-bits": "64"}),
        _args("tuak", top=OP * 2, **{"keccak-iterations": "0"}),
        _args("tuak", top=OP),
        _args("tuak", top=OP * 2, topc=OP * 2),
        _args("tuak"),
        _args("tuak", top=OP * 2, **{"--k": "00" * 24}),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert 2 == result.exit_code
    assert "" == result.stdout
    lines = result.stderr.strip().splitlines()
    assert 1 == len(lines)
    assert lines[0].startswith("simtrust auc: error: ")


def test_error_never_echoes_the_key() -> None:
    bad = "465b5ce8b199b49faa5f0a2ee238a6"
    result = runner.invoke(app, _args("milenage", op=OP, **{"--k": bad}))
    assert bad not in result.stderr


def test_tuak_accepts_a_256_bit_key_and_topc() -> None:
    result = runner.invoke(app, _args("tuak", topc="55" * 32, **{"--k": "ab" * 32}))
    assert 0 == result.exit_code, result.output
    assert 16 == len(json.loads(result.stdout)["f1"])


def test_vector_eps_json() -> None:
    result = runner.invoke(app, ["vector", "--k", BASE["--k"], "--op", OP, "--sqn", "000000000020",
                                 "--rand", BASE["--rand"], "--serving-network", "208-93", "--json"])  # fmt: skip
    assert 0 == result.exit_code, result.output
    data = json.loads(result.stdout)
    assert "eps" == data["kind"]
    assert "02f839" == data["serving_network_id"]
    assert "8000" == data["autn"][12:16]
    assert 64 == len(data["kasme"])


def test_vector_5g_json() -> None:
    result = runner.invoke(app, ["vector", "--k", BASE["--k"], "--op", OP, "--sqn", "000000000020",
                                 "--5g", "--serving-network", "208-93", "--json"])  # fmt: skip
    assert 0 == result.exit_code, result.output
    data = json.loads(result.stdout)
    assert "5G:mnc093.mcc208.3gppnetwork.org" == data["serving_network_name"]
    assert {"rand", "autn", "xres_star", "kausf", "hxres_star", "kseaf"} <= set(data)


def test_vector_eap_aka_prime_json() -> None:
    result = runner.invoke(app, ["vector", "--k", BASE["--k"], "--op", OP, "--sqn", "000000000020",
                                 "--eap-aka-prime", "--serving-network", "208-93", "--json"])  # fmt: skip
    assert 0 == result.exit_code, result.output
    assert {"ck_prime", "ik_prime", "xres"} <= set(json.loads(result.stdout))


def test_diagnose_reports_op_given_as_opc() -> None:
    vec = runner.invoke(app, ["vector", "--k", BASE["--k"], "--op", OP, "--sqn", "000000000020",
                              "--json"])  # fmt: skip
    data = json.loads(vec.stdout)
    result = runner.invoke(app, ["diagnose", "--k", BASE["--k"], "--opc", OP, "--rand",
                                 data["rand"], "--autn", data["autn"], "--json"])  # fmt: skip
    assert 0 == result.exit_code, result.output
    assert "op-given-as-opc" == json.loads(result.stdout)["verdict"]
    human = runner.invoke(app, ["diagnose", "--k", BASE["--k"], "--opc", OP, "--rand",
                                data["rand"], "--autn", data["autn"]])  # fmt: skip
    assert "verdict: op-given-as-opc" in human.stdout


def test_suci_command_deconceals_the_c43_vector() -> None:
    suci = ("suci-0-274-012-0-1-1-b2e92f836055a255837debf850b528997ce0201cb82adfe4be1f587d07d8457d"
            "cb02352410cddd9e730ef3fa87")  # fmt: skip
    key = "c53c22208b61860b06c62e5406a7b330c2b577aa5558981510d128247d38bd1d"
    result = runner.invoke(app, ["suci", suci, "--private-key", key, "--json"])
    assert 0 == result.exit_code, result.output
    assert "imsi-274012001002086" == json.loads(result.stdout)["supi"]


def test_suci_command_rejects_a_bad_suci() -> None:
    result = runner.invoke(app, ["suci", "suci-0-27-012-0-0-0-1"])
    assert 2 == result.exit_code
    assert result.stderr.startswith("simtrust auc: error:")
