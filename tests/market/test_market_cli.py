"""``simtrust market``: publish an offering, follow and advance an order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simtrust.cli import main
from simtrust.config import load_settings
from simtrust.runtime import Runtime


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    rt = Runtime.initialise(load_settings(env={}, home=path))
    rt.tenants.create_tenant("acme", "Acme")
    rt.market.create_item("productSpecification", None, {"name": "IoT 1 GB"}, "test")
    rt.close()
    monkeypatch.setenv("SIMTRUST_HOME", str(path))
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def test_publish_order_and_advance(home: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    extra = tmp_path / "offering.json"
    extra.write_text(json.dumps({"isSellable": True, "version": "1"}))
    rt = Runtime.open(load_settings(home=home))
    try:
        spec = rt.market.list_items("productSpecification", None, True)[0].document["id"]
    finally:
        rt.close()
    # a specification that does not exist is refused (catalog references must resolve)
    code, _, err = _run(["market", "publish", "IoT 1 GB", "--spec", "iot-1gb", "--json"], capsys)
    assert 0 != code
    assert "iot-1gb" in err
    code, out, _ = _run(["market", "publish", "IoT 1 GB", "--spec", spec, "-f", str(extra),
                         "--json"], capsys)
    assert 0 == code
    offering = json.loads(out)
    assert ("Launched", "1", {"id": spec}) == (
        offering["lifecycleStatus"], offering["version"], offering["productSpecification"])

    rt = Runtime.open(load_settings(home=home))
    try:
        order = rt.market.create_order("acme", {"productOrderItem": [
            {"id": "1", "action": "add", "productOffering": {"id": offering["id"]}}]}, "test")
    finally:
        rt.close()
    code, out, _ = _run(["market", "orders", "--tenant", "acme", "--json"], capsys)
    assert [order.document["id"]] == [d["id"] for d in json.loads(out)]
    code, out, _ = _run(["market", "advance", order.document["id"], "inProgress"], capsys)
    assert 0 == code
    assert "acknowledged -> inProgress" in out
    code, out, _ = _run(["market", "orders", "--state", "inProgress", "--json"], capsys)
    assert 1 == len(json.loads(out))
    code, _, err = _run(["market", "advance", order.document["id"], "acknowledged"], capsys)
    assert (1, 1) == (code, len(err.strip().splitlines()))
    code, out, _ = _run(["market", "offerings", "--tenant", "acme"], capsys)
    assert "IoT 1 GB" in out


def test_bad_input_exits_2(home: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1]")
    for argv in (["market", "publish", "x", "-f", str(bad)],
                 ["market", "publish", " "],
                 ["market", "publish", "x", "--status", "Launched", "-f", str(tmp_path)]):
        code, _, err = _run(argv, capsys)
        assert 2 == code, (argv, err)
        assert 1 == len(err.strip().splitlines()), err


def test_publish_catalog_on_the_ledger_and_discover(home: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["market", "publish-catalog"], capsys)
    assert (2, 1) == (code, len(err.strip().splitlines()))
    _run(["market", "publish", "IoT 1 GB"], capsys)
    code, out, _ = _run(["market", "publish-catalog", "--api", "https://a.example",
                         "--json"], capsys)
    assert 0 == code
    published = json.loads(out)
    assert ["IoT 1 GB"] == [o["name"] for o in published["offerings"]]
    code, out, _ = _run(["market", "discover", "--json"], capsys)
    assert [(published["seller"], "https://a.example", published["sha256"])] == [
        (p["seller"], p["api"], p["sha256"]) for p in json.loads(out)]
