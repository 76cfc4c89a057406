"""Enterprise tunnels authenticated with certificates from the enterprise's PKI: the same
three network namespaces and two charons as ``test_tunnels_netns.py``; both ends hold a
certificate of the enterprise CA (with the end's IKE identity as DNS SAN) laid out in a
swanctl directory by ``install_tunnel_credentials`` and loaded with ``SWANCTL_DIR``.
IKEv2 comes up with certificate authentication on both sides (RFC 7296 §2.15); an
enterprise endpoint with the right identity but a certificate from another CA is
refused. RSA keys: Debian's strongSwan without its openssl plugin verifies RSA (gmp),
not ECDSA.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from simtrust.policy import (
    TunnelSpec,
    install_tunnel_credentials,
    parse_list_sas,
    render_swanctl,
)

from .test_tunnels_netns import NS, lab, sh  # noqa: F401 - lab is a fixture

PEM = serialization.Encoding.PEM


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _cert(subject: str, key: rsa.RSAPrivateKey, issuer: x509.Certificate | None,
          issuer_key: rsa.RSAPrivateKey, *, ca: bool = False) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(name if issuer is None else issuer.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _install(directory: Path, name: str, cert: x509.Certificate, key: rsa.RSAPrivateKey,
             ca: x509.Certificate) -> tuple[str, str]:
    return install_tunnel_credentials(
        directory, name, cert_pem=cert.public_bytes(PEM), ca_pem=ca.public_bytes(PEM),
        key_pem=key.private_bytes(PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


def swanctl(run: Path, side: str, directory: Path, *args: str) -> str:
    uri = f"unix://{run / side / 'charon.vici'}"
    done = sh("ip", "netns", "exec", NS[side], "env", f"SWANCTL_DIR={directory}", "swanctl",
              *args, "--uri", uri, check=False)
    return "\n".join(line for line in (done.stdout + done.stderr).splitlines()
                     if "plugin '" not in line)


def test_certificate_tunnel_comes_up_and_a_foreign_ca_is_refused(lab: Path) -> None:  # noqa: F811
    ca_key, gw_key, ent_key, rogue_ca_key, rogue_key = (_key() for _ in range(5))
    ca = _cert("Acme enterprise CA", ca_key, None, ca_key, ca=True)
    rogue_ca = _cert("Acme enterprise CA", rogue_ca_key, None, rogue_ca_key, ca=True)
    gw_dir, ent_dir, rogue_dir = lab / "swanctl-gw", lab / "swanctl-ent", lab / "swanctl-rogue"
    gw_cert, gw_ca = _install(gw_dir, "acme-iot",
                              _cert("gw.operator.example", gw_key, ca, ca_key), gw_key, ca)
    ent_cert, ent_ca = _install(ent_dir, "acme-iot",
                                _cert("vpn.acme.example", ent_key, ca, ca_key), ent_key, ca)
    rogue_cert, rogue_trust = _install(
        rogue_dir, "acme-iot", _cert("vpn.acme.example", rogue_key, rogue_ca, rogue_ca_key),
        rogue_key, ca)
    assert 0o600 == (gw_dir / "private" / "acme-iot.pem").stat().st_mode & 0o777

    spec = TunnelSpec("acme-iot", "acme", "iot.acme", "192.0.2.1", "192.0.2.2",
                      "gw.operator.example", "vpn.acme.example", ("10.45.0.0/24",),
                      ("172.16.0.0/24",), auth="pubkey", local_cert=gw_cert, remote_ca=gw_ca)
    gw_conf = render_swanctl([spec], start=False)
    assert f"certs = {gw_cert}" in gw_conf
    assert "secret =" not in gw_conf
    (gw_dir / "swanctl.conf").write_text(gw_conf)
    (ent_dir / "swanctl.conf").write_text(render_swanctl(
        [spec.mirrored(local_cert=ent_cert, remote_ca=ent_ca)], start=False))
    (rogue_dir / "swanctl.conf").write_text(render_swanctl(
        [spec.mirrored(local_cert=rogue_cert, remote_ca=rogue_trust)], start=False))

    loaded = swanctl(lab, "gw", gw_dir, "--load-all", "--file", str(gw_dir / "swanctl.conf"))
    assert "successfully loaded 1 connections" in loaded
    assert "loaded RSA key" in loaded or "loaded private key" in loaded.lower(), loaded
    # First an impostor: the enterprise's identity, a certificate from another CA.
    assert "successfully loaded 1 connections" in swanctl(
        lab, "ent", rogue_dir, "--load-all", "--clear", "--file",
        str(rogue_dir / "swanctl.conf"))
    out = swanctl(lab, "gw", gw_dir, "--initiate", "--ike", spec.name, "--timeout", "10")
    states = parse_list_sas(swanctl(lab, "gw", gw_dir, "--list-sas"))
    assert "ESTABLISHED" != states.get(spec.name, {}).get("ike"), out
    assert "no trusted RSA public key found for 'vpn.acme.example'" in out, out
    # The enterprise's real endpoint: IKEv2 with certificates on both sides.
    assert "successfully loaded 1 connections" in swanctl(
        lab, "ent", ent_dir, "--load-all", "--clear", "--file", str(ent_dir / "swanctl.conf"))
    out = swanctl(lab, "gw", gw_dir, "--initiate", "--ike", spec.name, "--timeout", "20")
    states = parse_list_sas(swanctl(lab, "gw", gw_dir, "--list-sas"))
    assert "ESTABLISHED" == states.get(spec.name, {}).get("ike"), out
    assert "authentication of 'vpn.acme.example' with RSA" in out, out
