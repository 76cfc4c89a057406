"""The bootstrap listener in two real worker processes fed by a dealing master.

Connections are dealt in turn (``simtrust.handoff``), so a device's successive
connections reach alternate workers; the dealer's counts show both served. What
one worker did must hold in the other: a Ub nonce answered in one is refused in
the other (and a challenge one made opens in the other), the per-SIM issuance
limit counts certificates either issued, and a revocation made by a third
process is answered ``revoked`` by both OCSP responders even after each had
answered (and could have kept) ``good``, and refuses re-enrolment in both.
docs/decisions/bootstrap-workers.md.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from simtrust.alerts import MemorySink
from simtrust.api.bootstrap_listener import BootstrapListener
from simtrust.bootstrap import (
    CertProfile,
    DeviceClient,
    NafId,
    SimApplet,
    digest_response,
    format_credentials,
    https_client,
    impi_from_imsi,
    parse_digest,
)
from simtrust.cli._bootstrap_serve import BOOTSTRAP_WORKER
from simtrust.cli._prefork import HandedWorkers
from simtrust.config import load_settings
from simtrust.errors import SimtrustError
from simtrust.runtime import Runtime
from simtrust.subscriber import build_services
from simtrust.subscriber.auc import Milenage, Usim

from .conftest import K1, OPC1, TENANT, add_sim, iccid, imsi

pytestmark = pytest.mark.slow


@dataclass
class Served:
    rt: Runtime
    pool: HandedWorkers
    url: str
    trust: bytes
    label: str

    def connection(self, timeout: float = 15.0) -> httpx.Client:
        ctx = ssl.create_default_context(cadata=self.trust.decode())
        return https_client(ctx, timeout)

    def device(self, n: int) -> DeviceClient:
        applet = SimApplet(iccid(n).value, Usim(Milenage(K1, OPC1)),
                           impi=impi_from_imsi(imsi(n).value, 2), supi=f"imsi-{imsi(n).value}")
        return DeviceClient(applet, base_url=self.url, trust_pem=self.trust,
                            naf_id=NafId("localhost"), clock=lambda: datetime.now(UTC))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    home = tmp_path / "home"
    sock = socket.create_server(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    env = {"SIMTRUST_HOME": str(home), "SIMTRUST_BOOTSTRAP_BIND": f"127.0.0.1:{port}",
           "SIMTRUST_BOOTSTRAP_NAF_FQDN": "localhost"}
    rt = Runtime.initialise(load_settings(env=env, home=home))
    subs = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[MemorySink()])
    rt.subscriber = subs
    rt.tenants.create_tenant(TENANT, "Acme Meters")
    for n in (1, 2):
        add_sim(subs, n)
    ca = rt.bootstrap.cas.create_hosted(TENANT, "acme", common_name="Acme CA",
                                        profile=CertProfile(max_per_hour=1), actor="test")
    # The master as `serve` runs it: server certificate made once, background senders here.
    master = BootstrapListener(rt.bootstrap, "127.0.0.1", port,
                               hostnames=["localhost", "127.0.0.1"])
    master.refresh()
    master.start_background()
    pool = HandedWorkers(sock, 2, BOOTSTRAP_WORKER, name="bootstrap-dealer", env=env).start()
    s = Served(rt, pool, f"https://127.0.0.1:{port}", master.trust_pem, ca.est_label)
    try:
        # One connection per worker, waited for as long as a worker takes to start.
        for _ in range(2):
            with s.connection(timeout=120) as warm:
                assert 200 == warm.get(f"{s.url}/.well-known/est/{s.label}/cacerts").status_code
        assert [1, 1] == pool.dealer.dealt
        yield s
    finally:
        pool.stop()
        master.stop()
        subs.close()
        rt.close()


def _ub_answer(applet: SimApplet, www_authenticate: str) -> str:
    challenge = parse_digest(www_authenticate)
    raw = base64.b64decode(challenge["nonce"])
    cnonce = base64.b64encode(os.urandom(12)).decode()
    params = {"username": applet.impi, "realm": challenge["realm"],
              "nonce": challenge["nonce"], "uri": "/bsf", "qop": "auth-int",
              "nc": "00000001", "cnonce": cnonce, "algorithm": "AKAv1-MD5"}
    params["response"] = digest_response(
        algorithm="AKAv1-MD5", username=applet.impi, realm=challenge["realm"],
        password=applet.aka(raw[:16], raw[16:32]), method="GET", uri="/bsf",
        nonce=challenge["nonce"], nc="00000001", cnonce=cnonce, qop="auth-int")
    return format_credentials(params)


def test_ub_nonce_answered_in_one_worker_is_refused_in_the_other(served: Served) -> None:
    applet = served.device(1).applet
    first = format_credentials({"username": applet.impi, "realm": "", "nonce": "",
                                "uri": "/bsf", "response": ""})
    with served.connection() as a, served.connection() as b:  # worker 0, worker 1
        challenge = a.get(f"{served.url}/bsf", headers={"Authorization": first})
        assert 401 == challenge.status_code
        answer = _ub_answer(applet, challenge.headers["WWW-Authenticate"])
        # The challenge worker 0 sealed opens in worker 1.
        assert 200 == b.get(f"{served.url}/bsf", headers={"Authorization": answer}).status_code
        # The same answer again, in the other worker and in the same one: refused.
        assert 200 != a.get(f"{served.url}/bsf", headers={"Authorization": answer}).status_code
        assert 200 != b.get(f"{served.url}/bsf", headers={"Authorization": answer}).status_code
    assert [2, 2] == served.pool.dealer.dealt
    row = served.rt.db.query_one("SELECT COUNT(*) FROM boot_gba_contexts WHERE impi = ?",
                                 (applet.impi,))
    assert row is not None
    assert 1 == int(row[0])


def _ocsp_status(client: httpx.Client, url: str, cert: x509.Certificate,
                 issuer: x509.Certificate) -> ocsp.OCSPCertStatus:
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    answer = client.post(f"{url}/ocsp", content=request.public_bytes(serialization.Encoding.DER),
                         headers={"Content-Type": "application/ocsp-request"})
    assert 200 == answer.status_code
    return ocsp.load_der_ocsp_response(answer.content).certificate_status


def test_rate_limit_and_revocation_hold_in_both_workers(served: Served) -> None:
    with served.device(1) as dev:  # one connection: worker 0
        dev.bootstrap()
        cert = dev.enroll("acme", "tls")
    # The same SIM on the other worker: its B-TID is known there, its hour's one
    # certificate counted there too.
    with served.device(1) as other:  # worker 1
        other.applet = dev.applet
        with pytest.raises(SimtrustError) as refused:
            other.enroll("acme", "tls2")
        assert "answered 429" in refused.value.detail, refused.value.detail
    assert [2, 2] == served.pool.dealer.dealt
    issuer = served.rt.bootstrap.cas.get(served.label).certificate
    with served.connection() as a, served.connection() as b:  # worker 0, worker 1
        # Both answer `good` first (a signed answer each may reuse while fresh).
        assert [ocsp.OCSPCertStatus.GOOD] * 2 == [
            _ocsp_status(c, served.url, cert, issuer) for c in (a, b)]
        served.rt.bootstrap.cas.revoke(format(cert.serial_number, "x"),
                                       reason="keyCompromise", actor="test")
        assert [ocsp.OCSPCertStatus.REVOKED] * 2 == [
            _ocsp_status(c, served.url, cert, issuer) for c in (a, b)]
    assert [3, 3] == served.pool.dealer.dealt
    # Re-enrolment with the revoked certificate, once on each worker (a new connection
    # each): refused by both.
    details = []
    for _ in range(2):
        with pytest.raises(SimtrustError) as reenroll:
            dev.reenroll("acme", "tls", cert)
        details.append(reenroll.value.detail)
    assert [4, 4] == served.pool.dealer.dealt
    assert 2 == sum("client certificate is revoked" in d for d in details), details
