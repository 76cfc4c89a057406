"""``simtrust fota``: firmware-update campaigns through the running node's API
(``create`` stages by device group with a failure threshold, the package pulled from a
URI or, with ``--package FILE`` or ``--package-digest``, pushed to the devices
block-wise; ``upload`` streams a package of any size up to the firmware limit and prints
its digest; ``status``, ``list``)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from simtrust.cli._common import console, emit_json
from simtrust.cli.devices import JsonOpt, KeyOpt, UrlOpt, api_call
from simtrust.errors import InvalidInput

__all__ = ["NAME", "app"]

NAME = "fota"

app = typer.Typer(name=NAME, help="Firmware-update campaigns (LwM2M object 5).",
                  no_args_is_help=True)


@app.command("create")
def create(
    version: Annotated[str, typer.Option("--version", help="Firmware version after update.")],
    group: Annotated[list[int], typer.Option("--group", help="Device group, one per stage.")],
    package_uri: Annotated[str, typer.Argument(help="coap(s):// or http(s):// package URI "
                                               "(omit with --package).")] = "",
    threshold: Annotated[float, typer.Option("--failure-threshold", min=0.0, max=1.0,
                                             help="Failed fraction that halts a stage.")] = 0.2,
    package: Annotated[Path | None, typer.Option(
        "--package", help="Package file pushed to /5/0/0 instead of a URI.")] = None,
    package_digest: Annotated[str | None, typer.Option(
        "--package-digest", help="An uploaded package (sha256:<hex>) pushed to /5/0/0.")]
    = None,
    url: UrlOpt = "http://127.0.0.1:8000", api_key: KeyOpt = "",
) -> None:
    """Create and start a campaign."""
    body: dict[str, object] = {"version": version, "groups": group,
                               "failure_threshold": threshold}
    if sum(x is not None for x in (package, package_digest)) + bool(package_uri) > 1:
        raise InvalidInput("give one of a package URI, --package, --package-digest",
                           field="package")
    if package_digest is not None:
        body["package_digest"] = package_digest
    elif package is not None:
        try:
            body["package_base64"] = base64.b64encode(package.read_bytes()).decode()
        except OSError as exc:
            raise InvalidInput(f"cannot read {package}: {exc.strerror}",
                               field="package") from None
    elif not package_uri.startswith(("coap://", "coaps://", "http://", "https://")):
        raise InvalidInput("the package URI is coap(s):// or http(s)://", field="package_uri")
    else:
        body["package_uri"] = package_uri
    made = api_call(url, api_key, "POST", "/v1/fota/campaigns", body)
    console.print(f"campaign {made['campaign_id']}: {len(made['stages'])} stage(s)")


@app.command("status")
def status(campaign_id: str, url: UrlOpt = "http://127.0.0.1:8000",
           api_key: KeyOpt = "") -> None:
    """A campaign's state and per-device results."""
    emit_json(api_call(url, api_key, "GET", f"/v1/fota/campaigns/{campaign_id}"))


@app.command("list")
def list_campaigns(url: UrlOpt = "http://127.0.0.1:8000", api_key: KeyOpt = "") -> None:
    """Campaigns."""
    emit_json(api_call(url, api_key, "GET", "/v1/fota/campaigns"))


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(1 << 16):
            yield chunk


@app.command("upload")
def upload(
    package: Annotated[Path, typer.Argument(help="Firmware package file.")],
    tenant: Annotated[str | None, typer.Option("--tenant", help="Tenant (operator keys).")]
    = None,
    url: UrlOpt = "http://127.0.0.1:8000", api_key: KeyOpt = "", json_out: JsonOpt = False,
) -> None:
    """Upload a package (streamed; the server checks its SHA-256) and print its digest."""
    try:
        size = package.stat().st_size
        with package.open("rb") as f:
            expected = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as exc:
        raise InvalidInput(f"cannot read {package}: {exc.strerror}", field="package") from None
    params = {"sha256": expected}
    if tenant is not None:
        params["tenant_id"] = tenant
    stored = api_call(url, api_key, "POST", "/v1/fota/packages",
                      content=_chunks(package), params=params)
    if json_out:
        emit_json(stored)
        return
    console.print(f"{stored['digest']} ({size} bytes)")
