"""The AuC with persistence: authentication vectors for stored SIMs, SQN kept in the store.

Builds the SIM's algorithm set (MILENAGE with OP or OPc, TUAK with TOP or TOPc
and its sizes) from its unsealed secrets, issues fresh SQNs per TS 33.102
Annex C and stores the advanced SQN state with compare-and-swap on
``sqn_version`` in the transaction that audits the issue, so two AuCs on one
store never issue the same SQN. Re-synchronisation verifies AUTS (MAC-S),
resets SEQ_HE (TS 33.102 §6.3.5) and audits it; a forged AUTS is audited and
refused. The transaction is durable (fsync) before a vector or SQN_MS is
returned, so an answered request is in the audit trail after any crash; SQN
advances requested at the same time share one such transaction (group commit).
Vectors: EPS-AKA (TS 33.401 §6.1.2), 5G HE AV (TS 33.501 §6.1.3.2),
EAP-AKA' (TS 33.402 §6.2).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from simtrust.domain import Imsi, Plmn
from simtrust.errors import AuthenticationFailure, Conflict, NotFound, SimtrustError
from simtrust.subscriber._inventory import Inventory
from simtrust.subscriber._model import OpKind, Sim, SimState, TuakParams
from simtrust.subscriber._sqn import decode_sqn_state, encode_sqn_state
from simtrust.subscriber.auc.errors import MacFailure
from simtrust.subscriber.auc.kdf import plmn_id
from simtrust.subscriber.auc.milenage import Milenage
from simtrust.subscriber.auc.resync import resynchronise
from simtrust.subscriber.auc.sqn import AucSqnState
from simtrust.subscriber.auc.tuak import Tuak
from simtrust.subscriber.auc.vectors import (
    AkaFunctions,
    EapAkaPrimeVector,
    EpsVector,
    HeAv5g,
    RandSource,
    UmtsVector,
    eap_aka_prime_vector,
    eps_vectors,
    he_avs_5g,
    umts_vector,
)

__all__ = ["AuthService", "aka_functions"]

T = TypeVar("T")
_ATTEMPTS = 8


class _Slot(Generic[T]):
    """One SQN advance waiting for its group commit."""

    __slots__ = ("action", "actor", "details", "done", "error", "out", "produce", "sim")

    def __init__(self, sim: Sim, produce: Callable[[AucSqnState], tuple[list[T], AucSqnState]],
                 actor: str, action: str, details: dict[str, object]) -> None:
        self.sim, self.produce = sim, produce
        self.actor, self.action, self.details = actor, action, details
        self.out: list[T] | None = None
        self.error: SimtrustError | None = None
        self.done = False


class _GroupCommit:
    """Leader/follower batching: the first caller commits everything queued meanwhile;
    callers arriving during that commit form the next batch. A lone caller commits
    alone at once, so nothing waits for a timer."""

    __slots__ = ("_busy", "_cond", "_pending")

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: list[_Slot[Any]] = []
        self._busy = False

    def run(self, slot: _Slot[Any], commit: Callable[[list[_Slot[Any]]], None]) -> None:
        with self._cond:
            self._pending.append(slot)
            while not slot.done and self._busy:
                self._cond.wait()
            if slot.done:
                return
            self._busy = True
            batch, self._pending = self._pending, []
        try:
            commit(batch)
        finally:
            with self._cond:
                for queued in batch:
                    queued.done = True
                self._busy = False
                self._cond.notify_all()


def aka_functions(op_kind: OpKind, k: bytes, op: bytes, tuak: TuakParams | None) -> AkaFunctions:
    """The algorithm set of a SIM from its secrets (OP/TOP are combined with K here)."""
    if op_kind is OpKind.OPC:
        return Milenage(k, op)
    if op_kind is OpKind.OP:
        return Milenage.from_op(k, op)
    params = (tuak or TuakParams()).to_json()
    if op_kind is OpKind.TOPC:
        return Tuak(k, op, **params)
    return Tuak.from_top(k, op, **params)


def _backoff(attempt: int) -> None:
    """Jittered wait before retrying a compare-and-swap lost to another process."""
    time.sleep(random.uniform(0, 0.002 * (2**attempt)))


class AuthService:
    """Vectors and re-synchronisation for SIMs in an :class:`Inventory`."""

    __slots__ = ("_group", "_inv", "_rand")

    def __init__(self, inventory: Inventory, *, rand: RandSource = os.urandom) -> None:
        self._inv = inventory
        self._rand = rand
        self._group = _GroupCommit()

    def __repr__(self) -> str:
        return f"AuthService({self._inv!r})"

    def subscriber(self, imsi: Imsi) -> tuple[Sim, AkaFunctions]:
        """The SIM and its algorithm set; NotFound or AuthenticationFailure with a 3GPP cause."""
        sim = self._inv.find_sim(imsi)
        if sim is None:
            raise NotFound("no subscriber with this SUPI", cause="USER_NOT_FOUND")
        if sim.state not in (SimState.ACTIVE, SimState.TEST):
            raise AuthenticationFailure(
                f"subscriber's SIM is {sim.state}", cause="AUTHENTICATION_REJECTED",
                reason=f"sim-{sim.state}",
            )
        secrets = self._inv.open_secrets(sim.iccid)
        return sim, aka_functions(secrets.op_kind, secrets.k, secrets.op, sim.tuak)

    def _advance(
        self,
        sim: Sim,
        produce: Callable[[AucSqnState], tuple[list[T], AucSqnState]],
        *,
        actor: str,
        action: str,
        details: dict[str, object],
    ) -> list[T]:
        slot = _Slot(sim, produce, actor, action, details)
        self._group.run(slot, self._commit_batch)
        if slot.error is not None:
            raise slot.error
        if slot.out is not None:
            return slot.out
        # Lost the compare-and-swap to another process: retry alone, backing off.
        inv = self._inv
        for attempt in range(_ATTEMPTS):
            _backoff(attempt)
            with inv.db.transaction(durable=True):
                if self._apply(slot):
                    return slot.out  # type: ignore[return-value]
        raise Conflict("SQN state is contended; retry", iccid=sim.iccid.value)

    def _apply(self, slot: _Slot[Any]) -> bool:
        """Inside a transaction: read, produce and swap one SIM's SQN state, audited."""
        inv = self._inv
        sim = slot.sim
        text, version = inv.sqn_state(sim.iccid)
        out, after = slot.produce(decode_sqn_state(text))
        if not inv.swap_sqn_state(sim.iccid, encode_sqn_state(after), version):
            return False
        inv.audit.append(
            actor=slot.actor, action=slot.action, subject=f"sim:{sim.iccid}",
            outcome="success", tenant_id=sim.tenant_id,
            details={**slot.details, "count": len(out), "seq_he": after.seq},
        )
        slot.out = out
        return True

    def _commit_batch(self, batch: list[_Slot[Any]]) -> None:
        """One durable transaction for the SQN advances requested together (group
        commit): each is applied in turn, so two for one SIM see each other's state;
        none is returned before the commit."""
        try:
            with self._inv.db.transaction(durable=True):
                for slot in batch:
                    self._apply(slot)
        except SimtrustError as exc:
            for slot in batch:
                slot.out = None
                slot.error = exc

    def eps_vectors(
        self, imsi: Imsi, serving: Plmn, count: int = 1, *, actor: str = "auc"
    ) -> list[EpsVector]:
        """``count`` EPS-AKA vectors for the serving network (K_ASME bound to its PLMN id)."""
        sim, alg = self.subscriber(imsi)
        sn_id = plmn_id(serving.mcc, serving.mnc)
        return self._advance(
            sim,
            lambda state: eps_vectors(alg, state, count, sn_id, sim.amf, self._rand),
            actor=actor, action="auc.eps-vectors", details={"serving_plmn": str(serving)},
        )

    def he_av_5g(self, imsi: Imsi, sn_name: str, *, actor: str = "auc") -> HeAv5g:
        """One 5G HE AV (RAND, AUTN, XRES*, K_AUSF) for the serving network name."""
        sim, alg = self.subscriber(imsi)
        return self._advance(
            sim,
            lambda state: he_avs_5g(alg, state, 1, sn_name, sim.amf, self._rand),
            actor=actor, action="auc.5g-he-av", details={"serving_network_name": sn_name},
        )[0]

    def eap_aka_prime(
        self, imsi: Imsi, network_name: str, *, actor: str = "auc"
    ) -> EapAkaPrimeVector:
        """One EAP-AKA' vector (CK', IK' bound to ``network_name``)."""
        sim, alg = self.subscriber(imsi)

        def produce(state: AucSqnState) -> tuple[list[EapAkaPrimeVector], AucSqnState]:
            sqns, after = state.issue(1)
            vector = eap_aka_prime_vector(alg, sqns[0], sim.amf, network_name, self._rand(16))
            return [vector], after

        return self._advance(
            sim, produce, actor=actor, action="auc.eap-aka-prime",
            details={"network_name": network_name},
        )[0]

    def umts_vector(self, imsi: Imsi, *, actor: str = "auc") -> UmtsVector:
        """One UMTS AV (CK and IK in clear) for a BSF over Zh (TS 33.220 §4.5.2, TS 29.109)."""
        sim, alg = self.subscriber(imsi)

        def produce(state: AucSqnState) -> tuple[list[UmtsVector], AucSqnState]:
            sqns, after = state.issue(1)
            return [umts_vector(alg, sqns[0], sim.amf, self._rand(16))], after

        return self._advance(sim, produce, actor=actor, action="auc.umts-av", details={})[0]

    def resynchronise(
        self, imsi: Imsi, rand: bytes, auts: bytes, *, actor: str = "auc"
    ) -> bytes:
        """Verify AUTS for the RAND the USIM rejected and reset SEQ_HE; returns SQN_MS.

        A forged AUTS (MAC-S mismatch) is audited and raises
        :class:`AuthenticationFailure` with cause ``AUTHENTICATION_REJECTED``.
        """
        sim, alg = self.subscriber(imsi)
        inv = self._inv
        for attempt in range(_ATTEMPTS):
            forged: MacFailure | None = None
            with inv.db.transaction(durable=True):
                text, version = inv.sqn_state(sim.iccid)
                before = decode_sqn_state(text)
                try:
                    after, sqn_ms = resynchronise(alg, before, rand, auts)
                except MacFailure as exc:
                    forged = exc
                else:
                    if inv.swap_sqn_state(sim.iccid, encode_sqn_state(after), version):
                        inv.audit.append(
                            actor=actor, action="auc.resync", subject=f"sim:{sim.iccid}",
                            outcome="success",
                            reason="reset" if after != before else "already-fresh",
                            tenant_id=sim.tenant_id,
                            details={"sqn_ms": sqn_ms.hex(), "seq_he_before": before.seq,
                                     "seq_he_after": after.seq},
                        )
                        return sqn_ms
            if forged is not None:
                # Audited after the (empty) transaction, so the refusal is kept.
                inv.audit.append(
                    actor=actor, action="auc.resync", subject=f"sim:{sim.iccid}",
                    outcome="failure", reason="mac-s", tenant_id=sim.tenant_id,
                    details={"rand": rand.hex()}, durable=True,
                )
                raise AuthenticationFailure(
                    "re-synchronisation refused: AUTS does not verify",
                    cause="AUTHENTICATION_REJECTED", reason="mac-s",
                ) from forged
            _backoff(attempt)
        raise Conflict("SQN state is contended; retry", iccid=sim.iccid.value)
