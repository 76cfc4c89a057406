"""``simtrust stream``: channels and signed frames in the local store.

``keygen`` writes an author key (an Ed25519 seed, hex, mode 0600); ``open``
signs a channel's announce with it and registers the channel for a tenant;
``publish`` signs the next message with it (public channels) or stores a frame
signed elsewhere (``--frame``); ``read`` prints the stored frames; ``anchor``
puts the unanchored ones on the ledger; ``derive`` records an aggregate;
``policy`` shows or sets a tenant's confidence weights; ``ingest`` stores every
frame published on the MQTT broker's channel topics (docs/streams.md).
Unreadable input is one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from simtrust.cli._common import console, emit_json, open_runtime
from simtrust.errors import InvalidInput
from simtrust.identity import Ed25519Signer
from simtrust.streams import Author, MqttStreamIngest, decode_frame

__all__ = ["NAME", "app"]

NAME = "stream"

app = typer.Typer(name=NAME, help="Authenticated data channels: open, publish, read, anchor.",
                  no_args_is_help=True)

JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def load_key(path: Path) -> Ed25519Signer:
    """An author key file: 64 hex digits (an Ed25519 seed)."""
    try:
        text = path.read_text(encoding="ascii").strip()
        seed = bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"{path} is not an author key file (64 hex digits)") from exc
    if len(seed) != 32:
        raise InvalidInput(f"{path} is not an author key file (64 hex digits)")
    return Ed25519Signer.from_seed(seed)


def _show(doc: dict[str, Any], json_out: bool, fields: list[str]) -> None:
    if json_out:
        emit_json(doc)
        return
    for name in fields:
        console.print(f"{name}: {doc.get(name)}")


@app.command("keygen")
def keygen(path: Annotated[Path, typer.Argument(help="Where to write the key (must not exist).")],
           json_out: JsonOut = False) -> None:
    """Write a new author key (hex seed, readable by you only)."""
    if path.exists():
        raise InvalidInput(f"{path} exists already")
    seed = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(seed.hex() + "\n")
    public = Ed25519Signer.from_seed(seed).public_key.hex()
    _show({"file": str(path), "public_key": public}, json_out, ["file", "public_key"])


@app.command("open")
def open_channel(
    tenant: Annotated[str, typer.Option("--tenant", help="Owner tenant.")],
    key: Annotated[Path, typer.Option("--key", help="Author key file (stream keygen).")],
    label: Annotated[str, typer.Option(help="A name for people.")] = "",
    json_out: JsonOut = False,
) -> None:
    """Sign a channel announce with KEY and register the channel."""
    author = Author(load_key(key), _now_ms)
    rt = open_runtime()
    try:
        rt.tenants.get_tenant(tenant)
        doc = rt.streams.open_channel(tenant, author.announce.to_bytes(), label=label,
                                      actor="cli")
    finally:
        rt.close()
    _show(doc, json_out, ["id", "tenant_id", "author"])


@app.command("publish")
def publish(
    channel: Annotated[str, typer.Argument(help="Channel id (hex).")],
    key: Annotated[Path | None, typer.Option("--key", help="Author key: sign DATA here.")] = None,
    data: Annotated[str | None, typer.Option("--data", help="Payload text (with --key).")] = None,
    frame: Annotated[Path | None, typer.Option("--frame", help="A frame signed elsewhere.")
                     ] = None,
    json_out: JsonOut = False,
) -> None:
    """Publish the next message (signed with --key) or a stored frame file (--frame)."""
    if (frame is None) == (key is None) or (key is not None and data is None):
        raise InvalidInput("give either --key with --data, or --frame")
    signer = None if key is None else load_key(key)
    rt = open_runtime()
    try:
        if frame is not None:
            try:
                raw = frame.read_bytes()
            except OSError as exc:
                raise InvalidInput(f"cannot read {frame}: {exc.strerror}") from exc
        else:
            assert signer is not None
            assert data is not None
            announce = decode_frame(rt.streams.announce(channel))
            author = Author.resume(signer, _now_ms, announce, rt.streams.heads(channel))
            raw = author.publish(data.encode()).to_bytes()
        doc = rt.streams.publish(channel, raw, actor="cli")
    finally:
        rt.close()
    _show(doc, json_out, ["message_id", "verdict", "seq", "score"])


@app.command("list")
def list_channels(tenant: Annotated[str | None, typer.Option("--tenant")] = None,
                  json_out: JsonOut = False) -> None:
    """Channels (of one tenant)."""
    rt = open_runtime()
    try:
        channels = rt.streams.channels(tenant)
    finally:
        rt.close()
    if json_out:
        emit_json({"channels": channels})
        return
    for item in channels:
        console.print(f"{item['id']}  {item['tenant_id']}  {item['messages']} messages  "
                      f"{item['label']}")


@app.command("show")
def show(channel: Annotated[str, typer.Argument(help="Channel id (hex).")],
         json_out: JsonOut = False) -> None:
    """One channel: author, counts, SIM binding, rejected frames per verdict."""
    rt = open_runtime()
    try:
        doc = rt.streams.channel(channel)
    finally:
        rt.close()
    _show(doc, json_out, ["id", "tenant_id", "author", "messages", "anchored", "imsi",
                          "rejected"])


@app.command("read")
def read(channel: Annotated[str, typer.Argument(help="Channel id (hex).")],
         after: Annotated[int, typer.Option(help="Only positions after this.")] = -1,
         limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
         json_out: JsonOut = False) -> None:
    """Stored frames in arrival order (base64, as signed)."""
    rt = open_runtime()
    try:
        messages = rt.streams.messages(channel, after=after, limit=limit)
    finally:
        rt.close()
    if json_out:
        emit_json({"messages": messages})
        return
    for m in messages:
        console.print(f"{m['position']:>6} {m['kind']:<8} seq {m['seq']:<6} {m['message_id']}")


@app.command("prove")
def prove(message_id: Annotated[str, typer.Argument(help="A stored reading's message id (hex).")],
          json_out: JsonOut = False) -> None:
    """Prove a meter reading from the ledger: signature, anchored root, key in the SIM's DID."""
    rt = open_runtime()
    try:
        doc = rt.prove_reading(message_id)
    finally:
        rt.close()
    if json_out:
        emit_json(doc)
        return
    console.print(f"{doc['message_id']}: signed by {doc['author']} (a key of {doc['sim_did']}),"
                  f" anchored in {doc['anchor']} (order {doc['anchor_order']})")


@app.command("anchor")
def anchor(channel: Annotated[str, typer.Argument(help="Channel id (hex).")],
           json_out: JsonOut = False) -> None:
    """Anchor the channel's unanchored frames on the ledger (one Merkle root)."""
    rt = open_runtime()
    try:
        doc = rt.streams.anchor(channel, actor="cli")
    finally:
        rt.close()
    _show(doc, json_out, ["channel", "anchored", "root", "anchor"])


@app.command("derive")
def derive(inputs: Annotated[list[str], typer.Argument(help="Input datum ids.")],
           label: Annotated[str, typer.Option("--label", help="What the aggregate is.")],
           json_out: JsonOut = False) -> None:
    """Record a datum derived from stored ones (scored by its weakest input)."""
    rt = open_runtime()
    try:
        tenant = rt.streams.datum_tenant(inputs[0])
        doc = rt.streams.derive(tenant, inputs, label=label, actor="cli")
    finally:
        rt.close()
    _show(doc, json_out, ["datum", "score"])


@app.command("policy")
def policy(tenant: Annotated[str, typer.Argument(help="Tenant id.")],
           weight: Annotated[list[str] | None, typer.Option(
               "--set", help="KIND=WEIGHT (repeat); replaces the tenant's weights.")] = None,
           json_out: JsonOut = False) -> None:
    """Show (or set) a tenant's confidence weights."""
    rt = open_runtime()
    try:
        rt.tenants.get_tenant(tenant)
        if weight:
            weights = {}
            for item in weight:
                kind, sep, value = item.partition("=")
                if not sep or not value.isascii() or not value.isdigit():
                    raise InvalidInput(f"--set takes KIND=WEIGHT, got {item!r}")
                weights[kind] = int(value)
            current = rt.streams.set_policy(tenant, weights, actor="cli")
        else:
            current = rt.streams.policy(tenant)
    finally:
        rt.close()
    doc = {"tenant_id": tenant, "weights": dict(current.weights)}
    _show(doc, json_out, ["tenant_id", "weights"])


@app.command("ingest")
def ingest(prefix: Annotated[str, typer.Option(help="Topic prefix of the channels.")
                             ] = "simtrust/streams") -> None:
    """Store frames from the MQTT broker (SIMTRUST_MQTT_URL) until interrupted."""
    rt = open_runtime()
    try:
        worker = MqttStreamIngest(rt.settings.mqtt_url, rt.streams, prefix=prefix)
        console.print(f"storing frames from {rt.settings.mqtt_url} {prefix}/+/+ (Ctrl-C stops)")
        try:
            threading.Event().wait()
        finally:
            worker.close()
            console.print(f"stored or refused: {dict(worker.counts)}")
    finally:
        rt.close()
