"""``simtrust devices`` and ``simtrust fota``: bootstrap PSKs from the inventory, devices
driven through the API of a running node, bad input answered in one line with exit 2."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from simtrust.api import create_app
from simtrust.cli import main
from simtrust.devices import Lwm2mClient, new_endpoint_name

from .conftest import IMEI1, TENANT, Env, iccid, imsi


class Cli:
    """``simtrust`` as a user runs it: errors mapped by ``main`` to one line and an exit code."""

    def __init__(self, capsys: pytest.CaptureFixture[str], mp: pytest.MonkeyPatch) -> None:
        self.capsys = capsys
        self.mp = mp

    def __call__(self, home: Path, *args: str, **env: str) -> tuple[int, str, str]:
        self.mp.setenv("SIMTRUST_HOME", str(home))
        self.mp.setenv("COLUMNS", "200")
        for k, v in env.items():
            self.mp.setenv(k, v)
        with pytest.raises(SystemExit) as done:
            main(list(args))
        out = self.capsys.readouterr()
        return int(done.value.code or 0), out.out, out.err


@pytest.fixture
def node(env: Env) -> Iterator[str]:
    config = uvicorn.Config(create_app(env.rt), host="127.0.0.1", port=0, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_cli_psk_list_read_write_and_bad_input(env: Env, node: str,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    run = Cli(capsys, monkeypatch)
    home = env.rt.settings.home
    code, out, err = run(home, "devices", "bootstrap-psk", imsi(1).value, "--json")
    assert 0 == code, err
    psk = json.loads(out)
    assert psk["identity"].startswith("bootstrap-")
    assert imsi(1).value == env.devices.bootstrap.resolve(psk["identity"]).imsi  # type: ignore[union-attr]
    dev = Lwm2mClient(new_endpoint_name(IMEI1, imsi(1).value))

    async def up() -> None:
        await dev.bootstrap(f"coaps://127.0.0.1:{env.devices.bs_port}", psk["identity"],
                            bytes.fromhex(psk["key_hex"]))
        await dev.register()

    env.devices.call(up())
    key = env.rt.tenants.create_key("tenant-admin", "cli", TENANT).secret
    api = {"SIMTRUST_API_URL": node, "SIMTRUST_API_KEY": key}
    try:
        code, out, err = run(home, "devices", "list", "--json", **api)
        assert 0 == code, err
        assert [iccid(1).value] == [d["iccid"] for d in json.loads(out)]
        code, out, err = run(home, "devices", "read", iccid(1).value, "/3/0/3",
                             "--format", "senml-json", **api)
        assert 0 == code, err
        assert {"/3/0/3": "1.0.0"} == json.loads(out)["values"]
        code, out, err = run(home, "devices", "write", iccid(1).value, "/1/1/1", "120", **api)
        assert 0 == code, err
        assert 120 == dev.values[(1, 1, 1)]
        code, _, err = run(home, "devices", "read", iccid(2).value, "/3/0", **api)
        assert 1 == code  # not registered
        assert 1 == len(err.strip().splitlines())
        code, _, err = run(home, "devices", "read", iccid(1).value, "/3/x", **api)
        assert (2, 1) == (code, len(err.strip().splitlines()))
        code, _, err = run(home, "fota", "create", "ftp://x/fw", "--version", "2",
                           "--group", "1", **api)
        assert (2, 1) == (code, len(err.strip().splitlines()))
        code, _, err = run(home, "fota", "create", "--package", str(home / "no-such.bin"),
                           "--version", "2", "--group", "1", **api)
        assert (2, 1) == (code, len(err.strip().splitlines()))
        code, _, err = run(home, "fota", "create", "http://x/fw", "--package", __file__,
                           "--version", "2", "--group", "1", **api)
        assert (2, 1) == (code, len(err.strip().splitlines()))
        code, _, err = run(home, "devices", "bootstrap-psk", "12", **api)
        assert (2, 1) == (code, len(err.strip().splitlines()))
    finally:
        dev.close()
