"""Devices bootstrap and enrol through LeanHttps over one kept-alive connection."""

from __future__ import annotations

import ssl

import pytest

from simtrust.bootstrap import DeviceClient, LeanHttps, NafId

from .conftest import LABEL, Env, iccid


def test_two_devices_enrol_over_one_lean_connection(env: Env) -> None:
    ctx = ssl.create_default_context(cadata=env.listener.trust_pem.decode())
    with LeanHttps(ctx) as http:
        for n in (1, 2):
            with DeviceClient(env.applet(n), base_url=env.listener.base_url,
                              trust_pem=env.listener.trust_pem,
                              naf_id=NafId(env.boot.server.naf_id.fqdn),
                              clock=env.clock, http=http) as client:
                client.bootstrap()
                cert = client.enroll(LABEL, "tls")
                assert f"CN={iccid(n).value}" in cert.subject.rfc4514_string()
        # The server closing the kept-alive connection: the next request reconnects.
        closing = http.get(f"{env.listener.base_url}/nothing", headers={"Connection": "close"})
        assert 404 == closing.status_code
        again = http.get(f"{env.listener.base_url}/nothing")
        assert 404 == again.status_code
        assert "no such resource" in again.text
        with pytest.raises(ValueError, match="one origin"):
            http.get("https://127.0.0.2:1/nothing")
    assert 2 == len(env.boot.cas.certificates())


def test_lean_client_checks_the_server_certificate(env: Env) -> None:
    with LeanHttps(ssl.create_default_context()) as http, pytest.raises(ssl.SSLError):
        http.get(f"{env.listener.base_url}/nothing")
