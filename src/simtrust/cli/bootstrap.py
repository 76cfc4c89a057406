"""``simtrust bootstrap device``: the whole device side against a running server (field tests).

It plays the SIM (K and OPc given on the command line, a software SIM applet), runs
GBA over Ub (Digest AKA with AUTS re-synchronisation) and enrols a key pair made in
the applet at the NAF's EST endpoint, then writes the certificate, its chain and the
private key (mode 0600) for the device's TLS stack.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives import serialization

from simtrust.bootstrap import DeviceClient, NafId, SimApplet, impi_from_imsi
from simtrust.cli._common import console, emit_json
from simtrust.errors import InvalidInput
from simtrust.subscriber import Iccid, Imsi
from simtrust.subscriber.auc import Milenage, Usim, parse_hex

__all__ = ["NAME", "app"]

NAME = "bootstrap"

app = typer.Typer(name=NAME, no_args_is_help=True,
                  help="Device-side bootstrap from the SIM: GBA/Ub, then EST enrolment.")


@app.command("device")
def device(
    url: Annotated[str, typer.Option("--url", help="Bootstrap listener, https://HOST:PORT")],
    trust: Annotated[Path, typer.Option("--trust", help="Operator tier-1 CA (PEM).")],
    iccid: Annotated[str, typer.Option("--iccid")],
    imsi: Annotated[str, typer.Option("--imsi")],
    k: Annotated[str, typer.Option("--k", help="SIM key K (hex).")],
    opc: Annotated[str, typer.Option("--opc", help="OPc (hex).")],
    label: Annotated[str, typer.Option(
        "--label", help="EST label of the tenant CA (<tenant>.<label>).")],
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Where to write cert and key.")],
    mnc_length: Annotated[int, typer.Option("--mnc-length")] = 2,
    key_type: Annotated[str, typer.Option("--key-type", help="p256 or ed25519.")] = "p256",
    naf_fqdn: Annotated[str, typer.Option("--naf-fqdn", help="NAF FQDN (NAF_Id).")] = "",
    did: Annotated[str | None, typer.Option("--did", help="Device DID for the SAN.")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Bootstrap one device and enrol a certificate; prints the B-TID and the serial."""
    if key_type not in ("p256", "ed25519"):
        raise InvalidInput("--key-type is p256 or ed25519")
    if not trust.is_file():
        raise InvalidInput(f"{trust} is not a readable file")
    sim_iccid, sim_imsi = Iccid(iccid), Imsi(imsi, mnc_length)
    applet = SimApplet(sim_iccid.value,
                       Usim(Milenage(parse_hex("K", k, 16), parse_hex("OPc", opc, 16))),
                       impi=impi_from_imsi(sim_imsi.value, mnc_length),
                       supi=f"imsi-{sim_imsi.value}")
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    with DeviceClient(applet, base_url=url, trust_pem=trust.read_bytes(),
                      naf_id=NafId(naf_fqdn or host),
                      clock=lambda: datetime.now(UTC)) as client:
        info = client.bootstrap()
        cert = client.enroll(label, "tls", key_type=key_type, did=did)
        chain = client.cacerts(label)
    out_dir.mkdir(parents=True, exist_ok=True)
    cert_file = out_dir / "device.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (out_dir / "ca.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM)
                                              for c in chain))
    result = {"b_tid": info.b_tid, "key_lifetime": info.expires_at.isoformat(),
              "serial": format(cert.serial_number, "x"),
              "subject": cert.subject.rfc4514_string(),
              "not_after": cert.not_valid_after_utc.isoformat(), "certificate": str(cert_file)}
    if key_type == "p256":
        key_file = out_dir / "device.key"
        key_file.touch(mode=0o600)
        key_file.write_bytes(applet.tls_key_pem("tls"))
        result["key"] = str(key_file)
    if json_out:
        emit_json(result)
    else:
        console.print(f"bootstrapped {iccid}: B-TID {info.b_tid}; certificate "
                      f"{result['serial']} until {result['not_after']} in {cert_file}")
