"""An NRF for the tests, built from the official Nnrf OpenAPI files (TS 29.510).

Nnrf_NFManagement: NFRegister/NFUpdate (PUT), heartbeat (PATCH with a JSON
Patch), NFDeregister (DELETE) on ``/nnrf-nfm/v1/nf-instances/{nfInstanceID}``;
Nnrf_AccessToken: ``POST /oauth2/token`` (client credentials, form encoded)
answering an AccessTokenRsp whose ``access_token`` is an ES256 JWS of
AccessTokenClaims. Every request body and every answer is validated against
the schemas of the official files (loaded on demand with their references);
a request that does not validate is answered 400 and recorded in ``invalid``.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey
from jsonschema import Draft7Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BASE = "https://3gpp.invalid/"
NFM = "TS29510_Nnrf_NFManagement.yaml"
TOKEN = "TS29510_Nnrf_AccessToken.yaml"
COMMON = "TS29571_CommonData.yaml"


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=64)
def _document(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)


def spec_registry(spec_dir: Path) -> Registry:
    """A registry that loads (once) each official file a schema refers to."""

    def retrieve(uri: str) -> Resource:
        doc = _document(spec_dir / uri.removeprefix(BASE))
        return Resource.from_contents(doc, default_specification=DRAFT7)

    return Registry(retrieve=retrieve)  # type: ignore[call-arg]


class SpecNrf:
    """State and ASGI app of the test NRF."""

    def __init__(self, spec_dir: Path, nrf_id: str, key: ec.EllipticCurvePrivateKey, *,
                 heartbeat_s: int = 1, fail_first: int = 0) -> None:
        self.registry = spec_registry(spec_dir)
        self.nrf_id = nrf_id
        self.private = key
        self.key = ECKey.import_key(key)
        self.heartbeat_s = heartbeat_s
        self.fail_next = fail_first
        self.profiles: dict[str, dict[str, Any]] = {}
        self.log: list[tuple[str, str]] = []
        self.invalid: list[str] = []

    def errors(self, document: str, schema: str, instance: Any) -> list[str]:
        validator = Draft7Validator({"$ref": f"{BASE}{document}#/components/schemas/{schema}"},
                                    registry=self.registry, format_checker=FormatChecker())
        return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(instance)]

    def _bad(self, what: str, problems: list[str]) -> Response:
        self.invalid.append(f"{what}: {problems}")
        return JSONResponse({"title": "invalid", "status": 400, "cause": "INVALID_MSG_FORMAT",
                             "detail": "; ".join(problems)[:500]}, status_code=400,
                            media_type="application/problem+json")

    async def nf_instance(self, request: Request) -> Response:
        nf_id = request.path_params["nfInstanceID"]
        raw = await request.body()  # read the whole request before answering
        self.log.append((request.method, nf_id))
        if self.fail_next > 0:
            self.fail_next -= 1
            return JSONResponse({"title": "unavailable", "status": 503}, status_code=503,
                                media_type="application/problem+json")
        if request.method == "PUT":
            profile = json.loads(raw)
            problems = self.errors(NFM, "NFProfile", profile)
            if problems or profile.get("nfInstanceId") != nf_id:
                return self._bad("NFProfile", problems or ["nfInstanceId differs from the URI"])
            existed = nf_id in self.profiles
            stored = {**profile, "heartBeatTimer": self.heartbeat_s}
            self.profiles[nf_id] = stored
            return JSONResponse(stored, status_code=200 if existed else 201,
                                headers={} if existed else {
                                    "Location": f"{request.url}"})
        if request.method == "PATCH":
            patch = json.loads(raw)
            ctype = request.headers.get("content-type", "")
            items = patch if isinstance(patch, list) else [patch]
            problems = [p for item in items for p in self.errors(COMMON, "PatchItem", item)]
            if problems or ctype != "application/json-patch+json":
                return self._bad("PatchItem", problems or [f"content-type {ctype}"])
            if nf_id not in self.profiles:
                return JSONResponse({"title": "not found", "status": 404}, status_code=404,
                                    media_type="application/problem+json")
            return Response(status_code=204)
        if self.profiles.pop(nf_id, None) is None:
            return JSONResponse({"title": "not found", "status": 404}, status_code=404,
                                media_type="application/problem+json")
        return Response(status_code=204)

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        problems = self.errors(TOKEN, "AccessTokenReq", form)
        if problems:
            return self._bad("AccessTokenReq", problems)
        now = int(time.time())
        claims = {"iss": self.nrf_id, "sub": form["nfInstanceId"],
                  "aud": form.get("targetNfType", "UDM"), "scope": form["scope"],
                  "exp": now + 300, "iat": now}
        assert [] == self.errors(TOKEN, "AccessTokenClaims", claims)
        answer = {"access_token": jwt.encode({"alg": "ES256"}, claims, self.key),
                  "token_type": "Bearer", "expires_in": 300, "scope": form["scope"]}
        assert [] == self.errors(TOKEN, "AccessTokenRsp", answer)
        return JSONResponse(answer)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/nnrf-nfm/v1/nf-instances/{nfInstanceID}", self.nf_instance,
                  methods=["PUT", "PATCH", "DELETE"]),
            Route("/oauth2/token", self.token, methods=["POST"]),
        ])
