"""Tier-2 credentials: certificate issuance, full device bootstraps and OCSP answers.

Figures (issue 14):

- ``metrics.certs_per_s``: one process, so one core for Python, ``ISSUERS`` (16)
  threads issuing at once as the EST listener's request threads do with that many
  requests in flight: a P-256 CSR parsed and its signature checked, the certificate
  built under the tenant profile and signed, stored and audited on SQLite, each call
  returning only after its record is on disk (concurrent records share a transaction
  and an fsync). ``metrics.certs_8_issuers_per_s`` is the same with 8 threads and
  ``metrics.certs_one_caller_per_s`` with one caller, which waits for one fsync per
  certificate. Limits beside them: ``limits.p256_sign_per_s`` (cryptography's raw
  P-256 ECDSA signing of a 32-byte digest, one thread) and ``limits.fsync_per_s``
  (4 KiB appends with fsync in the store's folder).
- ``metrics.bootstraps_per_s``: full device bootstraps over loopback TLS to the
  bootstrap listener served as ``simtrust serve`` serves it: by default one worker
  process per core fed connections in turn by this process, which accepts
  (``SIMTRUST_BOOTSTRAP_WORKERS``; ``notes.bootstrap_workers``;
  ``SIMTRUST_BENCH_BOOTSTRAP_WORKERS=1``: the listener in this process, as before;
  docs/decisions/bootstrap-workers.md): Ub Digest AKA with the AuC (2 requests), the
  device's Ks_NAF derived in its SIM applet, a fresh P-256 key made there and its
  bound CSR, EST simpleenroll with Digest (2 requests), the certificate read from
  the certs-only answer.
  ``CLIENTS`` device processes of ``DEVICE_THREADS`` threads each (16 devices at a
  time), started together; each thread keeps its TLS connection alive and its
  devices use it one after another. ``metrics.bootstraps_new_tls_per_s`` is the same
  with a new TLS connection (and handshake) per device. Devices speak HTTP through
  ``LeanHttps`` (stdlib ``http.client``), not httpx, whose per-request cost made the
  bench's client side use more CPU than the listener it measures.
  ``limits.bootstrap_cores_used`` / ``bootstrap_new_tls_cores_used``: the CPU the
  listener and the devices used per second of each run, the share of the machine
  they got. The device processes are the bench's own client side and share the two
  cores with the listener, so their cost is measured apart:
  ``notes.listener_cpu_ms_per_bootstrap`` (this process's and the listener workers'
  CPU during the run) and
  ``notes.devices_cpu_ms_per_bootstrap`` (the device processes' CPU from ready to
  done); ``metrics.bootstraps_per_listener_core_s`` = 1000 / the listener's CPU
  milliseconds per bootstrap, the rate a core given to the listener alone would
  carry at that cost (derived from CPU time, not a measured wall-clock rate).
- ``metrics.ocsp_per_s``: RFC 6960 requests without a nonce, as RFC 5019 clients send
  them: parsed, status read from the store every time, the signed response reused
  while fresh, one thread; ``metrics.ocsp_nonce_per_s``: requests with a nonce,
  every response built and signed.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from simtrust.alerts import MemorySink
from simtrust.api.bootstrap_listener import SWITCH_INTERVAL, BootstrapListener
from simtrust.benchmark import BenchResult, fsync_rate
from simtrust.bootstrap import (
    BootstrapServices,
    CertProfile,
    DeviceClaims,
    https_client,
    load_csr,
)
from simtrust.cli._bootstrap_serve import BOOTSTRAP_WORKER
from simtrust.cli._prefork import HandedWorkers
from simtrust.config import load_settings, usable_cores
from simtrust.runtime import Runtime
from simtrust.subscriber import (
    Iccid,
    Imsi,
    OpKind,
    SimSecrets,
    SimSpec,
    SimState,
    build_services,
    luhn_check_digit,
)

NAME = "bootstrap"
DESCRIPTION = "Certificates/s vs raw P-256 signing, full SIM bootstraps/s over TLS, OCSP/s"

TENANT = "bench"
LABEL = "bench-ca"
CLIENTS = 4
#: Devices bootstrapping at once in each device process (threads).
DEVICE_THREADS = 4
#: Concurrent issuing threads for ``certs_per_s`` (one process): EST requests in flight
#: on the listener's request threads.
ISSUERS = 16


def _iccid(i: int) -> str:
    body = f"89882{i:013d}"
    return body + str(luhn_check_digit(body))


def _imsi(i: int) -> str:
    return f"00101{i:010d}"


def _concurrent_rate(step: Callable[[], int], seconds: float, threads: int) -> float:
    """``step`` run by ``threads`` threads for ``seconds``; calls per second in all."""
    counts = [0] * threads
    errors: list[BaseException] = []
    start = time.perf_counter()

    def worker(i: int) -> None:
        try:
            while time.perf_counter() - start < seconds:
                counts[i] += step()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if errors:
        raise RuntimeError(f"issuance failed: {errors[0]!r}")
    return sum(counts) / (time.perf_counter() - start)


def _rate(step: Callable[[], int], seconds: float) -> float:
    done = 0
    start = time.perf_counter()
    while True:
        done += step()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


_DEVICES = """
import json, ssl, sys, threading, time
from datetime import UTC, datetime
# The device threads take turns on the GIL as the listener's request threads do.
sys.setswitchinterval(float(sys.argv[1]))
from simtrust.bootstrap import DeviceClient, LeanHttps, NafId, SimApplet, impi_from_imsi
from simtrust.subscriber.auc import Milenage, Usim
job = json.loads(sys.stdin.readline())
errors = []

def device(iccid, imsi, k, opc, http):
    own = http is None
    if own:
        http = LeanHttps(ssl.create_default_context(cadata=job["trust"]))
    applet = SimApplet(iccid, Usim(Milenage(bytes.fromhex(k), bytes.fromhex(opc))),
                       impi=impi_from_imsi(imsi, 2), supi="imsi-" + imsi)
    with DeviceClient(applet, base_url=job["url"], trust_pem=job["trust"].encode(),
                      naf_id=NafId(job["naf"]), clock=lambda: datetime.now(UTC),
                      http=http) as client:
        client.bootstrap()
        client.enroll(job["label"], "tls")
    if own:
        http.close()

def worker(devices):
    # keep_alive: one TLS connection per worker, reused by its devices one after another.
    http = (LeanHttps(ssl.create_default_context(cadata=job["trust"]))
            if job["keep_alive"] else None)
    try:
        for d in devices:
            device(*d, http)
    except BaseException as exc:
        errors.append(repr(exc))
    finally:
        if http is not None:
            http.close()

threads = [threading.Thread(target=worker, args=(job["devices"][t::job["threads"]],))
           for t in range(job["threads"])]
print("ready", flush=True)
sys.stdin.readline()
start, cpu = time.monotonic(), time.process_time()
for t in threads:
    t.start()
for t in threads:
    t.join()
if errors:
    sys.exit("device failed: " + errors[0])
print(json.dumps({"start": start, "end": time.monotonic(), "n": len(job["devices"]),
                  "cpu": time.process_time() - cpu}), flush=True)
"""


class BootstrapRun(NamedTuple):
    """One run of device processes against the listener."""

    per_s: float
    #: CPU the listener and the device processes used per second of the run.
    cores_used: float
    #: CPU milliseconds per bootstrap: the listener's process, the device processes'.
    listener_ms: float
    devices_ms: float


def _cpu_of(pids: list[int]) -> float:
    """User and system CPU seconds of running processes (``/proc/<pid>/stat``)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (proc(5) fields 14, 15)
    return total / os.sysconf("SC_CLK_TCK")


class Served(NamedTuple):
    """Where the devices connect and the serving processes besides this one."""

    base_url: str
    trust_pem: bytes
    worker_pids: list[int]

    def cpu(self) -> float:
        """CPU seconds of this process and the listener's worker processes."""
        return time.process_time() + _cpu_of(self.worker_pids)


def _bootstraps(listener: Served, naf: str, keys: list[tuple[bytes, bytes]],
                tmp: Path, *, keep_alive: bool) -> BootstrapRun:
    """``CLIENTS`` device processes of ``DEVICE_THREADS`` threads each, started together;
    every device bootstraps and enrols once (``keep_alive``: a thread's devices reuse
    its TLS connection; else each device opens its own)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own, wall = listener.cpu(), time.perf_counter()
    procs = []
    for c in range(CLIENTS):
        devices = [(_iccid(i), _imsi(i), keys[i][0].hex(), keys[i][1].hex())
                   for i in range(c, len(keys), CLIENTS)]
        proc = subprocess.Popen([sys.executable, "-c", _DEVICES, str(SWITCH_INTERVAL)],
                                stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=(tmp / f"dev{c}.log").open("wb"),
                                text=True)
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(json.dumps({"devices": devices, "url": listener.base_url,
                                     "trust": listener.trust_pem.decode(), "naf": naf,
                                     "label": LABEL, "threads": DEVICE_THREADS,
                                     "keep_alive": keep_alive}) + "\n")
        proc.stdin.flush()
        procs.append(proc)
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("a device process did not start")
    # The CPU spent on imports and set-up before "ready" is not the run's.
    own_ready = listener.cpu()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    reports = []
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        reports.append(json.loads(line) if line else None)
    for c, proc in enumerate(procs):
        if proc.wait(timeout=600) != 0 or reports[c] is None:
            raise RuntimeError("device process failed: "
                               + (tmp / f"dev{c}.log").read_text()[-500:])
    listener_cpu = listener.cpu() - own_ready
    runs = [r for r in reports if r is not None]
    devices_cpu = sum(r["cpu"] for r in runs)
    elapsed = max(r["end"] for r in runs) - min(r["start"] for r in runs)
    done = sum(r["n"] for r in runs)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (listener.cpu() - own + after.ru_utime - children.ru_utime
           + after.ru_stime - children.ru_stime)
    return BootstrapRun(round(done / elapsed, 1), round(cpu / (time.perf_counter() - wall), 2),
                        round(listener_cpu * 1000 / done, 2),
                        round(devices_cpu * 1000 / done, 2))


@contextlib.contextmanager
def _serving(boot: BootstrapServices, home: Path, workers: int) -> Iterator[Served]:
    """The listener in this process (``workers`` 1), or as ``serve`` runs it with
    ``SIMTRUST_BOOTSTRAP_WORKERS``: this process binds, accepts and deals each
    connection to the next worker process (own runtime and store connection); this
    process makes the server certificate once and runs the background senders."""
    hostnames = ["localhost", "127.0.0.1"]
    if workers <= 1:
        listener = BootstrapListener(boot, "127.0.0.1", 0, hostnames=hostnames).start()
        try:
            yield Served(listener.base_url, listener.trust_pem, [])
        finally:
            listener.stop()
        return
    sock = socket.create_server(("127.0.0.1", 0), backlog=socket.SOMAXCONN)
    port = int(sock.getsockname()[1])
    master = BootstrapListener(boot, "127.0.0.1", port, hostnames=hostnames)
    master.refresh()
    master.start_background()
    env = {"SIMTRUST_HOME": str(home), "SIMTRUST_BOOTSTRAP_BIND": f"127.0.0.1:{port}",
           "SIMTRUST_BOOTSTRAP_NAF_FQDN": boot.server.naf_id.fqdn}
    pool = HandedWorkers(sock, workers, BOOTSTRAP_WORKER, name="bootstrap-dealer",
                         env=env).start()
    try:
        served = Served(f"https://127.0.0.1:{port}", master.trust_pem, pool.pids())
        # Every worker up before the clock starts: one request on each (dealt in turn).
        ctx = ssl.create_default_context(cadata=master.trust_pem.decode())
        for _ in range(workers):
            with https_client(ctx, timeout=300) as client:
                # Any answer shows the worker serving (OCSP: malformed request).
                if client.get(f"{served.base_url}/ocsp/AA").status_code != 200:
                    raise RuntimeError("a bootstrap worker did not answer")
        yield served
    finally:
        pool.stop()
        master.stop()


def run(quick: bool) -> BenchResult:
    seconds = 0.3 if quick else 3.0
    devices = 8 if quick else 400
    result = BenchResult(NAME)
    with tempfile.TemporaryDirectory(prefix="simtrust-bench-bootstrap-") as tmp:
        home = Path(tmp) / "home"
        rt = Runtime.initialise(load_settings(env={}, home=home))
        try:
            rt.tenants.create_tenant(TENANT, "Bench fleet")
            subs = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[MemorySink()])
            rt.subscriber = subs
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

            def sign() -> int:
                for _ in range(64):
                    key.sign(digest, algo)
                return 64

            result.limits["p256_sign_per_s"] = round(_rate(sign, seconds), 1)

            # Certificates: CSR checked, built, signed, stored, audited.
            csrs = []
            for _ in range(256):
                device_key = ec.generate_private_key(ec.SECP256R1())
                csrs.append(x509.CertificateSigningRequestBuilder().subject_name(
                    x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "meter")])
                ).sign(device_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
            claims = [DeviceClaims(TENANT, _iccid(i), _imsi(i)) for i in range(devices)]
            cursor = [0]
            lock = threading.Lock()

            def issue() -> int:
                for _ in range(16):
                    with lock:
                        n = cursor[0]
                        cursor[0] += 1
                    boot.cas.issue(ca, load_csr(csrs[n % len(csrs)]), claims[n % devices],
                                   actor="bench")
                return 16

            # One caller: every certificate waits for its own commit and fsync.
            result.metrics["certs_one_caller_per_s"] = round(_rate(issue, seconds), 1)
            # Concurrent callers in this one process (one core: the GIL), as the EST
            # listener's request threads are: records of certificates issued at the same
            # time share one transaction and one fsync (group commit); each call still
            # returns only after its record is on disk.
            result.metrics["certs_per_s"] = round(_concurrent_rate(issue, seconds,
                                                                   ISSUERS), 1)
            # Fewer requests in flight: smaller batches, the core idles during fsyncs.
            result.metrics["certs_8_issuers_per_s"] = round(_concurrent_rate(issue, seconds,
                                                                             8), 1)
            result.limits["fsync_per_s"] = round(fsync_rate(Path(tmp), seconds), 1)
            result.notes["certificates_issued"] = cursor[0]
            result.notes["issuers"] = ISSUERS

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

            # Full device bootstraps over loopback TLS, devices in their own processes,
            # the listener served as `simtrust serve` serves it.
            workers = (int(os.environ.get("SIMTRUST_BENCH_BOOTSTRAP_WORKERS", "0"))
                       or usable_cores())
            with _serving(boot, home, workers) as served:
                naf = boot.server.naf_id.fqdn
                kept = _bootstraps(served, naf, keys, Path(tmp), keep_alive=True)
                fresh = _bootstraps(served, naf, keys, Path(tmp), keep_alive=False)
            result.notes["bootstrap_workers"] = workers
            result.metrics["bootstraps_per_s"] = kept.per_s
            result.metrics["bootstraps_new_tls_per_s"] = fresh.per_s
            # What the listener alone would do with a core of its own: its CPU per
            # bootstrap, the device processes' CPU (the bench's client side) left out.
            result.metrics["bootstraps_per_listener_core_s"] = round(1000 / kept.listener_ms, 1)
            result.metrics["bootstraps_new_tls_per_listener_core_s"] = round(
                1000 / fresh.listener_ms, 1)
            # The machine's share each run got: on a shared machine the figures are
            # bounded by the CPU the listener and the devices could get at all.
            result.limits["bootstrap_cores_used"] = kept.cores_used
            # The bench's own client side: the rate one core given to the device
            # processes alone carries, and the rate the machine's cores carry for the
            # listener and the devices together, at the CPU cost measured (derived).
            result.limits["devices_per_core_s"] = round(1000 / kept.devices_ms, 1)
            result.limits["bootstraps_per_machine_cpu_s"] = round(
                (os.cpu_count() or 1) * 1000 / (kept.listener_ms + kept.devices_ms), 1)
            result.limits["bootstrap_new_tls_cores_used"] = fresh.cores_used
            result.notes.update({
                "devices": devices, "clients": CLIENTS, "device_threads": DEVICE_THREADS,
                "store": "sqlite", "audit_records": rt.audit.count(),
                "listener_cpu_ms_per_bootstrap": kept.listener_ms,
                "devices_cpu_ms_per_bootstrap": kept.devices_ms,
                "listener_cpu_ms_per_bootstrap_new_tls": fresh.listener_ms,
                "devices_cpu_ms_per_bootstrap_new_tls": fresh.devices_ms})
            result.ratio("certs_to_p256_sign", "certs_per_s", "p256_sign_per_s")
            result.ratio("one_caller_certs_per_fsync", "certs_one_caller_per_s", "fsync_per_s")
            result.ratio("ocsp_to_p256_sign", "ocsp_per_s", "p256_sign_per_s")
            result.ratio("ocsp_nonce_to_p256_sign", "ocsp_nonce_per_s", "p256_sign_per_s")
            subs.close()
        finally:
            rt.close()
    return result
