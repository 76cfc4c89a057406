"""No secret reaches ``str()`` or ``repr()``: every pydantic model and dataclass in
simtrust with a field whose name says it holds a secret (K, OP/OPc, TOP/TOPc,
passwords, shared secrets, API key secrets, private keys) is found by walking
the package, built with a marker value in each field, and printed both ways.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
from typing import Any

import pytest
from pydantic import BaseModel

import simtrust

SECRET_NAME = re.compile(
    r"^(k|ki|op|opc|top|topc|secret|secrets|password|passphrase|token|private_key"
    r"|.*_private_key|.*_secret|master_key|api_key|seed|signing_key|private_bytes"
    r"|k_[a-z0-9_]+|ck|ik|ck_prime|ik_prime|mk|msk|emsk|kc|key_pem|.*_key_pem)$"
)
#: Fields whose names match but hold nothing secret, with the reason.
NOT_SECRET = {
    "simtrust.testing.ledger._sim_model.SimConfig.seed": "the simulation's random seed",
    "simtrust.identity._jws.DecodedJws.token": "a signed token meant to be shown",
    # RFC 7252 §5.3.1: the CoAP token matches responses to requests and travels in
    # the clear in every message; it authenticates nothing.
    "simtrust.devices._coap.Message.token": "a CoAP request/response matching value",
    "simtrust.devices._client._Observation.token": "a CoAP request/response matching value",
}
MARKER = "5ec7e75ec7e75ec7e75ec7e75ec7e7aa"


def _models() -> list[tuple[type[Any], list[str]]]:
    found: dict[type[Any], list[str]] = {}
    for info in pkgutil.walk_packages(simtrust.__path__, "simtrust."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if not inspect.isclass(obj) or not obj.__module__.startswith("simtrust."):
                continue
            if issubclass(obj, BaseModel):
                names = list(obj.model_fields)
            elif dataclasses.is_dataclass(obj):
                names = [f.name for f in dataclasses.fields(obj)]
            else:
                continue
            secret = [n for n in names if SECRET_NAME.match(n)
                      and f"{obj.__module__}.{obj.__qualname__}.{n}" not in NOT_SECRET]
            if secret:
                found[obj] = secret
    return sorted(found.items(), key=lambda item: f"{item[0].__module__}.{item[0].__qualname__}")


def _build(cls: type[Any], secret: list[str]) -> Any:
    """MARKER in each secret field, a harmless value elsewhere (no validation: only
    printing is tested)."""
    def value(name: str) -> str:
        return MARKER if name in secret else "shown"

    if issubclass(cls, BaseModel):
        return cls.model_construct(**{name: value(name) for name in cls.model_fields})
    obj = object.__new__(cls)
    for f in dataclasses.fields(cls):
        object.__setattr__(obj, f.name, value(f.name))
    return obj


MODELS = _models()


def test_the_walk_finds_the_known_secret_carriers() -> None:
    names = {cls.__qualname__ for cls, _ in MODELS}
    assert {"SimIn", "SimSecrets", "NewApiKey"} <= names


@pytest.mark.parametrize(("cls", "fields"), MODELS,
                         ids=[f"{c.__module__}.{c.__qualname__}" for c, _ in MODELS])
def test_str_and_repr_never_show_a_secret(cls: type[Any], fields: list[str]) -> None:
    obj = _build(cls, fields)
    for shown in (str(obj), repr(obj), f"{obj}", f"{obj!r}"):
        assert MARKER not in shown, f"{cls.__qualname__} shows {fields}: {shown}"
