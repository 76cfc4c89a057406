"""The AuC with persistence: authentication vectors for stored SIMs, SQN kept in the store.

Builds the SIM's algorithm set (MILENAGE with OP or OPc, TUAK with TOP or TOPc
and its sizes) from its unsealed secrets, issues fresh SQNs per TS 33.102
Annex C and stores the advanced SQN state with compare-and-swap on
``sqn_version`` in the transaction that audits the issue, so two AuCs on one
store never issue the same SQN. Re-synchronisation verifies AUTS (MAC-S),
resets SEQ_HE (TS 33.102 §6.3.5) and audits it; a forged AUTS is audited and
refused. The transaction is durable (fsync) before a vector or SQN_MS is
returned, so an answered request is in the audit trail after any crash.
Concurrent issues share that transaction (group commit,
docs/decisions/auc-sqn-group-commit.md): the first caller to find no write in
progress advances the SQNs of every request queued so far, one compare-and-swap
and one audit record each, in one durable transaction, and answers them all.
Vectors: EPS-AKA (TS 33.401 §6.1.2), 5G HE AV (TS 33.501 §6.1.3.2),
EAP-AKA' (TS 33.402 §6.2).

A batch of requests that arrived together (S6a AIRs, Nudm 5G HE AVs, the EAP-AKA
and EAP-AKA' vectors of RADIUS EAP conversations) reads its SIMs, sealed secrets
and SQN states in one query, and keeps the algorithm set of recently served SIMs in a bounded
memo keyed by IMSI (docs/decisions/auc-credential-memo.md): an entry is used
only while the SIM's stored row (sealed K and OP/OPc included) is exactly the
one it was built from, so a re-key, a state change or a key-wrap rotation by any
process is seen on the next request; this process's own SIM changes drop the
entry at once. The SQN state read with the row is swapped with compare-and-swap
in the group transaction and read again there only if another writer moved it.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from simtrust.audit import AuditEntry
from simtrust.domain import Imsi, Plmn
from simtrust.errors import AuthenticationFailure, Conflict, InvalidInput, NotFound
from simtrust.store import GroupCommit
from simtrust.subscriber._inventory import Inventory
from simtrust.subscriber._model import OpKind, Sim, SimState, TuakParams
from simtrust.subscriber._sim_rows import AUTH_ROW_SQN, sim_from_row
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
    eps_vectors_checked,
    he_avs_5g,
    umts_vector,
    with_separation_bit,
)

__all__ = ["AuthService", "aka_functions"]

T = TypeVar("T")
R = TypeVar("R", bound=tuple[Any, ...])
_ATTEMPTS = 8
#: SIMs whose algorithm set the AuC keeps between batches (0: none kept).
DEFAULT_CREDENTIAL_MEMO = 8192
_SERVABLE = (SimState.ACTIVE, SimState.TEST)


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


class _Issue:
    """One request's SQN advance, carried through a group commit."""

    __slots__ = ("action", "actor", "details", "error", "known", "lost", "out", "produce", "sim")

    def __init__(
        self, sim: Sim, produce: Callable[[AucSqnState], tuple[list[Any], AucSqnState]],
        actor: str, action: str, details: dict[str, object],
        known: tuple[str, int] | None = None,
    ) -> None:
        self.sim = sim
        #: (SQN state, version) read before the transaction; None: read it in there.
        self.known = known
        self.produce = produce
        self.actor = actor
        self.action = action
        self.details = details
        self.out: list[Any] | None = None
        self.error: Exception | None = None
        self.lost = False


#: Batches swapped one by one after a statement batch of swaps was rolled back.
SWAP_BATCH_BACKOFF = 32


class _SwapLost(Exception):
    """A compare-and-swap of a batch found its SIM's SQN state moved (another process)."""


class _Credentials:
    """A memo entry: the SIM row (less its SQN columns) an algorithm set was built from."""

    __slots__ = ("alg", "row", "sim")

    def __init__(self, row: tuple[Any, ...], sim: Sim, alg: AkaFunctions) -> None:
        self.row = row
        self.sim = sim
        self.alg = alg

    def __repr__(self) -> str:
        return f"_Credentials({self.sim.iccid}, <redacted>)"


def _eps_producer(
    alg: AkaFunctions, count: int, sn_id: bytes, amf: bytes, rand: RandSource
) -> Callable[[AucSqnState], tuple[list[EpsVector], AucSqnState]]:
    """``sn_id`` checked and ``amf`` with its separation bit set, once per burst."""
    return lambda state: eps_vectors_checked(alg, state, count, sn_id, amf, rand)


def _he_producer(
    alg: AkaFunctions, sn_name: str, amf: bytes, rand: RandSource
) -> Callable[[AucSqnState], tuple[list[HeAv5g], AucSqnState]]:
    return lambda state: he_avs_5g(alg, state, 1, sn_name, amf, rand)


def _eap_prime_producer(
    alg: AkaFunctions, amf: bytes, network_name: str, rand: RandSource
) -> Callable[[AucSqnState], tuple[list[EapAkaPrimeVector], AucSqnState]]:
    def produce(state: AucSqnState) -> tuple[list[EapAkaPrimeVector], AucSqnState]:
        sqns, after = state.issue(1)
        return [eap_aka_prime_vector(alg, sqns[0], amf, network_name, rand(16))], after

    return produce


def _umts_producer(
    alg: AkaFunctions, amf: bytes, rand: RandSource
) -> Callable[[AucSqnState], tuple[list[UmtsVector], AucSqnState]]:
    def produce(state: AucSqnState) -> tuple[list[UmtsVector], AucSqnState]:
        sqns, after = state.issue(1)
        return [umts_vector(alg, sqns[0], amf, rand(16))], after

    return produce


class AuthService:
    """Vectors and re-synchronisation for SIMs in an :class:`Inventory`."""

    __slots__ = ("_inv", "_memo", "_memo_size", "_rand", "_swap_one_by_one", "group_commit")

    def __init__(self, inventory: Inventory, *, rand: RandSource = os.urandom,
                 credential_memo: int = DEFAULT_CREDENTIAL_MEMO) -> None:
        self._inv = inventory
        self._rand = rand
        #: Concurrent SQN advances share one durable transaction (``batches``/``items``).
        self.group_commit: GroupCommit[_Issue] = GroupCommit(self._write_issues)
        self._memo: dict[str, _Credentials] = {}
        self._memo_size = max(0, credential_memo)
        #: Batches left to swap one by one after a statement batch was rolled back.
        self._swap_one_by_one = 0
        inventory.subscribe(self._on_change)

    def __repr__(self) -> str:
        return f"AuthService({self._inv!r}, memo={len(self._memo)}/{self._memo_size})"

    def forget(self, imsi: str) -> None:
        """Drop the memo entry of ``imsi`` (``"*"``: all); the next request unseals again."""
        if imsi == "*":
            self._memo.clear()
        else:
            self._memo.pop(imsi, None)

    def _on_change(self, kind: str, item: str) -> None:
        if kind == "sim":
            self.forget(item)

    def _credentials(self, imsi: str, row: tuple[Any, ...] | None) -> tuple[Sim, AkaFunctions]:
        """The SIM and algorithm set of an :meth:`Inventory.auth_rows` row, from the memo
        while the row is the one the entry was built from; NotFound/AuthenticationFailure
        as :meth:`subscriber` raises them."""
        if row is None:
            self.forget(imsi)
            raise NotFound("no subscriber with this SUPI", cause="USER_NOT_FOUND")
        ident = row[:AUTH_ROW_SQN]
        memo = self._memo
        entry = memo.pop(imsi, None)
        if entry is not None and entry.row == ident:
            memo[imsi] = entry  # most recently used last
            return entry.sim, entry.alg
        sim = sim_from_row(row)
        if sim.state not in _SERVABLE:
            raise AuthenticationFailure(
                f"subscriber's SIM is {sim.state}", cause="AUTHENTICATION_REJECTED",
                reason=f"sim-{sim.state}",
            )
        secrets = self._inv.unseal_row(sim, row)
        alg = aka_functions(secrets.op_kind, secrets.k, secrets.op, sim.tuak)
        if self._memo_size:
            while len(memo) >= self._memo_size:
                del memo[next(iter(memo))]  # least recently used
            memo[imsi] = _Credentials(ident, sim, alg)
        return sim, alg

    def auth_rows(self, imsis: Sequence[str]) -> dict[str, tuple[Any, ...]]:
        """The rows of ``imsis`` as the batch methods read them (one query), for a caller
        that checks the SIMs first and passes the rows on (``rows=``)."""
        return self._inv.auth_rows(imsis)

    def sim_of(self, imsi: str, row: tuple[Any, ...] | None) -> Sim | None:
        """The SIM of an :meth:`auth_rows` row (the memo's while the row is unchanged);
        nothing is unsealed."""
        if row is None:
            return None
        entry = self._memo.get(imsi)
        if entry is not None and entry.row == row[:AUTH_ROW_SQN]:
            return entry.sim
        return sim_from_row(row)

    def subscriber(self, imsi: Imsi) -> tuple[Sim, AkaFunctions]:
        """The SIM and its algorithm set; NotFound or AuthenticationFailure with a 3GPP cause."""
        found = self._inv.find_sim_secrets(imsi)
        if found is None:
            raise NotFound("no subscriber with this SUPI", cause="USER_NOT_FOUND")
        sim, secrets = found
        if sim.state not in (SimState.ACTIVE, SimState.TEST):
            raise AuthenticationFailure(
                f"subscriber's SIM is {sim.state}", cause="AUTHENTICATION_REJECTED",
                reason=f"sim-{sim.state}",
            )
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
        for attempt in range(_ATTEMPTS):
            issue = _Issue(sim, produce, actor, action, details)
            # Returns once the transaction holding this advance is durable.
            self.group_commit.submit(issue)
            if issue.error is not None:
                raise issue.error
            if issue.out is not None:
                return issue.out
            _backoff(attempt)  # another process advanced this SIM between read and swap
        raise Conflict("SQN state is contended; retry", iccid=sim.iccid.value)

    def _write_issues(self, batch: Sequence[_Issue]) -> None:
        """Advance every queued request's SQN state in one durable transaction.

        Requests for one SIM in one batch read each other's advance (same
        transaction); a compare-and-swap lost to another process marks only its
        request, which is retried in the next batch.
        """
        if self._swap_one_by_one > 0:
            self._swap_one_by_one -= 1
        elif self._write_all_swapped(batch):
            return
        self._write_one_by_one(batch)

    def _write_all_swapped(self, batch: Sequence[_Issue]) -> bool:
        """The common case of :meth:`_write_issues` in one statement batch: every request
        read its SIM's state before, every compare-and-swap holds. False, with nothing
        written, when one request was not read, failed to produce, or lost its swap."""
        if self._inv.db.in_transaction:
            return False  # a lost swap could not be rolled back alone inside a caller's
        swaps: list[tuple[str, str, int]] = []
        done: list[tuple[_Issue, list[Any], AucSqnState]] = []
        advanced: dict[str, tuple[str, int]] = {}
        for issue in batch:
            iccid = issue.sim.iccid.value
            known = advanced.get(iccid) or issue.known
            if known is None:
                return False
            text, version = known
            try:
                out, after = issue.produce(decode_sqn_state(text))
            except Exception:  # noqa: BLE001 - decided again, one by one, on the stored state
                return False
            stored = encode_sqn_state(after)
            advanced[iccid] = (stored, version + 1)
            swaps.append((iccid, stored, version))
            done.append((issue, out, after))
        inv = self._inv
        try:
            with inv.db.transaction(durable=True):
                try:
                    swapped = inv.swap_sqn_states(swaps)
                except Exception as exc:  # one by one decides per request, as before
                    raise _SwapLost from exc
                if swapped != len(swaps):
                    raise _SwapLost  # rolls the batch back; served one by one instead
                inv.audit.append_many([AuditEntry(
                    issue.actor, issue.action, "sim:" + issue.sim.iccid.value, "success",
                    tenant_id=issue.sim.tenant_id,
                    details={**issue.details, "count": len(out), "seq_he": after.seq})
                    for issue, out, after in done], returning=False)
        except _SwapLost:
            # Other processes advance the same SIMs: each rolled-back batch costs a second
            # pass, so the next batches swap one by one (only a lost request is retried).
            self._swap_one_by_one = SWAP_BATCH_BACKOFF
            return False
        # Answers are released only after the commit (and its fsync) above.
        for issue, out, _after in done:
            issue.out = out
        return True

    def _write_one_by_one(self, batch: Sequence[_Issue]) -> None:
        """:meth:`_write_issues` swap by swap, reading a state again where it moved."""
        inv = self._inv
        with inv.db.transaction(durable=True):
            entries: list[AuditEntry] = []
            done: list[tuple[_Issue, list[Any]]] = []
            # The state each SIM has after this batch's advances so far.
            advanced: dict[str, tuple[str, int]] = {}
            for issue in batch:
                sim = issue.sim
                known = advanced.get(sim.iccid.value) or issue.known
                swapped = False
                if known is not None:
                    try:
                        text, version = known
                        out, after = issue.produce(decode_sqn_state(text))
                        stored = encode_sqn_state(after)
                        swapped = inv.swap_sqn_state(sim.iccid, stored, version)
                    except Exception:  # noqa: BLE001 - decided again below on the stored state
                        swapped = False
                try:
                    if not swapped:
                        # Not read yet, or read before this transaction and moved since
                        # (another process): read it in here, where it cannot move.
                        text, version = inv.sqn_state(sim.iccid)
                        out, after = issue.produce(decode_sqn_state(text))
                        stored = encode_sqn_state(after)
                        if not inv.swap_sqn_state(sim.iccid, stored, version):
                            issue.lost = True
                            continue
                except Exception as exc:  # noqa: BLE001 - this request fails, the batch goes on
                    issue.error = exc
                    continue
                advanced[sim.iccid.value] = (stored, version + 1)
                entries.append(AuditEntry(
                    issue.actor, issue.action, f"sim:{sim.iccid}", "success",
                    tenant_id=sim.tenant_id,
                    details={**issue.details, "count": len(out), "seq_he": after.seq}))
                done.append((issue, out))
            if entries:
                inv.audit.append_many(entries, returning=False)
        # Answers are released only after the commit (and its fsync) above.
        for issue, out in done:
            issue.out = out

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

    def eps_vectors_many(
        self, requests: Sequence[tuple[Imsi, Plmn, int, str]]
    ) -> list[list[EpsVector] | Exception]:
        """:meth:`eps_vectors` for (IMSI, serving PLMN, count, actor) requests that
        arrived together, queued into the group commit at once.

        Each entry is that request's vectors or the error it alone failed with
        (NotFound, AuthenticationFailure, Conflict); a failed write raises for all.
        Every SQN advance is durable and audited (one record per request) on return.
        """
        # A burst comes from a few serving networks and AMFs: their SN ids (checked),
        # AMFs with the separation bit and audit details once.
        networks: dict[Plmn, tuple[bytes, dict[str, object]]] = {}
        amfs: dict[bytes, bytes] = {}

        def issue(sim: Sim, alg: AkaFunctions, known: tuple[str, int],
                  request: tuple[Imsi, Plmn, int, str]) -> _Issue:
            _imsi, serving, count, actor = request
            network = networks.get(serving)
            if network is None:
                network = networks[serving] = (plmn_id(serving.mcc, serving.mnc),  # 3 octets
                                               {"serving_plmn": str(serving)})
            sn_id, details = network
            amf = amfs.get(sim.amf)
            if amf is None:
                try:
                    amf = amfs[sim.amf] = with_separation_bit(sim.amf)
                except InvalidInput:  # a corrupt stored AMF fails this request alone, as ever
                    rand = self._rand
                    return _Issue(sim, lambda state: eps_vectors(alg, state, count, sn_id,
                                                                 sim.amf, rand), actor,
                                  "auc.eps-vectors", details, known=known)
            return _Issue(sim, _eps_producer(alg, count, sn_id, amf, self._rand), actor,
                          "auc.eps-vectors", details, known=known)

        return self._issue_many(self._prepare_many(requests, issue))

    def he_av_5g_many(
        self, requests: Sequence[tuple[Imsi, str, str]],
        rows: dict[str, tuple[Any, ...]] | None = None,
    ) -> list[HeAv5g | Exception]:
        """:meth:`he_av_5g` for (IMSI, serving network name, actor) requests that
        arrived together: one read, one group commit, as :meth:`eps_vectors_many`.
        ``rows``: their :meth:`auth_rows`, when the caller has just read them."""
        def issue(sim: Sim, alg: AkaFunctions, known: tuple[str, int],
                  request: tuple[Imsi, str, str]) -> _Issue:
            _imsi, sn_name, actor = request
            return _Issue(sim, _he_producer(alg, sn_name, sim.amf, self._rand), actor,
                          "auc.5g-he-av", {"serving_network_name": sn_name}, known=known)

        return [out[0] if isinstance(out, list) else out
                for out in self._issue_many(self._prepare_many(requests, issue, rows))]

    def eap_vectors_many(
        self, requests: Sequence[tuple[Imsi, str | None, str]]
    ) -> list[EapAkaPrimeVector | UmtsVector | Exception]:
        """One vector per (IMSI, network name, actor) request of EAP conversations that
        arrived together: an EAP-AKA' vector bound to the network name (as
        :meth:`eap_aka_prime`), or with no name a UMTS vector for EAP-AKA (as
        :meth:`umts_vector`). One read, one group commit (one durable transaction,
        one audit append), as :meth:`eps_vectors_many`; each entry is that request's
        vector or the error it alone failed with, and a failed write raises for all.
        """
        def issue(sim: Sim, alg: AkaFunctions, known: tuple[str, int],
                  request: tuple[Imsi, str | None, str]) -> _Issue:
            _imsi, name, actor = request
            if name is None:
                return _Issue(sim, _umts_producer(alg, sim.amf, self._rand), actor,
                              "auc.umts-av", {}, known=known)
            return _Issue(sim, _eap_prime_producer(alg, sim.amf, name, self._rand), actor,
                          "auc.eap-aka-prime", {"network_name": name}, known=known)

        return [out[0] if isinstance(out, list) else out
                for out in self._issue_many(self._prepare_many(requests, issue))]

    def _prepare_many(
        self, requests: Sequence[R],
        issue: Callable[[Sim, AkaFunctions, tuple[str, int], R], _Issue],
        rows: dict[str, tuple[Any, ...]] | None = None,
    ) -> list[_Issue | Exception]:
        """The issues of requests (each starting with its IMSI) that arrived together:
        their SIMs, sealed secrets and SQN states read in one query, the algorithm
        sets from the memo where it still holds; NotFound/AuthenticationFailure per
        request."""
        issues: list[_Issue | Exception] = []
        if rows is None:
            rows = self._inv.auth_rows([request[0].value for request in requests])
        for request in requests:
            imsi = request[0].value
            row = rows.get(imsi)
            try:
                sim, alg = self._credentials(imsi, row)
            except (NotFound, AuthenticationFailure) as exc:
                issues.append(exc)
                continue
            assert row is not None  # _credentials raised NotFound otherwise
            issues.append(issue(sim, alg, (str(row[AUTH_ROW_SQN]), int(row[AUTH_ROW_SQN + 1])),
                                request))
        return issues

    def _issue_many(self, issues: list[_Issue | Exception]) -> list[list[Any] | Exception]:
        """Queue the issues into the group commit at once; each one's output or error."""
        self.group_commit.submit_many([i for i in issues if isinstance(i, _Issue)])
        out: list[list[Any] | Exception] = []
        for issue in issues:
            if isinstance(issue, Exception):
                out.append(issue)
            elif issue.error is not None:
                out.append(issue.error)
            elif issue.out is not None:
                out.append(issue.out)
            else:  # its compare-and-swap was lost to another process: retry alone
                try:
                    out.append(self._advance(issue.sim, issue.produce, actor=issue.actor,
                                             action=issue.action, details=issue.details))
                except Conflict as exc:
                    out.append(exc)
        return out

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
        return self._advance(
            sim, _eap_prime_producer(alg, sim.amf, network_name, self._rand), actor=actor,
            action="auc.eap-aka-prime", details={"network_name": network_name},
        )[0]

    def umts_vector(self, imsi: Imsi, *, actor: str = "auc") -> UmtsVector:
        """One UMTS AV (CK and IK in clear) for a BSF over Zh (TS 33.220 §4.5.2, TS 29.109).

        The path of :meth:`eap_vectors_many`: the SIM, its sealed secrets and SQN state
        in one read, the algorithm set from the memo while the SIM's row is unchanged."""
        out = self.eap_vectors_many([(imsi, None, actor)])[0]
        if isinstance(out, Exception):
            raise out
        assert isinstance(out, UmtsVector)
        return out

    def seq_ahead(self, imsi: Imsi, sqn_ms: bytes, seq_he: int) -> int:
        """How far SEQ_MS of ``sqn_ms`` is beyond ``seq_he`` (0 if not beyond).

        A USIM only accepts sequence numbers its AuC issued (TS 33.102 §6.3.3,
        Annex C), so SEQ_MS beyond the SEQ_HE the AuC had before the re-sync means
        another party issued vectors with the SIM's key (a clone) or the AuC state
        went back (a restore): the fraud detectors report it.
        """
        sim = self._inv.find_sim(imsi)
        if sim is None:
            raise NotFound("no subscriber with this SUPI", cause="USER_NOT_FOUND")
        text, _ = self._inv.sqn_state(sim.iccid)
        ind_bits = decode_sqn_state(text).ind_bits
        return max(0, (int.from_bytes(sqn_ms, "big") >> ind_bits) - seq_he)

    def seq_he(self, imsi: Imsi) -> int:
        """SEQ_HE: the last SEQ this AuC issued for the SIM (TS 33.102 C.1.1)."""
        sim = self._inv.find_sim(imsi)
        if sim is None:
            raise NotFound("no subscriber with this SUPI", cause="USER_NOT_FOUND")
        text, _ = self._inv.sqn_state(sim.iccid)
        return decode_sqn_state(text).seq

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
