"""AKMA end to end: 5G AKA in the SIM applet, the AUSF anchoring K_AKMA at the AAnF over
Naanf_AKMA on the HTTP/2 SBI (checked against the 3GPP OpenAPI), EST enrolment with the A-KID."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft7Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from simtrust.bootstrap import NafId, a_kid, a_tid, home_realm, k_af, k_akma, register_from_ausf
from simtrust.errors import AuthenticationFailure
from simtrust.sbi import SbiServer, create_sbi_app
from simtrust.subscriber.auc import kausf

from .conftest import LABEL, Env, iccid, imsi

BASE = "https://3gpp.invalid/"
DOCS = ("TS29535_Naanf_AKMA.yaml", "TS29522_AKMA.yaml", "TS29571_CommonData.yaml",
        "TS29122_CommonData.yaml")
SNN = "5G:mnc001.mcc001.3gppnetwork.org"


@pytest.fixture(scope="module")
def registry(shared_dir: Path) -> Registry:
    resources = []
    for name in DOCS:
        doc = yaml.safe_load((shared_dir / "specs" / "3gpp" / name).read_text(encoding="utf-8"))
        resources.append((BASE + name, Resource.from_contents(doc, default_specification=DRAFT7)))
    return Registry().with_resources(resources)


def check(registry: Registry, document: str, schema: str, instance: Any) -> None:
    validator = Draft7Validator({"$ref": f"{BASE}{document}#/components/schemas/{schema}"},
                                registry=registry, format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    assert [] == [f"{list(e.path)}: {e.message}" for e in errors]


def test_schema_check_catches_a_bad_answer(registry: Registry) -> None:
    with pytest.raises(AssertionError):
        check(registry, "TS29522_AKMA.yaml", "AkmaAfKeyData", {"kaf": "00"})


def test_akma_over_naanf_then_est_with_the_a_kid(env: Env, registry: Registry) -> None:
    applet = env.applet(2)
    av = env.subs.auth.he_av_5g(imsi(2), SNN)
    res_star = applet.aka_5g(av.rand, av.autn, SNN, routing_indicator="0",
                             realm=home_realm("001", "01"))
    supi = f"imsi-{imsi(2).value}"
    # The AUSF side: RES* checked, K_AKMA and A-KID derived, registered over the SBI.
    assert av.xres_star == res_star
    akid = a_kid(a_tid(av.kausf, supi), "0", home_realm("001", "01"))
    assert akid == applet.a_kid
    register = {"supi": supi, "aKId": akid, "kAkma": k_akma(av.kausf, supi).hex()}
    check(registry, "TS29535_Naanf_AKMA.yaml", "AkmaKeyInfo", register)
    server = SbiServer(create_sbi_app(env.subs.udm, None, aanf=env.boot.aanf), "127.0.0.1", 0,
                       lab_mode=True)
    _, port = server.start()
    headers: dict[str, str] = {}
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", http1=False, http2=True,
                       timeout=15)
    try:
        answer = api.post("/naanf-akma/v1/register-anchorkey", json=register, headers=headers)
        assert 200 == answer.status_code, answer.text
        check(registry, "TS29535_Naanf_AKMA.yaml", "AkmaKeyInfo", answer.json())
        request = {"afId": env.boot.server.naf_id.fqdn, "aKId": akid}
        check(registry, "TS29522_AKMA.yaml", "AkmaAfKeyRequest", request)
        got = api.post("/naanf-akma/v1/retrieve-applicationkey", json=request, headers=headers)
        assert 200 == got.status_code, got.text
        check(registry, "TS29522_AKMA.yaml", "AkmaAfKeyData", got.json())
        expected = k_af(k_akma(av.kausf, supi), NafId(env.boot.server.naf_id.fqdn))
        assert expected.hex() == got.json()["kaf"]
        missing = api.post("/naanf-akma/v1/retrieve-applicationkey",
                           json={"afId": "naf.example", "aKId": "0.x@realm"}, headers=headers)
        assert 404 == missing.status_code
        assert "application/problem+json" == missing.headers["content-type"]
        check(registry, "TS29571_CommonData.yaml", "ProblemDetails", missing.json())
        assert "HTTP/2" == got.http_version
        bad = api.post("/naanf-akma/v1/register-anchorkey", json={"supi": supi},
                       headers=headers)
        assert 400 == bad.status_code
        check(registry, "TS29571_CommonData.yaml", "ProblemDetails", bad.json())
        with env.client(applet) as client:
            cert = client.enroll(LABEL, "tls", kind="akma")
        assert iccid(2).value in cert.subject.rfc4514_string()
        gone = api.post("/naanf-akma/v1/remove-context", json={"supi": supi}, headers=headers)
        assert 204 == gone.status_code
        again = api.post("/naanf-akma/v1/remove-context", json={"supi": supi})
        assert 404 == again.status_code
        assert "CONTEXT_NOT_FOUND" == again.json()["cause"]
    finally:
        api.close()
        server.stop()


def test_ausf_refuses_a_wrong_res_star(env: Env) -> None:
    av = env.subs.auth.he_av_5g(imsi(1), SNN)
    with pytest.raises(AuthenticationFailure):
        register_from_ausf(env.boot.aanf, av, bytes(16), f"imsi-{imsi(1).value}",
                           routing_indicator="0", realm=home_realm("001", "01"))
    assert kausf  # the K_AUSF the AUSF would anchor comes from the same KDF module
