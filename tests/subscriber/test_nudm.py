"""Nudm_UEAuthentication generate-auth-data over HTTP, checked against the 3GPP OpenAPI."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from simtrust.runtime import Runtime
from simtrust.subscriber import (
    AttachPolicy,
    AuthMethod,
    Roaming,
    SimState,
)
from simtrust.subscriber.auc import Milenage, SyncFailure, Usim, UsimSqnArray, ck_ik_prime, kausf
from simtrust.subscriber.auc.suci import PROFILE_A, PROFILE_B, conceal_imsi

from .conftest import K1, OPC1, TENANT, imsi, spec

BASE = "https://3gpp.invalid/"
UEAU = "TS29503_Nudm_UEAU.yaml"
COMMON = "TS29571_CommonData.yaml"
SNN = "5G:mnc001.mcc001.3gppnetwork.org"
URL = "/nudm-ueau/v1/{}/security-information/generate-auth-data"


@pytest.fixture(scope="module")
def registry(shared_dir: Path) -> Registry:
    resources = []
    for name in (UEAU, COMMON):
        doc = yaml.safe_load((shared_dir / "specs" / "3gpp" / name).read_text(encoding="utf-8"))
        resources.append((BASE + name, Resource.from_contents(doc, default_specification=DRAFT7)))
    return Registry().with_resources(resources)


def check(registry: Registry, document: str, schema: str, instance: Any) -> None:
    """Validate ``instance`` against a named schema of the official OpenAPI files."""
    validator = Draft7Validator(
        {"$ref": f"{BASE}{document}#/components/schemas/{schema}"},
        registry=registry,
        format_checker=FormatChecker(),
    )
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    assert [] == [f"{list(e.path)}: {e.message}" for e in errors]


def request_body(**extra: Any) -> dict[str, Any]:
    return {"servingNetworkName": SNN, "ausfInstanceId": str(uuid.uuid4()), **extra}


@pytest.fixture
def udm(sqlite_runtime: Runtime) -> Any:
    sqlite_runtime.tenants.create_tenant(TENANT, "Acme")
    services = sqlite_runtime.subscriber
    services.inventory.add_sim(TENANT, spec(1), actor="test")
    services.inventory.add_sim(TENANT, spec(2, auth_method=AuthMethod.EAP_AKA_PRIME),
                               actor="test")
    return services


def test_schema_check_catches_a_bad_result(registry: Registry) -> None:
    with pytest.raises(AssertionError):
        check(registry, UEAU, "AuthenticationInfoResult",
              {"authType": "5G_AKA", "authenticationVector": {"avType": "5G_HE_AKA",
                                                              "rand": "zz"}})


def test_5g_aka_for_a_supi(api: Any, operator_headers: dict[str, str], udm: Any,
                           registry: Registry) -> None:
    body = request_body()
    check(registry, UEAU, "AuthenticationInfoRequest", body)
    response = api.post(URL.format(imsi(1).supi), json=body, headers=operator_headers)
    assert 200 == response.status_code, response.text
    result = response.json()
    check(registry, UEAU, "AuthenticationInfoResult", result)
    assert ("5G_AKA", imsi(1).supi) == (result["authType"], result["supi"])
    av = result["authenticationVector"]
    assert "5G_HE_AKA" == av["avType"]
    answer, _ = Usim(Milenage(K1, OPC1)).authenticate(bytes.fromhex(av["rand"]),
                                                      bytes.fromhex(av["autn"]))
    assert av["xresStar"] == answer.res_star(SNN, bytes.fromhex(av["rand"])).hex()
    assert av["kausf"] == kausf(answer.ck, answer.ik, SNN, bytes.fromhex(av["autn"])[:6]).hex()


@pytest.mark.parametrize("scheme", [PROFILE_A, PROFILE_B])
def test_suci_is_deconcealed(api: Any, operator_headers: dict[str, str], udm: Any,
                             registry: Registry, scheme: int) -> None:
    key = udm.hn_keys.generate(scheme, "A" if scheme == PROFILE_A else "B", actor="test")
    suci = conceal_imsi(imsi(1).value, 2, scheme=scheme, key_id=key.key_id,
                        hn_public_key=key.public_key)
    check(registry, COMMON, "SupiOrSuci", str(suci))
    response = api.post(URL.format(suci), json=request_body(), headers=operator_headers)
    assert 200 == response.status_code, response.text
    assert imsi(1).supi == response.json()["supi"]
    check(registry, UEAU, "AuthenticationInfoResult", response.json())


def test_eap_aka_prime(api: Any, operator_headers: dict[str, str], udm: Any,
                       registry: Registry) -> None:
    response = api.post(URL.format(imsi(2).supi), json=request_body(), headers=operator_headers)
    assert 200 == response.status_code, response.text
    result = response.json()
    check(registry, UEAU, "AuthenticationInfoResult", result)
    av = result["authenticationVector"]
    assert ("EAP_AKA_PRIME", "EAP_AKA_PRIME") == (result["authType"], av["avType"])
    answer, _ = Usim(Milenage(K1, OPC1)).authenticate(bytes.fromhex(av["rand"]),
                                                      bytes.fromhex(av["autn"]))
    ckp, ikp = ck_ik_prime(answer.ck, answer.ik, SNN, bytes.fromhex(av["autn"])[:6])
    assert (av["ckPrime"], av["ikPrime"], av["xres"]) == (ckp.hex(), ikp.hex(), answer.res.hex())


def test_resynchronization_info(api: Any, operator_headers: dict[str, str], udm: Any) -> None:
    card = Usim(Milenage(K1, OPC1), UsimSqnArray(tuple([900] + [0] * 31)))
    first = api.post(URL.format(imsi(1).supi), json=request_body(), headers=operator_headers)
    av = first.json()["authenticationVector"]
    with pytest.raises(SyncFailure) as info:
        card.authenticate(bytes.fromhex(av["rand"]), bytes.fromhex(av["autn"]))
    body = request_body(resynchronizationInfo={"rand": av["rand"],
                                               "auts": info.value.auts.hex().upper()})
    second = api.post(URL.format(imsi(1).supi), json=body, headers=operator_headers)
    assert 200 == second.status_code, second.text
    av2 = second.json()["authenticationVector"]
    answer, _ = card.authenticate(bytes.fromhex(av2["rand"]), bytes.fromhex(av2["autn"]))
    assert answer.sqn is not None
    forged = info.value.auts[:-1] + bytes([info.value.auts[-1] ^ 1])
    body = request_body(resynchronizationInfo={"rand": av["rand"], "auts": forged.hex()})
    refused = api.post(URL.format(imsi(1).supi), json=body, headers=operator_headers)
    assert (403, "AUTHENTICATION_REJECTED") == (refused.status_code, refused.json()["cause"])


def problem(api: Any, headers: dict[str, str], registry: Registry, path: str,
            body: Any = None, **kwargs: Any) -> tuple[int, str, dict[str, Any]]:
    if body is None and "content" not in kwargs:
        body = request_body()
    response = api.post(URL.format(path), json=body, headers=headers, **kwargs)
    assert response.headers["content-type"].startswith("application/problem+json")
    doc = response.json()
    check(registry, COMMON, "ProblemDetails", doc)
    assert response.status_code == doc["status"]
    return response.status_code, doc.get("cause", ""), doc


def test_errors_are_problem_details(api: Any, operator_headers: dict[str, str], udm: Any,
                                    registry: Registry, sqlite_runtime: Runtime) -> None:
    h = operator_headers
    assert (404, "USER_NOT_FOUND") == problem(api, h, registry, imsi(9).supi)[:2]
    status, cause, doc = problem(api, h, registry, imsi(1).supi,
                                 {"ausfInstanceId": str(uuid.uuid4())})
    assert (400, "MANDATORY_IE_MISSING") == (status, cause)
    assert [{"param": "/servingNetworkName"}] == [
        {"param": p["param"]} for p in doc["invalidParams"]]
    assert (400, "MANDATORY_IE_INCORRECT") == problem(
        api, h, registry, imsi(1).supi, request_body(ausfInstanceId="not-a-uuid"))[:2]
    assert (400, "INVALID_MSG_FORMAT") == problem(
        api, h, registry, imsi(1).supi, content=b"[1,2",
        )[:2]
    roaming = request_body(servingNetworkName="5G:mnc015.mcc234.3gppnetwork.org")
    assert (403, "SERVING_NETWORK_NOT_AUTHORIZED") == problem(
        api, h, registry, imsi(1).supi, roaming)[:2]
    udm.inventory.set_policy(AttachPolicy(TENANT, roaming=Roaming.parse(["234"])), actor="test")
    assert 200 == api.post(URL.format(imsi(1).supi), json=roaming, headers=h).status_code
    key = udm.hn_keys.generate(3, "A", actor="test")
    unknown_key = conceal_imsi(imsi(1).value, 2, scheme=PROFILE_A, key_id=4,
                               hn_public_key=key.public_key)
    assert (403, "INVALID_HN_PUBLIC_KEY_IDENTIFIER") == problem(
        api, h, registry, str(unknown_key))[:2]
    good = str(conceal_imsi(imsi(1).value, 2, scheme=PROFILE_A, key_id=3,
                            hn_public_key=key.public_key))
    tampered = good[:-2] + ("00" if not good.endswith("00") else "11")
    assert (403, "INVALID_SCHEME_OUTPUT") == problem(api, h, registry, tampered)[:2]
    assert (501, "UNSUPPORTED_PROTECTION_SCHEME") == problem(
        api, h, registry, "suci-0-001-01-0-3-1-00aabb")[:2]
    sim = udm.inventory.get_sim_by_imsi(imsi(1))
    udm.inventory.transition(sim.iccid, SimState.SUSPENDED, actor="test")
    assert (403, "AUTHENTICATION_REJECTED") == problem(api, h, registry, imsi(1).supi)[:2]
    viewer = sqlite_runtime.tenants.create_key("tenant-admin", "acme", tenant_id=TENANT)
    status, _cause, _doc = problem(api, {"Authorization": f"Bearer {viewer.secret}"}, registry,
                                   imsi(2).supi)
    assert 403 == status
