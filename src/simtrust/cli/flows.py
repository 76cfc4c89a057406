"""``simtrust flows``: run an IPFIX / NetFlow v9 collector and print what it decodes."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer

from simtrust.cli._common import console, emit_json, open_runtime
from simtrust.policy import FlowCollector, FlowDecoder, FlowRecord, PolicyEngine, policy_service
from simtrust.runtime import Runtime

__all__ = ["NAME", "app"]

NAME = "flows"

app = typer.Typer(name=NAME, help="Flow records: IPFIX (RFC 7011) and NetFlow v9 (RFC 3954).",
                  no_args_is_help=True)


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
) -> None:
    """Collect flows on HOST:PORT; print them, then the decoder's counters."""
    seen = 0
    rt: Runtime | None = open_runtime() if enforce else None
    engine: PolicyEngine | None = policy_service(rt).engine if rt is not None else None

    def sink(flows: list[FlowRecord]) -> None:
        nonlocal seen
        verdicts = {id(v.flow): v for v in engine.ingest(flows)} if engine is not None else {}
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
    if not json_out:
        console.print(f"collecting on {collector.host}:{collector.port} (Ctrl-C to stop)")
    deadline = time.monotonic() + duration if duration > 0 else None
    collector.start()
    try:
        while (deadline is None or time.monotonic() < deadline) and (not count or seen < count):
            time.sleep(0.05)
    except KeyboardInterrupt:
        pass
    finally:
        collector.stop()
        if rt is not None:
            policy_service(rt).dispatcher.flush()
            rt.close()
    stats = collector.decoder.stats()
    if json_out:
        emit_json({"stats": stats})
    else:
        console.print_json(json.dumps(stats))
