"""Firmware uploads outside the API body limit: ``simtrust fota upload`` streams a
package four times the body limit to a running node, which stores it by SHA-256 under the
tenant and pushes it, named by digest in a campaign, block-wise to a device over DTLS; an
upload over the firmware limit or with the wrong digest leaves nothing behind; another
tenant's digest answers like an unknown one."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simtrust.devices import Lwm2mClient, parse_package_digest
from simtrust.errors import InvalidInput

from .conftest import IMEI2, TENANT, Env, dm_client, iccid
from .test_cli import Cli, node  # noqa: F401 - node is a fixture

BODY_LIMIT = 64 * 1024
FIRMWARE_LIMIT = 512 * 1024
PACKAGE = b"firmware 4.0.0\n" + os.urandom(4 * BODY_LIMIT)


@pytest.fixture
def small_limits(env: Env) -> None:
    env.rt.settings = dataclasses.replace(env.rt.settings, max_body_bytes=BODY_LIMIT,
                                          firmware_max_bytes=FIRMWARE_LIMIT)


def _key(env: Env, tenant: str) -> str:
    return env.rt.tenants.create_key("tenant-admin", tenant, tenant).secret


@given(st.text(max_size=80))
def test_digest_parser_takes_only_sha256_hex(text: str) -> None:
    try:
        value = parse_package_digest(text)
    except InvalidInput:
        return
    assert 64 == len(value)
    assert set(value) <= set("0123456789abcdef")


def test_upload_beyond_the_body_limit_then_push_by_digest(
        env: Env, small_limits: None, node: str,  # noqa: F811
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    env.rt.tenants.create_tenant("globex", "Globex")
    acme, globex = _key(env, TENANT), _key(env, "globex")
    package = tmp_path / "fw-4.0.0.bin"
    package.write_bytes(PACKAGE)
    digest = hashlib.sha256(PACKAGE).hexdigest()
    run = Cli(capsys, monkeypatch)
    home = env.rt.settings.home
    code, out, err = run(home, "fota", "upload", str(package), "--url", node,
                         "--api-key", acme, "--json")
    assert 0 == code, err
    assert f"sha256:{digest}" in out
    assert PACKAGE == (home / "firmware" / TENANT / digest).read_bytes()
    # the same bytes as JSON meet the body limit
    inline = httpx.post(f"{node}/v1/fota/campaigns", headers={"Authorization": f"Bearer {acme}"},
                        json={"package_base64": base64.b64encode(PACKAGE).decode(),
                              "version": "4.0.0", "groups": [1]}, timeout=60)
    assert 413 == inline.status_code
    auth = {"Authorization": f"Bearer {acme}"}

    def chunked(size: int) -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(size // 65536):
            yield bytes(65536)

    too_big = httpx.post(f"{node}/v1/fota/packages", headers=auth,
                         content=chunked(FIRMWARE_LIMIT + 65536), timeout=60)
    assert 413 == too_big.status_code
    assert too_big.headers["content-type"].startswith("application/problem+json")
    wrong = httpx.post(f"{node}/v1/fota/packages", headers=auth, content=b"x" * 100,
                       params={"sha256": digest}, timeout=60)
    assert 400 == wrong.status_code, wrong.text
    assert [digest] == [p.name for p in (home / "firmware" / TENANT).iterdir()]
    listed = httpx.get(f"{node}/v1/fota/packages", headers=auth, timeout=60).json()
    assert [(f"sha256:{digest}", len(PACKAGE))] == [
        (p["digest"], p["size"]) for p in listed["packages"]]

    group = env.subs.inventory.create_group(TENANT, "meters", actor="test")
    env.subs.inventory.update_sim(iccid(2), group_id=group.id, actor="test")
    installed: list[bytes] = []

    def install(data: bytes) -> str | None:
        installed.append(data)
        return data.split(b"\n")[0].decode().split()[-1]

    dev: Lwm2mClient = dm_client(env, 2, IMEI2)
    dev.install = install
    env.devices.call(dev.register())
    try:
        body = {"package_digest": f"sha256:{digest}", "version": "4.0.0",
                "groups": [group.id]}
        theirs = httpx.post(f"{node}/v1/fota/campaigns", json=body, timeout=60,
                            headers={"Authorization": f"Bearer {globex}"})
        unknown = httpx.post(f"{node}/v1/fota/campaigns", timeout=60,
                             headers={"Authorization": f"Bearer {globex}"},
                             json={**body, "package_digest": "sha256:" + "0" * 64})
        assert (404, unknown.json()["detail"]) == (theirs.status_code, theirs.json()["detail"])
        made = httpx.post(f"{node}/v1/fota/campaigns", json=body, headers=auth, timeout=60)
        assert 201 == made.status_code, made.text
        assert ("push", len(PACKAGE)) == (made.json()["delivery"], made.json()["package_size"])
        cid = made.json()["campaign_id"]

        def state() -> dict[str, Any]:
            got: dict[str, Any] = httpx.get(f"{node}/v1/fota/campaigns/{cid}", headers=auth,
                                             timeout=60).json()
            return got

        deadline = time.monotonic() + 300
        while state()["status"] == "running":
            assert time.monotonic() < deadline, state()
            time.sleep(0.1)
        assert "completed" == state()["status"], state()
    finally:
        env.devices.call(asyncio.sleep(0))
        dev.close()
    assert [digest] == [hashlib.sha256(p).hexdigest() for p in installed]
