"""``simtrust auc``: MILENAGE/TUAK conformance outputs, vectors, SUCI and diagnosis.

The ``milenage`` and ``tuak`` commands are a contract that scripts and
conformance checks rely on: with ``--json`` they print one JSON object of
lower-case hex strings; bad hex, wrong lengths, or both/neither of OP and OPc
give one line on stderr and exit code 2 (handled here, not by the main wrapper).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer

from simtrust.errors import SimtrustError
from simtrust.subscriber.auc import (
    HomeNetworkKey,
    Milenage,
    Tuak,
    compute_opc,
    compute_topc,
    deconceal,
    eap_aka_prime_vector,
    eps_vector,
    he_av_5g,
    parse_hex,
    parse_suci,
    plmn_id,
    se_av_5g,
    serving_network_name,
)
from simtrust.subscriber.auc import diagnose as run_diagnosis

__all__ = ["NAME", "app"]

NAME = "auc"

app = typer.Typer(
    name=NAME,
    help="AuC: MILENAGE and TUAK outputs, authentication vectors, SUCI, failure diagnosis.",
    no_args_is_help=True,
)

T = TypeVar("T")


def _fail(message: str) -> NoReturn:
    typer.echo(f"simtrust auc: error: {message}", err=True)
    raise typer.Exit(2)


def _guard(fn: Callable[[], T]) -> T:
    """Run ``fn``; any simtrust error becomes one stderr line and exit code 2."""
    try:
        return fn()
    except SimtrustError as exc:
        _fail(exc.detail)


def _hex(name: str, value: str | None, *sizes: int) -> bytes:
    if value is None:
        _fail(f"--{name.lower()} is required")
    return _guard(lambda: parse_hex(name, value, *sizes))


def _one_of(a_name: str, a: str | None, b_name: str, b: str | None) -> None:
    if (a is None) == (b is None):
        _fail(f"give exactly one of --{a_name} and --{b_name}")


def _print(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(data, sort_keys=False))
        return
    width = max(len(k) for k in data)
    for key, value in data.items():
        typer.echo(f"{key.ljust(width)}  {value}")


_K_OPT = typer.Option(None, "--k", help="subscriber key K (hex)")
_RAND_OPT = typer.Option(None, "--rand", help="RAND, 128 bits (hex)")
_SQN_OPT = typer.Option(None, "--sqn", help="SQN, 48 bits (hex)")
_AMF_OPT = typer.Option(None, "--amf", help="AMF, 16 bits (hex)")
_JSON_OPT = typer.Option(False, "--json", help="one JSON object on stdout")


@app.command()
def milenage(
    k: str | None = _K_OPT,
    op: str | None = typer.Option(None, "--op", help="operator variant OP (hex)"),
    opc: str | None = typer.Option(None, "--opc", help="OPc = E_K(OP) ⊕ OP (hex)"),
    rand: str | None = _RAND_OPT,
    sqn: str | None = _SQN_OPT,
    amf: str | None = _AMF_OPT,
    as_json: bool = _JSON_OPT,
) -> None:
    """f1, f1*, f2, f3, f4, f5, f5* of MILENAGE (TS 35.206), as in TS 35.208."""
    _one_of("op", op, "opc", opc)
    key = _hex("K", k, 16)
    if op is not None:
        opc_b = _guard(lambda: compute_opc(key, _hex("OP", op, 16)))
    else:
        opc_b = _hex("OPc", opc, 16)
    r, s, a = _hex("RAND", rand, 16), _hex("SQN", sqn, 6), _hex("AMF", amf, 2)
    out = _guard(lambda: Milenage(key, opc_b).compute(r, s, a))
    data = {"opc": opc_b.hex(), **{f: getattr(out, f).hex() for f in out._fields}}
    _print(data, as_json)


def _bits(name: str, value: int, allowed: tuple[int, ...]) -> int:
    if value not in allowed:
        _fail(f"--{name} must be one of {', '.join(map(str, allowed))}")
    return value


@app.command()
def tuak(
    k: str | None = typer.Option(None, "--k", help="subscriber key K, 128 or 256 bits (hex)"),
    top: str | None = typer.Option(None, "--top", help="operator variant TOP, 256 bits (hex)"),
    topc: str | None = typer.Option(None, "--topc", help="TOPc, 256 bits (hex)"),
    rand: str | None = _RAND_OPT,
    sqn: str | None = _SQN_OPT,
    amf: str | None = _AMF_OPT,
    keccak_iterations: int = typer.Option(1, "--keccak-iterations", help="1..255"),
    mac_bits: int = typer.Option(64, "--mac-bits", help="64, 128 or 256"),
    res_bits: int = typer.Option(64, "--res-bits", help="32, 64, 128 or 256"),
    ck_bits: int = typer.Option(128, "--ck-bits", help="128 or 256"),
    ik_bits: int = typer.Option(128, "--ik-bits", help="128 or 256"),
    as_json: bool = _JSON_OPT,
) -> None:
    """f1, f1*, f2, f3, f4, f5, f5* of TUAK (TS 35.231), as in TS 35.233."""
    _one_of("top", top, "topc", topc)
    key = _hex("K", k, 16, 32)
    params = {
        "mac_bits": _bits("mac-bits", mac_bits, (64, 128, 256)),
        "res_bits": _bits("res-bits", res_bits, (32, 64, 128, 256)),
        "ck_bits": _bits("ck-bits", ck_bits, (128, 256)),
        "ik_bits": _bits("ik-bits", ik_bits, (128, 256)),
    }
    if not 1 <= keccak_iterations <= 255:
        _fail("--keccak-iterations must be 1..255")
    if top is not None:
        topc_b = _guard(lambda: compute_topc(key, _hex("TOP", top, 32), keccak_iterations))
    else:
        topc_b = _hex("TOPc", topc, 32)
    r, s, a = _hex("RAND", rand, 16), _hex("SQN", sqn, 6), _hex("AMF", amf, 2)
    alg = _guard(lambda: Tuak(key, topc_b, keccak_iterations=keccak_iterations, **params))
    out = _guard(lambda: alg.compute(r, s, a))
    data = {"topc": topc_b.hex(), **{f: getattr(out, f).hex() for f in out._fields}}
    _print(data, as_json)


_PLMN = re.compile(r"^([0-9]{3})-?([0-9]{2,3})$")
_SN_NAME = re.compile(r"^5G:mnc([0-9]{3})\.mcc([0-9]{3})\.3gppnetwork\.org$")


def _plmn(text: str) -> tuple[str, str]:
    m = _PLMN.match(text)
    if m is None:
        _fail("--serving-network must be MCC-MNC (e.g. 208-93) for EPS")
    return m.group(1), m.group(2)


def _milenage(k: str | None, op: str | None, opc: str | None) -> Milenage:
    _one_of("op", op, "opc", opc)
    key = _hex("K", k, 16)
    if op is not None:
        return _guard(lambda: Milenage.from_op(key, _hex("OP", op, 16)))
    return _guard(lambda: Milenage(key, _hex("OPc", opc, 16)))


@app.command()
def vector(
    k: str | None = _K_OPT,
    op: str | None = typer.Option(None, "--op", help="OP (hex)"),
    opc: str | None = typer.Option(None, "--opc", help="OPc (hex)"),
    sqn: str | None = _SQN_OPT,
    amf: str = typer.Option("8000", "--amf", help="AMF (hex); the separation bit is set"),
    rand: str | None = typer.Option(None, "--rand", help="RAND (hex); random if omitted"),
    fiveg: bool = typer.Option(False, "--5g", help="5G-AKA HE AV and SE AV"),
    eap_aka_prime: bool = typer.Option(False, "--eap-aka-prime", help="EAP-AKA' vector"),
    serving_network: str = typer.Option(
        "001-01",
        "--serving-network",
        help="MCC-MNC, or for --5g/--eap-aka-prime a full serving network name",
    ),
    as_json: bool = _JSON_OPT,
) -> None:
    """Generate one MILENAGE authentication vector (EPS-AKA by default)."""

    alg = _milenage(k, op, opc)
    s = _hex("SQN", sqn, 6)
    a = _hex("AMF", amf, 2)
    r = _hex("RAND", rand, 16) if rand is not None else os.urandom(16)
    data: dict[str, Any]
    if fiveg or eap_aka_prime:
        if fiveg and eap_aka_prime:
            _fail("give at most one of --5g and --eap-aka-prime")
        name = serving_network
        if _SN_NAME.match(name) is None:
            mcc, mnc = _plmn(name)
            name = serving_network_name(mcc, mnc)
        if eap_aka_prime:
            ev = _guard(lambda: eap_aka_prime_vector(alg, s, a, name, r))
            data = {"kind": "eap-aka-prime", "access_network": name, "rand": ev.rand.hex()}
            data |= {"autn": ev.autn.hex(), "xres": ev.xres.hex()}
            data |= {"ck_prime": ev.ck_prime.hex(), "ik_prime": ev.ik_prime.hex()}
        else:
            he = _guard(lambda: he_av_5g(alg, s, a, name, r))
            se = se_av_5g(he, name)
            data = {"kind": "5g", "serving_network_name": name, "rand": he.rand.hex()}
            data |= {"autn": he.autn.hex(), "xres_star": he.xres_star.hex()}
            data |= {"kausf": he.kausf.hex(), "hxres_star": se.hxres_star.hex()}
            data |= {"kseaf": se.kseaf.hex()}
    else:
        mcc, mnc = _plmn(serving_network)
        sn = _guard(lambda: plmn_id(mcc, mnc))
        v = _guard(lambda: eps_vector(alg, s, a, sn, r))
        data = {"kind": "eps", "serving_network_id": sn.hex(), "rand": v.rand.hex()}
        data |= {"xres": v.xres.hex(), "autn": v.autn.hex(), "kasme": v.kasme.hex()}
    _print(data, as_json)


@app.command()
def diagnose(
    k: str | None = _K_OPT,
    op: str | None = typer.Option(None, "--op", help="OP as provisioned (hex)"),
    opc: str | None = typer.Option(None, "--opc", help="OPc as provisioned (hex)"),
    rand: str | None = _RAND_OPT,
    autn: str | None = typer.Option(None, "--autn", help="AUTN from the failed attach (hex)"),
    sqn_ms: str | None = typer.Option(
        None, "--sqn-ms", help="highest SQN the SIM accepted (hex), if known"
    ),
    amf: str | None = typer.Option(None, "--amf", help="AMF the profile should use (hex)"),
    no_separation_bit: bool = typer.Option(
        False, "--no-separation-bit", help="do not require the EPS/5G AMF separation bit"
    ),
    as_json: bool = _JSON_OPT,
) -> None:
    """Explain a MAC or synch failure from K, OP/OPc, RAND and AUTN."""
    _one_of("op", op, "opc", opc)
    key = _hex("K", k, 16)
    value = _hex("OP" if op is not None else "OPc", op if op is not None else opc, 16)
    r, a = _hex("RAND", rand, 16), _hex("AUTN", autn, 16)
    ms = _hex("SQN_MS", sqn_ms, 6) if sqn_ms is not None else None
    expected = _hex("AMF", amf, 2) if amf is not None else None
    result = _guard(
        lambda: run_diagnosis(
            key,
            r,
            a,
            op=value if op is not None else None,
            opc=value if opc is not None else None,
            sqn_ms=ms,
            expected_amf=expected,
            require_separation_bit=not no_separation_bit,
        )
    )
    if as_json:
        typer.echo(json.dumps(result.to_json()))
        return
    typer.echo(f"verdict: {result.verdict}")
    typer.echo(result.explanation)
    if result.sqn:
        typer.echo(f"SQN in AUTN: {result.sqn} (AMF {result.amf})")
    for h in result.tried:
        typer.echo(f"  {'✓' if h.mac_verifies else '✗'} {h.name}")


@app.command()
def suci(
    value: str = typer.Argument(..., help="suci-0-<mcc>-<mnc>-<ri>-<scheme>-<key id>-<output>"),
    private_key: str | None = typer.Option(
        None, "--private-key", help="home network private key for the SUCI's scheme (hex)"
    ),
    as_json: bool = _JSON_OPT,
) -> None:
    """De-conceal a SUCI into its SUPI (TS 33.501 Annex C)."""
    parsed = _guard(lambda: parse_suci(value))
    keys: dict[int, HomeNetworkKey] = {}
    if parsed.scheme != 0:
        raw = _hex("private key", private_key, 32)
        keys[parsed.key_id] = _guard(
            lambda: HomeNetworkKey.from_private_bytes(parsed.scheme, parsed.key_id, raw)
        )
    supi = _guard(lambda: deconceal(parsed, keys))
    _print({"supi": supi, "scheme": parsed.scheme, "key_id": parsed.key_id}, as_json)
