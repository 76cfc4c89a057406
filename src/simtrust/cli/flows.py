"""``simtrust flows``: run an IPFIX / NetFlow v9 collector and print what it decodes.

``collect --nats`` publishes the decoded, SIM-mapped flows to a partitioned
JetStream stream instead; ``consume`` applies partitions of that stream to the
policy engine and detection; ``nats-setup`` creates or updates the stream.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer

from simtrust.cli._common import console, emit_json, err_console, open_runtime
from simtrust.config import load_settings
from simtrust.domain import FlowRecord
from simtrust.flows import (
    DEFAULT_FLOW_STREAM,
    DEFAULT_FLOW_SUBJECT,
    FlowCollector,
    FlowConsumer,
    FlowDecoder,
    FlowService,
    FlowStreamSettings,
    parse_partitions,
    setup_flow_stream,
)
from simtrust.runtime import Runtime

__all__ = ["NAME", "app"]

NAME = "flows"

app = typer.Typer(name=NAME, help="Flow records: IPFIX (RFC 7011) and NetFlow v9 (RFC 3954).",
                  no_args_is_help=True)


def _listening(collector: FlowCollector, extra: str) -> None:
    """Say, on stderr (stdout may carry JSON), once the socket is bound and read."""
    err_console.print(f"listening on udp {collector.host}:{collector.port}{extra}"
                      " (Ctrl-C to stop)", highlight=False)


@app.command("collect")
def collect(
    port: Annotated[int, typer.Option(help="UDP port to listen on.")] = 4739,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    duration: Annotated[float, typer.Option(help="Stop after this many seconds (0: never).")]
    = 0.0,
    count: Annotated[int, typer.Option(help="Stop after this many flows (0: never).")] = 0,
    template_timeout: Annotated[float, typer.Option(help="Template lifetime, seconds.")]
    = 1800.0,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON flow per line.")] = False,
    enforce: Annotated[bool, typer.Option(
        "--enforce", help="Map flows to SIMs and run the stored policies (audited actions).")]
    = False,
    to_nats: Annotated[bool, typer.Option(
        "--nats", help="Publish SIM-mapped flow batches to JetStream instead of printing.")]
    = False,
    partitions: Annotated[int, typer.Option(help="Partitions of the stream (--nats).")] = 8,
    stream: Annotated[str, typer.Option(help="JetStream stream (--nats).")]
    = DEFAULT_FLOW_STREAM,
    subject: Annotated[str, typer.Option(help="Subject prefix (--nats).")]
    = DEFAULT_FLOW_SUBJECT,
    batch: Annotated[int, typer.Option(help="Flows per published batch (--nats).")] = 512,
) -> None:
    """Collect flows on HOST:PORT; print them, then the decoder's counters."""
    if to_nats:
        _collect_to_nats(host, port, duration, count, template_timeout, json_out, partitions,
                         FlowStreamSettings(name=stream, subject_prefix=subject), batch)
        return
    seen = 0
    rt: Runtime | None = open_runtime() if enforce else None
    pipeline: FlowService | None = rt.flows if rt is not None else None

    def sink(flows: list[FlowRecord]) -> None:
        nonlocal seen
        verdicts = ({id(v.flow): v for v in pipeline.ingest(flows, detect=False).verdicts}
                    if pipeline is not None else {})
        for f in flows:
            seen += 1
            v = verdicts.get(id(f))
            if json_out:
                doc: dict[str, object] = {
                    "start": f.start, "end": f.end, "src": f.src_addr, "dst": f.dst_addr,
                    "sport": f.src_port, "dport": f.dst_port, "proto": f.protocol,
                    "packets": f.packets, "octets": f.octets, "exporter": f.exporter}
                if v is not None:
                    doc.update(imsi=v.imsi, uplink=v.uplink, decision=v.decision.to_dict())
                sys.stdout.write(json.dumps(doc) + "\n")
            else:
                verdict = f" [{v.imsi}: {v.decision.reason}]" if v is not None else ""
                console.print(f"{f.src_addr}:{f.src_port} -> {f.dst_addr}:{f.dst_port} "
                              f"proto {f.protocol} {f.packets} pkts {f.octets} B{verdict}")
        sys.stdout.flush()

    collector = FlowCollector(sink, host=host, port=port,
                              decoder=FlowDecoder(template_timeout=template_timeout))
    deadline = time.monotonic() + duration if duration > 0 else None
    collector.start()
    _listening(collector, "")
    try:
        while (deadline is None or time.monotonic() < deadline) and (not count or seen < count):
            time.sleep(0.05)
    except KeyboardInterrupt:
        pass
    finally:
        collector.stop()
        if rt is not None:
            rt.flows.flush()
            rt.close()
    stats = collector.decoder.stats()
    if json_out:
        emit_json({"stats": stats})
    else:
        console.print_json(json.dumps(stats))


def _collect_to_nats(host: str, port: int, duration: float, count: int, template_timeout: float,
                     json_out: bool, partitions: int, settings: FlowStreamSettings,
                     batch: int) -> None:
    rt = open_runtime()
    try:
        publisher = rt.flows.publisher(partitions=partitions, settings=settings,
                                       batch_records=batch)
        collector = FlowCollector(publisher.publish, host=host, port=port,
                                  decoder=FlowDecoder(template_timeout=template_timeout))
        deadline = time.monotonic() + duration if duration > 0 else None
        with publisher:
            collector.start()
            _listening(collector, f" → {settings.name} ({partitions} partitions)")
            try:
                while (deadline is None or time.monotonic() < deadline) and (
                        not count or collector.flows < count):
                    time.sleep(0.05)
            except KeyboardInterrupt:
                pass
            finally:
                collector.stop()
        doc = {"stats": collector.decoder.stats(), "published": {
            "records": publisher.records, "batches": publisher.batches,
            "unmapped": publisher.unmapped, "errors": publisher.errors}}
        if json_out:
            emit_json(doc)
        else:
            console.print_json(json.dumps(doc))
    finally:
        rt.close()


@app.command("consume")
def consume(
    partitions: Annotated[str, typer.Option(help="Partitions to consume, e.g. 0,1 or 0-3.")],
    of: Annotated[int, typer.Option("--of", help="How many partitions the stream has.")] = 8,
    stream: Annotated[str, typer.Option(help="JetStream stream.")] = DEFAULT_FLOW_STREAM,
    subject: Annotated[str, typer.Option(help="Subject prefix.")] = DEFAULT_FLOW_SUBJECT,
    durable: Annotated[str, typer.Option(help="Durable consumer name prefix.")]
    = "simtrust-flows",
    duration: Annotated[float, typer.Option(help="Stop after this many seconds (0: never).")]
    = 0.0,
    idle_exit: Annotated[float, typer.Option(
        help="Stop once nothing arrived for this many seconds (0: never).")] = 0.0,
    ack_wait: Annotated[float, typer.Option(help="Seconds before an unacked batch returns.")]
    = 30.0,
    detect: Annotated[bool, typer.Option(help="Run streaming detection on the flows.")]
    = True,
    json_out: Annotated[bool, typer.Option("--json", help="Counters as JSON.")] = False,
) -> None:
    """Apply partitions of the flow stream to policy and detection, each batch once."""
    parts = parse_partitions(partitions, of)
    rt = open_runtime()
    try:
        applier = rt.flows.applier(stream=stream, partitions=parts, detect=detect)
        consumer = FlowConsumer(applier, url=rt.settings.nats_url, of=of,
                                settings=FlowStreamSettings(name=stream, subject_prefix=subject),
                                durable=durable, ack_wait=ack_wait)
        if not json_out:
            console.print(f"consuming partitions {parts} of {of} from {stream} (Ctrl-C to stop)")
        try:
            stats = consumer.run_blocking(duration=duration or None,
                                          idle_exit=idle_exit or None)
        except KeyboardInterrupt:
            stats = consumer.stats
        rt.flows.flush()
        doc = {"consumed": stats.to_json(), "partitions": {
            str(k): v for k, v in applier.totals().items() if k in parts}}
        if json_out:
            emit_json(doc)
        else:
            console.print_json(json.dumps(doc))
    finally:
        rt.close()


@app.command("nats-setup")
def nats_setup(
    stream: Annotated[str, typer.Option(help="JetStream stream.")] = DEFAULT_FLOW_STREAM,
    subject: Annotated[str, typer.Option(help="Subject prefix.")] = DEFAULT_FLOW_SUBJECT,
    max_age: Annotated[float, typer.Option(help="Keep batches this many seconds.")]
    = 24 * 3600.0,
    max_bytes: Annotated[int, typer.Option(help="Keep at most this many bytes.")] = 1 << 30,
    memory: Annotated[bool, typer.Option("--memory", help="Memory storage (default: file).")]
    = False,
    json_out: Annotated[bool, typer.Option("--json", help="Result as JSON.")] = False,
) -> None:
    """Create the flow stream or bring its limits up to date (idempotent)."""
    if max_age <= 0 or max_bytes <= 0:
        raise typer.BadParameter("max-age and max-bytes must be positive")
    settings = FlowStreamSettings(name=stream, subject_prefix=subject, max_age_s=max_age,
                                  max_bytes=max_bytes, file_storage=not memory)
    outcome = setup_flow_stream(load_settings().nats_url, settings)
    doc = {"stream": stream, "subjects": f"{subject}.*", "outcome": outcome,
           "max_age_s": max_age, "max_bytes": max_bytes}
    if json_out:
        emit_json(doc)
    else:
        console.print(f"stream {stream} ({subject}.*): {outcome}")
