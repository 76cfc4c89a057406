"""Consortium membership over HTTP: the coordinator rotates the key, members read the outcome.

docs/fraud.md "Consortium membership and key rotation": the coordinator
(operator-admin of the operator whose DID the consortium file names as
``coordinator``) puts a signed rotation on the ledger that seals a fresh
epoch key to each member's keyAgreement key (HPKE, RFC 9180), adding or
removing members; every member's node applies it in ledger order. Errors
are RFC 9457 problem details; no route returns a key.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from simtrust.api.deps import CurrentPrincipal, CurrentRuntime
from simtrust.api.problems import problem_responses
from simtrust.api.routes.fraud import _outcome
from simtrust.errors import InvalidInput, NotFound
from simtrust.runtime import Runtime

__all__ = ["router"]

router = APIRouter(prefix="/v1/fraud/consortium", tags=["fraud"])

_ERRORS = problem_responses({
    400: "Invalid input (a DID without a keyAgreement key, a bad epoch)",
    401: "No or unknown API key",
    403: "Not an operator-admin key, or this operator is not the coordinator",
    404: "No such rotation message",
    409: "Sharing not configured, no coordinator, or the epoch was held",
    422: "Request does not validate, or this member refused the rotation",
})


class RotationIn(BaseModel):
    """The next epoch: this membership plus ``add`` minus ``remove``."""

    model_config = ConfigDict(extra="forbid")
    add: list[str] = Field(default_factory=list, max_length=64,
                           description="DIDs to admit (each lists an X25519 keyAgreement key).")
    remove: list[str] = Field(default_factory=list, max_length=64,
                              description="DIDs to remove: they get no key of the new epoch.")
    epoch: str | None = Field(None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$",
                              description="Name of the new epoch (default: date and sequence).")


def _state(rt: Runtime) -> dict[str, Any]:
    intel = rt.fraud_intel
    intel.catch_up(rt.ledger)
    return dict(intel.consortium())


@router.get("", responses=_ERRORS, summary="This member's consortium: coordinator, epochs,"
            " members (no key)")
def show(rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    return _state(rt)


@router.post("/rotations", responses=_ERRORS, status_code=status.HTTP_201_CREATED,
             summary="Coordinator: rotate the consortium key (add or remove members)")
def rotate(body: RotationIn, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    for did in (*body.add, *body.remove):
        if not did.startswith("did:") or len(did) > 200:
            raise InvalidInput("add and remove list DIDs", field="add")
    intel = rt.fraud_intel
    intel.catch_up(rt.ledger)
    message_id, epoch = intel.rotate(rt.ledger.issue_data, rt.identity.issuer(),
                                     now=rt.clock(), add=body.add, remove=body.remove,
                                     epoch=body.epoch)
    return {**_outcome(rt, message_id), "epoch": epoch, "consortium": _state(rt)}


@router.get("/rotations/{message_id}", responses=_ERRORS,
            summary="Whether this member applied a rotation message, or why it refused it")
def rotation_outcome(message_id: str, rt: CurrentRuntime,
                     who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    try:
        raw = bytes.fromhex(message_id)
    except ValueError:
        raise InvalidInput("a message id is hex", field="message_id") from None
    intel = rt.fraud_intel
    intel.catch_up(rt.ledger)
    found = intel.outcome(raw)
    if found is None:
        raise NotFound(f"this member has applied or refused no message {message_id}")
    refused = found[0] == "refused"
    return {"message_id": message_id, "outcome": found[0],
            "kind": None if refused else found[1], "reason": found[1] if refused else None}
