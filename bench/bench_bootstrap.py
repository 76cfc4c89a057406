"""Tier-2 credentials: certificate issuance, full device bootstraps and OCSP answers.

Figures (issue 14): ``metrics.certs_per_s`` (one thread: a P-256 CSR parsed and its
signature checked, the certificate built under the tenant profile and signed, stored
and audited, on SQLite) next to ``limits.p256_sign_per_s`` (cryptography's raw P-256
ECDSA signing of a 32-byte digest in the same run, one thread);
``metrics.bootstraps_per_s`` (full device bootstraps over loopback: a new TLS
connection to the bootstrap listener, Ub Digest AKA with the AuC (2 requests), EST
simpleenroll with Digest (2 requests), a P-256 key made in the SIM applet;
``CLIENTS`` device threads at a time, in this same process as the listener);
``metrics.ocsp_per_s`` (RFC 6960 requests without a nonce, as RFC 5019 clients send
them: parsed, status read from the store every time, the signed response reused
while fresh, one thread) and ``metrics.ocsp_nonce_per_s`` (requests with a nonce:
every response built and signed).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from simtrust.api.bootstrap_listener import BootstrapListener
from simtrust.benchmark import BenchResult
from simtrust.bootstrap import (
    CertProfile,
    DeviceClaims,
    DeviceClient,
    NafId,
    SimApplet,
    impi_from_imsi,
    load_csr,
)
from simtrust.config import load_settings
from simtrust.runtime import Runtime
from simtrust.subscriber import (
    Iccid,
    Imsi,
    MemorySink,
    OpKind,
    SimSecrets,
    SimSpec,
    SimState,
    build_services,
    luhn_check_digit,
)
from simtrust.subscriber.auc import Milenage, Usim

NAME = "bootstrap"
DESCRIPTION = "Certificates/s vs raw P-256 signing, full SIM bootstraps/s over TLS, OCSP/s"

TENANT = "bench"
LABEL = "bench-ca"
CLIENTS = 4


def _iccid(i: int) -> str:
    body = f"89882{i:013d}"
    return body + str(luhn_check_digit(body))


def _imsi(i: int) -> str:
    return f"00101{i:010d}"


def _rate(step: object, seconds: float) -> float:
    assert callable(step)
    done = 0
    start = time.perf_counter()
    while True:
        done += step()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def run(quick: bool) -> BenchResult:
    seconds = 0.3 if quick else 3.0
    devices = 8 if quick else 400
    result = BenchResult(NAME)
    with tempfile.TemporaryDirectory(prefix="simtrust-bench-bootstrap-") as tmp:
        home = Path(tmp) / "home"
        rt = Runtime.initialise(load_settings(env={}, home=home))
        try:
            rt.tenants.create_tenant(TENANT, "Bench fleet")
            subs = build_services(rt, sinks=[MemorySink()])
            rt._extensions["subscriber"] = subs
            keys: list[tuple[bytes, bytes]] = []
            for i in range(devices):
                k, opc = os.urandom(16), os.urandom(16)
                keys.append((k, opc))
                subs.inventory.add_sim(TENANT, SimSpec(
                    Iccid(_iccid(i)), Imsi(_imsi(i), 2), secrets=SimSecrets(k, opc, OpKind.OPC),
                    state=SimState.ACTIVE), actor="bench")
            boot = rt.bootstrap
            ca = boot.cas.create_hosted(TENANT, LABEL, common_name="Bench CA",
                                        profile=CertProfile(max_per_hour=100_000),
                                        actor="bench")

            # Raw P-256 signing: the limit of every certificate and OCSP response.
            key = ec.generate_private_key(ec.SECP256R1())
            digest = os.urandom(32)
            algo = ec.ECDSA(hashes.SHA256())
            result.limits["p256_sign_per_s"] = round(_rate(
                lambda: [key.sign(digest, algo) for _ in range(64)] and 64, seconds), 1)

            # Certificates: CSR checked, built, signed, stored, audited.
            csrs = []
            for _ in range(256):
                device_key = ec.generate_private_key(ec.SECP256R1())
                csrs.append(x509.CertificateSigningRequestBuilder().subject_name(
                    x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "meter")])
                ).sign(device_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
            claims = [DeviceClaims(TENANT, _iccid(i), _imsi(i)) for i in range(devices)]
            cursor = [0]

            def issue() -> int:
                for _ in range(16):
                    n = cursor[0]
                    cursor[0] += 1
                    boot.cas.issue(ca, load_csr(csrs[n % len(csrs)]), claims[n % devices],
                                   actor="bench")
                return 16

            result.metrics["certs_per_s"] = round(_rate(issue, seconds), 1)
            result.notes["certificates_issued"] = cursor[0]

            # OCSP: requests for issued certificates, answered and signed.
            issued = [x509.load_der_x509_certificate(bytes(r[0])) for r in rt.db.query(
                "SELECT der FROM boot_certs LIMIT 256")]
            requests = [ocsp.OCSPRequestBuilder().add_certificate(c, ca.certificate,
                                                                  hashes.SHA1())
                        .build().public_bytes(serialization.Encoding.DER) for c in issued]
            ocsp_cursor = [0]

            def answer() -> int:
                for _ in range(32):
                    boot.cas.ocsp_response(requests[ocsp_cursor[0] % len(requests)])
                    ocsp_cursor[0] += 1
                return 32

            result.metrics["ocsp_per_s"] = round(_rate(answer, seconds), 1)
            requests = [ocsp.OCSPRequestBuilder().add_certificate(c, ca.certificate,
                                                                  hashes.SHA1())
                        .add_extension(x509.OCSPNonce(os.urandom(16)), critical=False)
                        .build().public_bytes(serialization.Encoding.DER) for c in issued]
            result.metrics["ocsp_nonce_per_s"] = round(_rate(answer, seconds), 1)

            # Full device bootstraps over loopback TLS.
            listener = BootstrapListener(boot, "127.0.0.1", 0,
                                         hostnames=["localhost", "127.0.0.1"]).start()
            try:
                naf = NafId(boot.server.naf_id.fqdn)
                failures: list[BaseException] = []
                next_device = [0]
                lock = threading.Lock()

                def worker() -> None:
                    while True:
                        with lock:
                            i = next_device[0]
                            next_device[0] += 1
                        if i >= devices:
                            return
                        k, opc = keys[i]
                        applet = SimApplet(_iccid(i), Usim(Milenage(k, opc)),
                                           impi=impi_from_imsi(_imsi(i), 2),
                                           supi=f"imsi-{_imsi(i)}")
                        try:
                            with DeviceClient(applet, base_url=listener.base_url,
                                              trust_pem=listener.trust_pem, naf_id=naf,
                                              clock=lambda: datetime.now(UTC)) as client:
                                client.bootstrap()
                                client.enroll(LABEL, "tls")
                        except Exception as exc:  # noqa: BLE001 - counted and reported
                            failures.append(exc)

                started = time.perf_counter()
                threads = [threading.Thread(target=worker) for _ in range(CLIENTS)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                elapsed = time.perf_counter() - started
                if failures:
                    raise RuntimeError(f"{len(failures)} bootstraps failed: {failures[0]!r}")
                result.metrics["bootstraps_per_s"] = round(devices / elapsed, 1)
            finally:
                listener.stop()
            result.notes.update({"devices": devices, "clients": CLIENTS, "store": "sqlite",
                                 "audit_records": rt.audit.count()})
            result.ratio("certs_to_p256_sign", "certs_per_s", "p256_sign_per_s")
            result.ratio("ocsp_to_p256_sign", "ocsp_per_s", "p256_sign_per_s")
            result.ratio("ocsp_nonce_to_p256_sign", "ocsp_nonce_per_s", "p256_sign_per_s")
            subs.close()
        finally:
            rt.close()
    return result
