"""`simtrust settle reconcile`: offline, one JSON document, the records file; bad input is
one stderr line, exit code 2, and nothing written."""

from __future__ import annotations

import csv
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from subprocess import CompletedProcess

from simtrust.cli import main
from simtrust.identity import did_key
from simtrust.ledger import Ed25519Signer
from simtrust.settlement import sign_statement
from tests.cli.test_root import simtrust
from tests.settlement.test_reconcile import agreement_file, row, write
from tests.settlement.test_statement import HOME_KEY, VISITED_KEY, _statement


def cli(*args: str, check: bool = False) -> CompletedProcess[str]:
    """``simtrust ARGS`` in this process (the process-level contract is tested above)."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    if check:
        assert 0 == code, err.getvalue()
    return CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def test_reconcile_prints_counts_statement_and_writes_records(tmp_path: Path) -> None:
    agreement = agreement_file(tmp_path)
    home = write(tmp_path, "home.csv", [row("1"), row("2", volume=2000), row("3"), row("3")])
    visited = write(tmp_path, "visited.csv", [row("1"), row("2"), row("4", service="sms", volume=2)])
    out = tmp_path / "records.csv"
    done = simtrust("settle", "reconcile", "--agreement", str(agreement), "--home", str(home),
                    "--visited", str(visited), "--records", str(out), "--json",
                    home=tmp_path / "no-such-home", check=True)
    document = json.loads(done.stdout)
    assert {"matched": 2, "partial": 2, "visited-only": 1, "home-only": 1, "duplicate": 1,
            "out-of-agreement": 0} == document["counts"]
    statement = document["statement"]
    assert "EUR" == statement["currency"]
    # matched 1000 B at 150/MB -> 0.15 -> 0; partial min(0.3, 0.15) -> 0; sms 2 x 5 disputed
    assert 0 == statement["total_minor_units"]
    assert 0 + 10 == statement["disputed_minor_units"]
    assert isinstance(statement["lines"], list)
    rows = list(csv.reader(out.open()))
    assert ["charging_id", "imsi", "side", "class"] == rows[0]
    assert 7 == len(rows) - 1
    assert ["3", "262010000000001", "home", "duplicate"] == rows[4]
    assert not (tmp_path / "no-such-home").exists()


def test_unreadable_input_is_one_line_exit_2_nothing_written(tmp_path: Path) -> None:
    agreement = agreement_file(tmp_path)
    good = write(tmp_path, "good.csv", [row("1")])
    bad = write(tmp_path, "bad.csv", [], text="charging_id,imsi\n1,2\n")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    out = tmp_path / "records.csv"
    cases = [
        ("--agreement", str(agreement), "--home", str(good), "--visited", str(bad)),
        ("--agreement", str(agreement), "--home", str(tmp_path / "missing.csv"), "--visited",
         str(good)),
        ("--agreement", str(broken), "--home", str(good), "--visited", str(good)),
    ]
    for number, args in enumerate(cases):
        run = simtrust if number == 0 else cli  # one real process, the rest in-process
        done = run("settle", "reconcile", *args, "--records", str(out), "--json")
        assert 2 == done.returncode, done.stderr
        assert "" == done.stdout
        assert 1 == len(done.stderr.strip().splitlines()), done.stderr
        assert not out.exists()


def test_statement_sign_verify_prove_and_net(tmp_path: Path) -> None:

    keys = {}
    for name in ("home", "visited"):
        out = json.loads(cli("settle", "keygen", "--out", str(tmp_path / f"{name}.key"),
                                  "--json", check=True).stdout)
        keys[name] = out["did"]
    assert 0o600 == (tmp_path / "home.key").stat().st_mode & 0o777
    agreement = agreement_file(tmp_path, parties=keys)
    home = write(tmp_path, "home.csv", [row("1", volume=4_000_000), row("2", volume=10**6)])
    visited = write(tmp_path, "visited.csv", [row("1", volume=4_000_000)])
    path = tmp_path / "statement.json"
    cli("settle", "statement", "--agreement", str(agreement), "--home", str(home),
             "--visited", str(visited), "--out", str(path), check=True)
    assert 1 == cli("settle", "verify", str(path)).returncode  # unsigned yet
    cli("settle", "sign", str(path), "--key", str(tmp_path / "home.key"), "--role", "payer",
             check=True)
    cli("settle", "sign", str(path), "--key", str(tmp_path / "visited.key"), "--role",
             "payee", check=True)
    checked = json.loads(cli("settle", "verify", str(path), "--json", check=True).stdout)
    assert ["payer", "payee"] == checked["signed_by"]
    proof = tmp_path / "proof.json"
    proof.write_text(cli("settle", "prove", "--home", str(home), "--visited", str(visited),
                              "--index", "2", check=True).stdout)
    cli("settle", "check-proof", str(proof), "--statement", str(path), check=True)
    # Two more operators' statements close a cycle: the visited party pays a third, who
    # pays the home party.
    third = Ed25519Signer(bytes(range(7, 39)))
    home_key = Ed25519Signer(bytes.fromhex(json.loads((tmp_path / "home.key").read_text())["seed"]))
    visited_key = Ed25519Signer(
        bytes.fromhex(json.loads((tmp_path / "visited.key").read_text())["seed"]))
    base = json.loads(path.read_text())
    others = [(keys["visited"], visited_key, did_key(third.public_key), third, 200),
              (did_key(third.public_key), third, keys["home"], home_key, 50)]
    files = [path]
    for index, (payer, payer_key, payee, payee_key, total) in enumerate(others):
        doc = {**base, "payer": payer, "payee": payee, "total_minor_units": total,
               "signatures": []}
        doc = sign_statement(sign_statement(doc, "payer", payer_key), "payee", payee_key)
        files.append(tmp_path / f"s{index}.json")
        files[-1].write_text(json.dumps(doc))
    netted = json.loads(cli("settle", "net", *map(str, files), "--json", check=True).stdout)
    book = netted["currencies"]["EUR"]
    assert 600 == base["total_minor_units"]
    assert {keys["home"]: -550, keys["visited"]: 400, did_key(third.public_key): 150} == \
        book["positions"]
    assert 2 == len(book["transfers"])
    # A tampered statement stops the netting (exit 1, one line).
    files[1].write_text(files[1].read_text().replace('"total_minor_units": 200',
                                                     '"total_minor_units": 201'))
    done = cli("settle", "net", *map(str, files), "--json")
    assert 1 == done.returncode
    assert 1 == len(done.stderr.strip().splitlines())


def test_resolve_and_carry_commands(tmp_path: Path) -> None:
    statement, _, _ = _statement(tmp_path)
    signed = sign_statement(sign_statement(statement, "payer", HOME_KEY), "payee", VISITED_KEY)
    previous = tmp_path / "previous.json"
    previous.write_text(json.dumps(signed))
    following = tmp_path / "next.json"
    following.write_text(json.dumps({**statement, "total_minor_units": 5}))
    carried = json.loads(cli("settle", "carry", str(following), "--previous", str(previous),
                             "--json", check=True).stdout)
    assert 150 == carried["carried_disputes"][0]["remaining_minor_units"]
    out = tmp_path / "resolution.json"
    resolution = json.loads(cli("settle", "resolve", str(previous), "--agreed", "40", "--out",
                                str(out), "--json", check=True).stdout)
    assert (150, 40) == (resolution["disputed_minor_units"], resolution["agreed_minor_units"])
    assert 2 == cli("settle", "resolve", str(previous), "--agreed", "151", "--out",
                    str(tmp_path / "no.json")).returncode
    assert not (tmp_path / "no.json").exists()
