"""``simtrust devices``: LwM2M device management (docs/device-management.md).

``serve`` runs the bootstrap and management servers in the foreground;
``bootstrap-psk IMSI`` makes a per-device bootstrap PSK for a SIM without GBA (shown
once). ``list``, ``show``, ``read``, ``write`` and ``execute`` drive registered devices
through the API of the running node (``--url``/``SIMTRUST_API_URL``, ``--api-key``/
``SIMTRUST_API_KEY``). Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import typer

from simtrust.cli._common import console, emit_json, open_runtime
from simtrust.devices import parse_path
from simtrust.domain import Imsi
from simtrust.errors import InvalidInput, NotFound, SimtrustError

__all__ = ["NAME", "api_call", "app"]

NAME = "devices"

app = typer.Typer(name=NAME, help="LwM2M device management: servers, PSKs, devices.",
                  no_args_is_help=True)

UrlOpt = Annotated[str, typer.Option("--url", envvar="SIMTRUST_API_URL",
                                     help="API of the running node.")]
KeyOpt = Annotated[str, typer.Option("--api-key", envvar="SIMTRUST_API_KEY",
                                     help="API key (tenant or operator).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
FORMAT_CHOICES = ("senml-json", "senml-cbor", "tlv", "text")


class ApiError(SimtrustError):
    """The API answered with a problem document."""

    code = "api-error"
    status = 502


def api_call(url: str, key: str, method: str, path: str,
             body: dict[str, Any] | None = None, *, content: Iterator[bytes] | None = None,
             params: dict[str, str] | None = None) -> Any:
    """One API request (``content``: a raw body, streamed); a problem answer becomes one
    line (its detail)."""
    if not key:
        raise InvalidInput("give --api-key or SIMTRUST_API_KEY", field="api_key")
    headers = {"Authorization": f"Bearer {key}"}
    if content is not None:
        headers["Content-Type"] = "application/octet-stream"
    try:
        response = httpx.request(method, url.rstrip("/") + path, json=body, timeout=120,
                                 headers=headers, content=content, params=params)
    except httpx.HTTPError as exc:
        raise ApiError(f"cannot reach the API at {url}: {type(exc).__name__}") from exc
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        if response.status_code in (400, 422):
            raise InvalidInput(str(detail)[:200])
        if response.status_code == 404:
            raise NotFound(str(detail)[:200])
        raise ApiError(f"{response.status_code}: {str(detail)[:200]}")
    return response.json()


def _path(text: str) -> str:
    try:
        parse_path(text)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="path") from exc
    return text


@app.command("serve")
def serve(
    bind: Annotated[str, typer.Option("--bind", help="HOST:PORT of the management server.")]
    = "0.0.0.0:5684",
    bootstrap_port: Annotated[int, typer.Option("--bootstrap-port", min=0, max=65535,
                                                help="Bootstrap server port (DTLS).")] = 5784,
) -> None:
    """Run the LwM2M bootstrap and management servers until interrupted."""
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise InvalidInput(f"--bind must be HOST:PORT, got {bind!r}", field="bind")
    rt = open_runtime()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        rt.devices.start(host, int(port), bootstrap_port)
        console.print(f"LwM2M management on coaps://{host}:{rt.devices.dm_port}, bootstrap on "
                      f"coaps://{host}:{rt.devices.bs_port}")
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    finally:
        rt.close()


@app.command("bootstrap-psk")
def bootstrap_psk(
    imsi: Annotated[str, typer.Argument(help="IMSI of a SIM in the inventory.")],
    json_out: JsonOpt = False,
) -> None:
    """Make a per-device bootstrap PSK (for SIMs without GBA); the key is shown once."""
    value = Imsi(imsi)
    rt = open_runtime()
    try:
        sim = rt.subscriber.inventory.find_sim(value)
        if sim is None:
            raise NotFound(f"unknown SIM {value}", reason="unknown-sim")
        identity, key = rt.devices.issue_bootstrap_psk(sim.imsi.value, sim.tenant_id)
    finally:
        rt.close()
    out = {"imsi": sim.imsi.value, "identity": identity, "key_hex": key.hex()}
    if json_out:
        emit_json(out)
        return
    console.print(f"PSK identity {identity}\nkey (hex, shown once) {key.hex()}")


@app.command("list")
def list_devices(url: UrlOpt = "http://127.0.0.1:8000", api_key: KeyOpt = "",
                 json_out: JsonOpt = False) -> None:
    """Registered devices."""
    found = api_call(url, api_key, "GET", "/v1/lwm2m/devices")
    if json_out:
        emit_json(found)
        return
    for d in found:
        console.print(f"{d['iccid']}  {d['endpoint']}  fw={d['firmware_version'] or '?'}  "
                      f"{d['address']}{'  (queue)' if d['queue_mode'] else ''}")


@app.command("show")
def show(iccid: str, url: UrlOpt = "http://127.0.0.1:8000", api_key: KeyOpt = "") -> None:
    """The registration of a SIM's device."""
    emit_json(api_call(url, api_key, "GET", f"/v1/lwm2m/devices/{iccid}"))


@app.command("read")
def read(
    iccid: str, path: str,
    fmt: Annotated[str, typer.Option("--format", help="/".join(FORMAT_CHOICES))] = "senml-cbor",
    url: UrlOpt = "http://127.0.0.1:8000", api_key: KeyOpt = "",
) -> None:
    """Read an object, instance or resource (e.g. /3/0)."""
    if fmt not in FORMAT_CHOICES:
        raise InvalidInput(f"--format is one of {', '.join(FORMAT_CHOICES)}", field="format")
    emit_json(api_call(url, api_key, "POST", f"/v1/lwm2m/devices/{iccid}/read",
                       {"path": _path(path), "format": fmt}))


@app.command("write")
def write(
    iccid: str, path: str,
    value: Annotated[str, typer.Argument(help="A JSON value (number, \"text\", true).")],
    url: UrlOpt = "http://127.0.0.1:8000", api_key: KeyOpt = "",
) -> None:
    """Write one resource (e.g. /1/0/1 600)."""
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    emit_json(api_call(url, api_key, "POST", f"/v1/lwm2m/devices/{iccid}/write",
                       {"path": _path(path), "values": {path: parsed}}))


@app.command("execute")
def execute(iccid: str, path: str, url: UrlOpt = "http://127.0.0.1:8000",
            api_key: KeyOpt = "") -> None:
    """Execute a resource (e.g. /3/0/4 reboots)."""
    emit_json(api_call(url, api_key, "POST", f"/v1/lwm2m/devices/{iccid}/execute",
                       {"path": _path(path)}))
