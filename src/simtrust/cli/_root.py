"""Root commands: version, init, serve, demo, bench (``audit``, ``keys``: own modules)."""

from __future__ import annotations

import errno
import ipaddress
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives import serialization
from rich.table import Table

import simtrust
from simtrust.aaa import RadiusListener, RadiusStreamListener, parse_bind, radsec_context
from simtrust.audit.anchoring import anchor_pending
from simtrust.benchmark import discover, load_bench
from simtrust.cli._bootstrap_serve import start_bootstrap
from simtrust.cli._common import console, emit_json, err_console, open_runtime
from simtrust.cli._prefork import ApiWorkers, WorkerOptions, tls_context_check
from simtrust.cli._radius_workers import RadiusWorkers, start_radius_udp
from simtrust.cli._sbi import advertised_ip, start_sbi
from simtrust.config import load_settings
from simtrust.demo import run_demo
from simtrust.detect import StormGuard, storm_guard_from
from simtrust.diameter import DiameterListener, NodeSettings, tls_context
from simtrust.errors import ConfigError, InvalidInput, SimtrustError
from simtrust.policy import TunnelSync, TunnelWatch
from simtrust.runtime import Runtime, settle_gc

__all__ = ["app"]

app = typer.Typer(
    help="simtrust: trust and security platform for cellular IoT.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"simtrust {simtrust.__version__}")
        raise typer.Exit


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
    home: Annotated[
        Path | None,
        typer.Option("--home", envvar="SIMTRUST_HOME", help="Data directory (~/.simtrust)."),
    ] = None,
) -> None:
    """simtrust: trust and security platform for cellular IoT."""
    if home is not None:
        os.environ["SIMTRUST_HOME"] = str(home)


@app.command()
def init(
    json_out: JsonOpt = False,
    new_key: Annotated[
        bool, typer.Option("--new-key", help="Create another operator key even if one exists.")
    ] = False,
) -> None:
    """Create the data directory, master key and the first operator-admin API key."""
    settings = load_settings()
    existed = settings.master_key_file.exists()
    rt = Runtime.initialise(settings)
    try:
        secret = None
        if new_key or not rt.tenants.list_keys():
            with rt.db.transaction():
                created = rt.tenants.create_key("operator-admin", "initial operator key")
                rt.audit.append(actor="cli:init", action="apikey.create",
                                subject=f"apikey:{created.key.id}", outcome="success",
                                details={"role": "operator-admin"})
            secret = created.secret
        result = {
            "home": str(settings.home),
            "store": settings.store_url.split("://", 1)[0],
            "master_key_id": rt.keyring.active_key_id,
            "initialised": not existed,
            "operator_api_key": secret,
        }
    finally:
        rt.close()
    if json_out:
        emit_json(result)
        return
    console.print(f"data directory: {result['home']} ({result['store']})")
    console.print(f"master key: {result['master_key_id']}")
    if secret:
        console.print(f"operator API key (shown once, keep it safe): [bold]{secret}[/bold]")
    else:
        console.print("already initialised; use --new-key for another operator key")


@app.command()
def serve(
    bind: Annotated[str | None, typer.Option(help="HOST:PORT (default from settings).")] = None,
    workers: Annotated[int | None, typer.Option(
        help="API worker processes (default SIMTRUST_API_WORKERS, else one per core).",
        min=1, max=256)] = None,
    tls_cert: Annotated[Path | None, typer.Option(
        "--tls-cert", help="PEM certificate chain: serve the API over TLS 1.3.")] = None,
    tls_key: Annotated[Path | None, typer.Option(
        "--tls-key", help="PEM private key of --tls-cert.")] = None,
) -> None:
    """Run the HTTP API (worker processes) and the configured protocol listeners."""
    settings = load_settings()
    host, port = settings.api_host, settings.api_port
    if bind:
        host, _, port_text = bind.rpartition(":")
        if not host or not (port_text.isascii() and port_text.isdigit()):
            raise InvalidInput(f"--bind must be HOST:PORT, got {bind!r}")
        port = int(port_text)
    cert = tls_cert or (Path(settings.api_tls_cert) if settings.api_tls_cert else None)
    key = tls_key or (Path(settings.api_tls_key) if settings.api_tls_key else None)
    for path in (cert, key):
        if path is not None and not path.is_file():
            raise InvalidInput(f"no file at {path}")
    options = WorkerOptions(cert, key)
    tls_context_check(options)
    count = workers or settings.api_worker_count
    if settings.lwm2m_bind and count > 1:
        # The devices API drives the LwM2M sessions held in memory by the process that
        # serves them: one worker serves both (docs/decisions/corenet-api-workers.md).
        err_console.print("LwM2M is configured: the API runs in one worker, with the LwM2M servers")
        count = 1
    # Migrations run here, once, before any worker opens the store.
    rt = open_runtime()
    try:
        sock = _bind_api(host, port)
    except OSError as exc:
        rt.close()
        raise ConfigError(f"cannot bind the API to {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    # Before the workers start: every event they forward is applied (rt.close stops it).
    rt.follow_sim_events()
    pool = ApiWorkers(sock, count, options, with_lwm2m=bool(settings.lwm2m_bind)).start()
    scheme = "https" if cert else "http"
    err_console.print(f"simtrust API on {scheme}://{host}:{sock.getsockname()[1]} "
                      f"(OpenAPI at /openapi.json, dashboard at /ui/), {count} worker process"
                      f"{'es' if count > 1 else ''}")
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    stops: list[Callable[[], None]] = []
    try:
        # Built before traffic, so attach decisions, alerts and certificate events
        # annotate the data of the SIMs they concern from the first one (workers too).
        rt.streams.alert_sink()
        anchoring = _start_anchoring(rt)
        if anchoring is not None:
            stops.append(anchoring.set)
        clearing = _start_energy_clearing(rt)
        if clearing is not None:
            stops.append(clearing.set)
        diameter = _start_diameter(rt)
        if diameter is not None:
            stops += [rt.subscriber.hss.stop_following, diameter.stop]
        bootstrap_stops, bootstrap_pool = start_bootstrap(rt)
        stops += bootstrap_stops
        radius_listeners, radius_pool = _start_radius(rt)
        stops += [listener.close for listener in radius_listeners]
        if radius_pool is not None:
            stops.append(radius_pool.stop)
        sbi_storm: list[StormGuard] = []
        sbi_stops, sbi_pool = start_sbi(rt, sbi_storm)
        stops += reversed(sbi_stops)
        if rt.settings.fraud_consortium:
            # partners' reports already on the ledger apply before the first event
            rt.fraud_intel.catch_up(rt.ledger)
        # Orders a stopped node left half-done are failed (their steps undone) or run now;
        # notifications it had not delivered go out. Once, here, not in every worker.
        rt.orchestrator.recover()
        rt.market.cancellations.recover()
        rt.market.client_services.recover()
        stops.append(_start_service_orders(rt))  # orders waiting for requestedStartDate
        rt.market.jobs.start()  # catalog import/export jobs accepted before a stop run too
        rt.market_events.start()
        tunnels = _start_tunnel_watch(rt)
        applier = _start_tunnel_sync(rt)
        settle_gc()  # everything is loaded: keep full collections off the listeners' paths
        ticks = 0
        while not stop.wait(0.5):
            for pid, status in pool.check():
                err_console.print(f"API worker {pid} exited ({status}); started another")
            for pid, status in sbi_pool.check() if sbi_pool is not None else ():
                err_console.print(f"SBI worker {pid} exited ({status}); started another")
            for pid, status in radius_pool.check() if radius_pool is not None else ():
                err_console.print(f"RADIUS worker {pid} exited ({status}); started another")
            for pid, status in bootstrap_pool.check() if bootstrap_pool is not None else ():
                err_console.print(f"bootstrap worker {pid} exited ({status}); started another")
            if tunnels is not None:
                tunnels.check()  # connects again after charon restarted
            if applier is not None:
                applier.check()  # stored tunnels added, changed or removed since
            ticks += 1
            if ticks % 10 == 1:
                _fraud_tick(rt, diameter, sbi_storm)
    finally:
        # Reverse start order: the SBI (NRF deregistration first), then the rest.
        for stop_one in reversed(stops):
            stop_one()
        pool.stop()
        rt.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


#: How long ``serve`` waits for its API address while it is in use: after a kill -9 of a
#: master, its workers get SIGTERM from the kernel (PR_SET_PDEATHSIG) and close their
#: copy of the listening socket a moment later; a supervisor restarting at once would
#: otherwise find the address taken. Anything else holding it is reported after this.
API_BIND_WAIT_S = 15.0


def _bind_api(host: str, port: int) -> socket.socket:
    """Bind the API's listening socket, waiting out a predecessor's exiting workers."""
    deadline = time.monotonic() + API_BIND_WAIT_S
    told = False
    while True:
        try:
            return socket.create_server((host, port), backlog=4096)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                raise
            if not told:
                err_console.print(f"{host}:{port} is in use; waiting up to "
                                  f"{API_BIND_WAIT_S:g} s for it to be released")
                told = True
            time.sleep(0.1)


def _fraud_tick(rt: Runtime, diameter: DiameterListener | None,
                sbi_storm: list[StormGuard]) -> None:
    """Every few seconds: reports other processes put on the ledger; counters for the API."""
    try:
        if rt.settings.fraud_consortium:
            rt.fraud_intel.catch_up(rt.ledger)
        radius = rt.aaa.server.storm if rt.settings.radius_bind or rt.settings.radsec_bind \
            or rt.settings.radius_tcp_bind else None
        rt.publish_fraud_status({
            "diameter": diameter.apps.storm_stats() if diameter is not None else None,
            "sbi": sbi_storm[0].stats() if sbi_storm else None,
            "radius": radius.stats() if radius is not None else None,
        })
    except (SimtrustError, OSError) as exc:
        detail = exc.detail if isinstance(exc, SimtrustError) else str(exc)
        err_console.print(f"fraud status not updated: {detail}")


def _start_radius(rt: Runtime
                  ) -> tuple[list[RadiusListener | RadiusStreamListener], RadiusWorkers | None]:
    """The RADIUS listeners the settings name, and the UDP worker pool if UDP is served
    by workers: UDP (``SIMTRUST_RADIUS_BIND`` /
    ``SIMTRUST_RADIUS_ACCT_BIND``, :func:`start_radius_udp`), TCP (``SIMTRUST_RADIUS_TCP_BIND`` /
    ``SIMTRUST_RADIUS_TCP_ACCT_BIND``, RFC 6613) and TLS (``SIMTRUST_RADSEC_BIND``,
    RFC 6614; server certificate from the operator CA, gateway certificates from the
    operator CA or ``SIMTRUST_TLS_CLIENT_CA``)."""
    settings = rt.settings
    udp, pool = start_radius_udp(rt)
    listeners: list[RadiusListener | RadiusStreamListener] = list(udp)
    for bind, kind in ((settings.radius_tcp_bind, "auth"),
                       (settings.radius_tcp_acct_bind, "acct")):
        if not bind:
            continue
        host, port = parse_bind(bind)
        stream = RadiusStreamListener(rt.aaa.server, host, port, kind).start()
        listeners.append(stream)
        err_console.print(f"simtrust RADIUS {kind} on tcp://{stream.address[0]}:"
                          f"{stream.address[1]}")
    if settings.radsec_bind:
        host, port = parse_bind(settings.radsec_bind)
        cas = rt.bootstrap.cas
        wildcard = ipaddress.ip_address(socket.gethostbyname(host)).is_unspecified \
            if ":" not in host else ipaddress.ip_address(host).is_unspecified
        names = [socket.gethostname()] if wildcard else [host]
        chain, key = cas.server_certificate([*names, "localhost"], days=365)
        trust = cas.operator_ca().certificate.public_bytes(serialization.Encoding.PEM)
        if settings.tls_client_ca:
            trust += b"\n" + Path(settings.tls_client_ca).read_bytes()
        context = radsec_context(chain, key, trust,
                                 keylog=os.environ.get("SSLKEYLOGFILE") or None)
        stream = RadiusStreamListener(rt.aaa.server, host, port, "any", tls=context).start()
        listeners.append(stream)
        err_console.print(f"simtrust RadSec on tls://{stream.address[0]}:{stream.address[1]}")
    if listeners or pool is not None:
        rt.aaa.watch()  # Disconnect-Requests for SIM changes: sent by this process only
    return listeners, pool


def _start_diameter(rt: Runtime) -> DiameterListener | None:
    """The S6a/S13 listener when ``SIMTRUST_DIAMETER_BIND`` is set (else None)."""
    settings = rt.settings
    if not settings.diameter_bind:
        return None
    subs = rt.subscriber
    host, _, port = settings.diameter_bind.rpartition(":")
    tls = None
    if settings.diameter_tls_cert or settings.diameter_tls_key or settings.diameter_tls_ca:
        if not (settings.diameter_tls_cert and settings.diameter_tls_key
                and settings.diameter_tls_ca):
            raise ConfigError("Diameter over TLS needs SIMTRUST_DIAMETER_TLS_CERT, _KEY and _CA")
        tls = tls_context(settings.diameter_tls_cert, settings.diameter_tls_key,
                          settings.diameter_tls_ca)
    node = NodeSettings(settings.diameter_origin_host, settings.diameter_origin_realm,
                        settings.diameter_peer_hosts,
                        host_ip=advertised_ip(host), tls=tls)
    listener = DiameterListener(node, subs.hss, subs.eir, rt.audit,
                                storm=storm_guard_from(settings.storm_rates),
                                observer=rt.detect.observe_sim)
    bound = listener.start(host, int(port))
    # SIMs suspended through an API worker process cancel their location here too.
    subs.hss.follow_changes()
    peers = ", ".join(sorted(node.peers)) or "none (every peer is refused)"
    err_console.print(f"simtrust Diameter S6a/S13 on {bound[0]}:{bound[1]}"
                      f"{' (TLS)' if tls else ''} as "
                      f"{node.origin_host} ({node.origin_realm}); peers: {peers}")
    return listener


def _start_energy_clearing(rt: Runtime) -> threading.Event | None:
    """The energy market's scheduler: at start and every ``energy_clear_interval_s``
    seconds, finish or roll back what a crash left half paid, clear every interval whose
    gate closed (each clearing is one durable transaction, done once), then settle every
    cleared interval whose closing readings had time to arrive (once, across processes:
    the interval's row holds the settler's claim)."""
    interval = rt.settings.energy_clear_interval_s
    if interval <= 0:
        return None
    stop = threading.Event()

    def loop() -> None:
        while True:
            try:
                done = rt.energy.tick(actor="scheduler")
                if done["recovered"] or done["cleared"] or done["settled"]:
                    err_console.print(f"energy market: {len(done['recovered'])} recovered, "
                                      f"{len(done['cleared'])} intervals cleared, "
                                      f"{len(done['settled'])} settled")
            except Exception as exc:  # noqa: BLE001 - one bad tick must not end the scheduler
                detail = exc.detail if isinstance(exc, SimtrustError) else repr(exc)
                err_console.print(f"energy market tick failed: {detail}")
            if stop.wait(interval):
                return

    threading.Thread(target=loop, name="energy-clearing", daemon=True).start()
    return stop


#: How often ``serve`` looks for client service orders whose requestedStartDate came.
SERVICE_ORDER_POLL_S = 1.0


def _start_service_orders(rt: Runtime, interval: float = SERVICE_ORDER_POLL_S,
                          ) -> Callable[[], None]:
    """TMF641 client orders with a future ``requestedStartDate`` wait ``acknowledged`` in
    the store; this thread runs them once due (after a restart too); returns its stop."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                rt.market.client_services.run_due()
            except Exception as exc:  # noqa: BLE001 - one bad tick must not end the scheduler
                detail = exc.detail if isinstance(exc, SimtrustError) else repr(exc)
                err_console.print(f"service order scheduler: {detail}")
            stop.wait(interval)

    thread = threading.Thread(target=loop, name="service-orders", daemon=True)
    thread.start()

    def halt() -> None:  # a tick in progress finishes before the caller closes the store
        stop.set()
        thread.join(timeout=60)

    return halt


def _start_tunnel_watch(rt: Runtime) -> TunnelWatch | None:
    """Tunnel events from the gateway's charon when ``SIMTRUST_TUNNEL_VICI`` is set."""
    path = rt.settings.tunnel_vici
    if not path:
        return None
    watch = rt.tunnel_watch(path)
    if watch.check():
        err_console.print(f"simtrust tunnel events from charon at {path}")
    else:
        err_console.print(f"charon's VICI socket {path} is not reachable; retrying every 5 s")
    return watch


def _start_tunnel_sync(rt: Runtime) -> TunnelSync | None:
    """The stored tunnels loaded into the gateway's charon when ``SIMTRUST_TUNNEL_VICI``
    and ``SIMTRUST_TUNNEL_DIR`` are set: all of them now, then each change."""
    path, directory = rt.settings.tunnel_vici, rt.settings.tunnel_dir
    if not path or not directory:
        return None
    sync = rt.tunnel_sync(path, directory, rt.settings.tunnel_netns)
    change = sync.check()
    if change is not None:
        err_console.print(f"simtrust applied {len(change.added) + len(change.kept)} stored"
                          " tunnels to charon")
    return sync


def _start_anchoring(rt: Runtime) -> threading.Event | None:
    """Anchor new audit records every ``anchor_interval_s`` seconds in the background, and
    mark the stream batches whose anchors the ledger finalized since (``anchored``)."""
    interval = rt.settings.anchor_interval_s
    if interval <= 0:
        return None

    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            try:
                anchor_pending(rt.audit, rt.ledger)
            except SimtrustError as exc:
                err_console.print(f"audit anchoring failed: {exc.detail}")
            try:
                rt.streams.confirm_anchors()
            except SimtrustError as exc:
                err_console.print(f"stream anchors not confirmed: {exc.detail}")

    threading.Thread(target=loop, name="audit-anchoring", daemon=True).start()
    return stop


@app.command()
def demo(
    json_out: JsonOpt = False,
    home: Annotated[
        Path | None, typer.Option("--dir", help="Run in this directory instead of a fresh one.")
    ] = None,
) -> None:
    """Run the end-to-end scenario on a fresh SQLite data directory and print a report."""

    report = run_demo(home, say=None if json_out else console.print)
    if json_out:
        emit_json(report)
    if not report["ok"]:
        raise typer.Exit(1)


@app.command()
def bench(
    name: Annotated[str, typer.Argument(help="Benchmark name, or `all`, or `list`.")],
    json_out: JsonOpt = False,
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes (seconds).")] = False,
) -> None:
    """Run a benchmark; figures sit next to this machine's own limits."""

    found = discover()
    if name == "list":
        if json_out:
            emit_json(sorted(found))
        else:
            for bench_name in found:
                console.print(bench_name)
        return
    names = sorted(found) if name == "all" else [name]
    for bench_name in names:
        module = load_bench(bench_name)
        result = module.run(quick=quick).to_json()
        if json_out:
            emit_json(result)
        else:
            _print_bench(result)


def _print_bench(result: dict[str, object]) -> None:
    table = Table(title=f"bench {result['bench']}")
    table.add_column("kind")
    table.add_column("key")
    table.add_column("value", justify="right")
    for kind in ("metrics", "limits", "ratios"):
        values = result.get(kind)
        if isinstance(values, dict):
            for key, value in values.items():
                shown = f"{value:,.6g}" if isinstance(value, float | int) else str(value)
                table.add_row(kind, key, shown)
    console.print(table)
    notes = result.get("notes")
    if notes:
        console.print(f"notes: {notes}")
