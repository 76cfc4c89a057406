"""Fixtures of the SBI tests: the UDM's HTTP/2 server on loopback, certificates, NRF keys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from simtrust.alerts import MemorySink
from simtrust.runtime import Runtime
from simtrust.sbi import SbiServer, TokenVerifier, create_sbi_app
from simtrust.subscriber import SubscriberServices, build_services

from ..subscriber.conftest import TENANT, spec

UDM_ID = "0f5e6d1c-2b3a-4c5d-8e9f-a0b1c2d3e4f5"
NRF_ID = "8c2e3d4f-5a6b-4c7d-9e8f-0a1b2c3d4e5f"


@dataclass
class Udm:
    rt: Runtime
    subs: SubscriberServices
    server: SbiServer
    base: str


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_cert(tmp: Path, name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
              | None = None, *, ca: bool = False) -> tuple[x509.Certificate,
                                                            ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer[0].subject if issuer else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=1))
               .not_valid_after(now + timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                         x509.IPAddress(__import__("ipaddress").ip_address(
                                             "127.0.0.1"))]), critical=False)
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    (tmp / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / f"{name}.key").write_bytes(_pem(key))
    return cert, key


@pytest.fixture
def subs(sqlite_runtime: Runtime) -> Iterator[SubscriberServices]:
    sqlite_runtime.tenants.create_tenant(TENANT, "Acme Meters")
    services = build_services(sqlite_runtime.db, sqlite_runtime.keyring, sqlite_runtime.audit, sqlite_runtime.clock, sinks=[MemorySink()])
    services.inventory.add_sim(TENANT, spec(1), actor="test")
    try:
        yield services
    finally:
        services.close()


@pytest.fixture
def nrf_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _start(rt: Runtime, subs: SubscriberServices, server_kwargs: dict[str, object],
           verifier: TokenVerifier | None) -> Iterator[Udm]:
    app = create_sbi_app(subs.udm, verifier)
    server = SbiServer(app, "127.0.0.1", 0, lab_mode=verifier is None,
                       **server_kwargs)  # type: ignore[arg-type]
    _host, port = server.start()
    scheme = "https" if server.tls else "http"
    try:
        yield Udm(rt, subs, server, f"{scheme}://127.0.0.1:{port}")
    finally:
        server.stop()


@pytest.fixture
def udm(sqlite_runtime: Runtime, subs: SubscriberServices) -> Iterator[Udm]:
    """h2c, lab mode (no tokens, loopback)."""
    yield from _start(sqlite_runtime, subs, {}, None)


@pytest.fixture
def secured(sqlite_runtime: Runtime, subs: SubscriberServices,
            nrf_key: ec.EllipticCurvePrivateKey) -> Iterator[Udm]:
    """h2c with OAuth2 tokens required."""
    public = nrf_key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    yield from _start(sqlite_runtime, subs, {}, TokenVerifier(public, UDM_ID, issuer=NRF_ID))
