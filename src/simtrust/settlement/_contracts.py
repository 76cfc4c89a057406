"""Contracts as state chains on the ledger: deterministic transitions registered by code hash.

A contract is created by a ``contract`` payload naming its id, the hash of its
transition code and its initial state; each transition is a ``contract``
payload that consumes the current state (it names its hash, as a transaction
names the output it spends) and, once finalized, recreates it. Of two
transitions naming the same state the first in finalized order wins and the
other is recorded as rejected (``stale-state``), as the UTXO ledger's white
flag does. Inputs and states are RFC 8785 JSON without floats; transition
code gets the state, the input and the set of parties that signed, and
nothing else (no clock, no randomness), so every validator that applies the
same finalized order holds the same states. A transition that fails is
recorded with its reason and changes nothing.

Time comes from the finalized order, never from a clock: the engine's ledger
time is the latest issue time (the signed ``issued_at`` of the message, docs/
ledger.md "Message format") among the contract messages finalized so far, so it
only moves forward and is the same on every validator. Code that needs it
declares a fourth parameter and receives a :class:`TransitionContext` (order
and ledger time); each history entry records the ledger time as ``at``.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import rfc8785

from simtrust.errors import InvalidInput, NotFound, SimtrustError
from simtrust.identity import decode_multikey, did_key
from simtrust.ledger import FinalizedMessage, LedgerNode, verify_ed25519

__all__ = [
    "CONTRACT_CODES",
    "CONTRACT_PAYLOAD_TYPE",
    "ContractEngine",
    "ContractRejected",
    "Transition",
    "TransitionContext",
    "code_hash",
    "create_payload",
    "roaming_agreement_code",
    "slice_sla_code",
    "state_hash",
    "submit_contract",
    "transition_payload",
]

CONTRACT_PAYLOAD_TYPE = "contract"

@dataclass(frozen=True, slots=True)
class TransitionContext:
    """What a transition may know besides state, input and signers: where it was finalized.

    ``order`` is the message's position in the finalized order and ``time_ms`` the
    ledger time (milliseconds since the Unix epoch): the latest issue time among the
    contract messages finalized up to this one. Both are equal on every validator.
    """

    order: int
    time_ms: int


#: Transition code: (state, input, signers[, context]) → the new state; raise
#: ContractRejected to refuse. Code declaring a fourth parameter gets a TransitionContext.
Transition = Callable[..., dict[str, Any]]


class ContractRejected(SimtrustError):
    """A transition's code refused it; ``reason`` is recorded in the contract's history."""

    code = "contract-rejected"
    status = 422
    title = "Contract transition rejected"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def code_hash(code: Transition) -> str:
    """SHA-256 (hex) of the transition function's source: the name contracts cite."""
    return hashlib.sha256(inspect.getsource(code).encode()).hexdigest()


def _canonical(value: Any) -> bytes:
    def check(item: Any) -> None:
        if isinstance(item, float):
            raise InvalidInput("contract data must not hold floats (use integer minor units)")
        if isinstance(item, dict):
            for key, inner in item.items():
                if not isinstance(key, str):
                    raise InvalidInput("contract data keys must be strings")
                check(inner)
        elif isinstance(item, list):
            for inner in item:
                check(inner)

    check(value)
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        # e.g. an integer beyond ±(2**53 − 1): refused, never raised past the ledger handler
        raise InvalidInput(f"contract data is not canonical JSON ({exc})") from None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def state_hash(contract: str, code: str, seq: int, state: dict[str, Any]) -> str:
    """The hash a transition names to consume this state (sequence ``seq`` of the chain)."""
    body = {"contract": contract, "code": code, "seq": seq, "state": state}
    return hashlib.sha256(_canonical(body)).hexdigest()


def create_payload(contract: str, code: str, state: dict[str, Any]) -> bytes:
    """The payload creating ``contract`` with transition code ``code`` and its first state."""
    return _canonical({"op": "create", "contract": contract, "code": code, "state": state})


class _PartySigner(Protocol):
    """An Ed25519 key a party signs with (a ledger key or a secure element's)."""

    @property
    def public_key(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes: ...


def transition_payload(
    contract: str, prev: str, data: dict[str, Any], signers: Sequence[_PartySigner]
) -> bytes:
    """The payload of one transition consuming state ``prev``, signed by ``signers``."""
    message = _canonical({"contract": contract, "prev": prev, "input": data})
    signatures = [{"key": did_key(s.public_key), "signature": _b64(s.sign(message))}
                  for s in signers]
    return _canonical({"op": "transition", "contract": contract, "prev": prev, "input": data,
                       "signatures": signatures})


@dataclass
class _Contract:
    code: str
    seq: int
    state: dict[str, Any]
    hash: str
    history: list[dict[str, Any]] = field(default_factory=list)


class ContractEngine:
    """Applies finalized ``contract`` payloads in order; the same order gives the same states."""

    def __init__(self, codes: list[Transition]) -> None:
        self._codes = {code_hash(code): code for code in codes}
        self._wants_context = {
            digest for digest, code in self._codes.items()
            if len(inspect.signature(code).parameters) >= 4
        }
        self._time_ms = 0
        self._contracts: dict[str, _Contract] = {}
        self._outcomes: dict[str, dict[str, Any]] = {}
        self.rejected: list[dict[str, Any]] = []
        self._applied = 0
        self._lock = threading.Lock()

    def attach(self, node: LedgerNode) -> None:
        """Apply every finalized contract payload of ``node`` from the start, then new ones."""
        node.register_handler(CONTRACT_PAYLOAD_TYPE, self, replay_from=self._applied + 1)

    # -- the ledger handler

    def apply(self, message: FinalizedMessage) -> None:
        with self._lock:
            if message.order <= self._applied:
                return
            self._applied = message.order
            self._time_ms = max(self._time_ms, int(message.issued_at_ms))
            record = {"order": message.order, "message_id": message.message_id.hex(),
                      "at": _iso_ms(self._time_ms)}
            try:
                self._apply(bytes(message.payload), record)
            except (ContractRejected, InvalidInput) as exc:
                reason = exc.reason if isinstance(exc, ContractRejected) else exc.detail
                entry = {**record, "status": "rejected", "reason": reason}
                self.rejected.append(entry)
                target = self._contracts.get(str(record.get("contract")))
                if target is not None:
                    target.history.append(entry)
                self._outcomes[str(record["message_id"])] = entry
                return
            contract = self._contracts[str(record["contract"])]
            self._outcomes[str(record["message_id"])] = contract.history[-1]

    def _apply(self, payload: bytes, record: dict[str, Any]) -> None:
        try:
            body = json.loads(payload)
        except ValueError:
            raise ContractRejected("malformed") from None
        if not isinstance(body, dict) or not isinstance(body.get("contract"), str):
            raise ContractRejected("malformed")
        name = body["contract"]
        record["contract"] = name
        if body.get("op") == "create":
            self._create(name, body, record)
        elif body.get("op") == "transition":
            self._transition(name, body, record)
        else:
            raise ContractRejected("unknown-op")

    def _create(self, name: str, body: dict[str, Any], record: dict[str, Any]) -> None:
        if name in self._contracts:
            raise ContractRejected("exists")
        code, state = body.get("code"), body.get("state")
        if code not in self._codes:
            raise ContractRejected("unknown-code")
        if not isinstance(state, dict):
            raise ContractRejected("malformed")
        _canonical(state)
        digest = state_hash(name, str(code), 0, state)
        contract = _Contract(str(code), 0, state, digest)
        contract.history.append({**record, "status": "applied", "op": "create",
                                 "state_hash": digest})
        self._contracts[name] = contract

    def _transition(self, name: str, body: dict[str, Any], record: dict[str, Any]) -> None:
        contract = self._contracts.get(name)
        if contract is None:
            raise ContractRejected("unknown-contract")
        if body.get("prev") != contract.hash:
            raise ContractRejected("stale-state")
        data = body.get("input")
        if not isinstance(data, dict):
            raise ContractRejected("malformed")
        message = _canonical({"contract": name, "prev": contract.hash, "input": data})
        signers = set()
        for entry in body.get("signatures", []):
            key = entry.get("key") if isinstance(entry, dict) else None
            if not isinstance(key, str) or not key.startswith("did:key:"):
                raise ContractRejected("signature")
            try:
                _, public = decode_multikey(key.removeprefix("did:key:"))
                text = str(entry.get("signature", ""))
                signature = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
                verify_ed25519(public, signature, message)
            except (SimtrustError, ValueError):
                raise ContractRejected("signature") from None
            signers.add(key)
        code = self._codes[contract.code]
        if contract.code in self._wants_context:
            context = TransitionContext(int(record["order"]), self._time_ms)
            new_state = code(_copy(contract.state), _copy(data), frozenset(signers), context)
        else:
            new_state = code(_copy(contract.state), _copy(data), frozenset(signers))
        if not isinstance(new_state, dict):
            raise ContractRejected("code-returned-no-state")
        _canonical(new_state)
        seq = contract.seq + 1
        digest = state_hash(name, contract.code, seq, new_state)
        contract.seq, contract.state, contract.hash = seq, new_state, digest
        contract.history.append({**record, "status": "applied", "op": "transition",
                                 "state_hash": digest})

    # -- queries

    def state(self, name: str) -> dict[str, Any]:
        """``{contract, code, seq, state, state_hash}`` of a contract."""
        with self._lock:
            contract = self._contracts.get(name)
            if contract is None:
                raise NotFound(f"no contract {name!r}")
            return {"contract": name, "code": contract.code, "seq": contract.seq,
                    "state": _copy(contract.state), "state_hash": contract.hash}

    def history(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            contract = self._contracts.get(name)
            if contract is None:
                raise NotFound(f"no contract {name!r}")
            return [dict(entry) for entry in contract.history]

    def outcome(self, message_id: str) -> dict[str, Any] | None:
        """What became of the contract message ``message_id`` (hex), once finalized."""
        with self._lock:
            entry = self._outcomes.get(message_id)
            return None if entry is None else dict(entry)

    def contracts(self) -> list[dict[str, Any]]:
        """Every contract: ``{contract, code, seq, state_hash, status}`` sorted by id."""
        with self._lock:
            return [
                {"contract": name, "code": c.code, "seq": c.seq, "state_hash": c.hash,
                 "status": c.state.get("status")}
                for name, c in sorted(self._contracts.items())
            ]

    def codes(self) -> dict[str, str]:
        """Code hash → function name of every transition code this engine runs."""
        return {digest: code.__name__ for digest, code in self._codes.items()}

    def time_ms(self) -> int:
        """The ledger time: the latest issue time among the finalized contract messages."""
        with self._lock:
            return self._time_ms

    def fingerprint(self) -> str:
        """One hash over every contract's state hash: equal on validators that agree."""
        with self._lock:
            body = {name: c.hash for name, c in sorted(self._contracts.items())}
        return hashlib.sha256(_canonical(body)).hexdigest()


def _iso_ms(millis: int) -> str:
    try:
        moment = datetime.fromtimestamp(millis // 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):  # beyond year 9999: the ledger bounds skew
        return str(millis)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def _copy(value: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(rfc8785.dumps(value))
    return copied


def roaming_agreement_code(
    state: dict[str, Any], data: dict[str, Any], signers: frozenset[str]
) -> dict[str, Any]:
    """A roaming agreement both parties sign on the ledger (issue 15 item 2).

    State: ``{agreement, parties: {home, visited} (did:key), signed: [...], status}``.
    Input ``{"action": "sign"}`` adds the signing parties; the agreement becomes
    ``active`` once both signed. ``{"action": "terminate"}`` needs both signatures.
    """
    parties = state.get("parties", {})
    members = {parties.get("home"), parties.get("visited")}
    action = data.get("action")
    if action == "sign":
        if state.get("status") != "proposed":
            raise ContractRejected("not-proposed")
        new = sorted(set(state.get("signed", [])) | (signers & members))
        if not signers & members:
            raise ContractRejected("not-a-party")
        status = "active" if set(new) == members else "proposed"
        return {**state, "signed": new, "status": status}
    if action == "terminate":
        if not members <= signers:
            raise ContractRejected("needs-both-parties")
        return {**state, "status": "terminated"}
    raise ContractRejected("unknown-action")


def slice_sla_code(
    state: dict[str, Any], data: dict[str, Any], signers: frozenset[str]
) -> dict[str, Any]:
    """A slice SLA contract between a provider and a consumer operator (issue 16 item 3).

    State: ``{sla: {...}, parties: {provider, consumer}, signed: [...], status}``,
    where ``sla`` is the contract document ``parse_sla_contract`` reads (TS 28.541
    ServiceProfile targets, fee, credit schedule). ``{"action": "sign"}`` adds the
    signing parties (``active`` once both signed); ``{"action": "terminate"}`` is
    either party's.
    """
    parties = state.get("parties", {})
    members = {parties.get("provider"), parties.get("consumer")}
    action = data.get("action")
    if not signers & members:
        raise ContractRejected("not-a-party")
    if action == "sign":
        if state.get("status") != "proposed":
            raise ContractRejected("not-proposed")
        new = sorted(set(state.get("signed", [])) | (signers & members))
        status = "active" if set(new) == members else "proposed"
        return {**state, "signed": new, "status": status}
    if action == "terminate":
        return {**state, "status": "terminated"}
    raise ContractRejected("unknown-action")


def submit_contract(
    node: LedgerNode, engine: ContractEngine, body: dict[str, Any]
) -> dict[str, Any]:
    """Issue the contract payload ``body`` on ``node``; its outcome once finalized.

    ``body`` is a create or transition payload as a JSON object (clients sign
    transitions themselves; the node key only carries the message). Returns
    ``{message_id, status: applied | rejected | pending, ...}``: a single node
    finalizes at once, a consortium validator may answer ``pending`` and the
    outcome appears in the contract's history once the committee commits.
    """
    if body.get("op") not in ("create", "transition") or not isinstance(
        body.get("contract"), str
    ):
        raise InvalidInput("a contract payload needs op (create or transition) and contract")
    result = node.issue(CONTRACT_PAYLOAD_TYPE, _canonical(body), signer=node.signer)
    result.raise_if_rejected()
    if result.message_id is None:
        raise InvalidInput("the contract message has no id")
    mid = result.message_id.hex()
    if node.status(result.message_id).get("state") != "finalized":
        return {"message_id": mid, "contract": body["contract"], "status": "pending"}
    outcome = engine.outcome(mid) or {"contract": body["contract"], "status": "pending"}
    return {**outcome, "message_id": mid}


#: The transition codes an operator's node runs, by the name clients use.
CONTRACT_CODES: dict[str, Transition] = {"roaming-agreement": roaming_agreement_code,
                                          "slice-sla": slice_sla_code}
