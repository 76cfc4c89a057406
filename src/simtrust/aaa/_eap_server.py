"""The EAP-AKA / EAP-AKA' server behind RADIUS (RFC 3579 transport, RFC 4187, RFC 5448,
RFC 9048), with the SIM's MILENAGE or TUAK credentials held by the AuC.

A conversation is keyed by the RADIUS State attribute (RFC 2865 §5.24). The
identity decides the method and the path (RFC 4187 §4.1.1.6 and RFC 5448 §3
prefixes: ``0``/``6`` permanent, ``2``/``7`` pseudonym, ``4``/``8`` fast
re-authentication identity, for AKA/AKA'); an identity this server does not
recognise is asked again with AT_FULLAUTH_ID_REQ (a stale pseudonym or
re-authentication identity) or AT_PERMANENT_ID_REQ, at most three rounds
(§4.1.1.8). The full authentication draws a vector from the AuC (a plain UMTS
vector for AKA; CK'/IK' bound to the network name for AKA', which is sent in
AT_KDF_INPUT with AT_KDF 1); the challenge also carries, encrypted, the next
pseudonym and the next fast re-authentication identity (§10.11, §10.12). A
synchronisation failure's AT_AUTS goes to the AuC's re-synchronisation and a
fresh challenge follows (once per conversation). The responses of a burst are answered
together (:meth:`EapAkaServer.respond_many`): their full authentications draw their
vectors in one AuC call, one durable SQN group commit for all of them. Fast re-authentication
(§5) reuses MK (AKA) or K_re (AKA') with a counter and NONCE_S. Pseudonyms and
re-authentication identities are kept in memory (bounded) and, with an
:class:`EapIdentityStore`, in the store, so they survive a restart; an unknown one
gets its peer asked for the full identity. Served by several RADIUS worker processes
(:meth:`EapAkaServer.as_worker`), a conversation lives in the memory of the worker
whose index opens its State, where the kernel brings its later rounds
(:mod:`simtrust.aaa._steer`; a round reaching another worker finds no conversation
and gets EAP-Failure), and a re-authentication identity is taken from the store only,
so no two workers can use it (RFC 4187 §5.1).
"""

from __future__ import annotations

import base64
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simtrust.aaa._eap import (
    AkaAttr,
    AkaKeys,
    AkaMessage,
    EapCode,
    EapPacket,
    EapType,
    MalformedEap,
    Subtype,
    aka_keys,
    aka_prime_keys,
    aka_prime_reauth_keys,
    aka_reauth_keys,
    decode_eap,
    decrypt_attributes,
    encrypt_attributes,
    identity_value,
    mac_of,
    read_identity,
    zero_mac,
)
from simtrust.aaa._eap_store import EapIdentityStore
from simtrust.crypto import pooled_random
from simtrust.detect import SimEvent
from simtrust.domain import imsi_digits
from simtrust.errors import SimtrustError
from simtrust.subscriber import AuthService, Imsi
from simtrust.subscriber.auc import EapAkaPrimeVector, UmtsVector

__all__ = ["EapAkaServer", "EapOutcome"]

_PERMANENT = {"0": EapType.AKA, "6": EapType.AKA_PRIME}
_PSEUDONYM = {"2": EapType.AKA, "7": EapType.AKA_PRIME}
_REAUTH = {"4": EapType.AKA, "8": EapType.AKA_PRIME}
_PREFIX = {EapType.AKA: ("2", "4"), EapType.AKA_PRIME: ("7", "8")}
_MAX_ID_ROUNDS = 3
_MAX_REAUTH = 16


@dataclass(frozen=True, slots=True)
class EapOutcome:
    """What to send: an EAP packet, the State of a continuing conversation, and on
    success the authenticated IMSI and the MSK."""

    eap: bytes
    state: bytes | None = None
    imsi: str | None = None
    msk: bytes | None = None
    method: str = ""

    @property
    def success(self) -> bool:
        return self.eap[0] == EapCode.SUCCESS

    @property
    def failure(self) -> bool:
        return self.eap[0] == EapCode.FAILURE

    def __repr__(self) -> str:
        return f"EapOutcome(code={self.eap[0]}, imsi={self.imsi!r})"


@dataclass(slots=True)
class _Pending:
    """A full authentication waiting for its vector (drawn for the whole burst)."""

    conv: _Conversation
    eap_id: int
    imsi: Imsi
    fail_id: int = 0
    fail_conv: _Conversation | None = None
    index: int = 0
    actor: str = ""


#: What the steps return for a challenge whose vector is drawn with the burst's.
_DEFERRED = EapOutcome(b"\x00")


@dataclass(slots=True)
class _Reauth:
    imsi: str
    method: int
    k_encr: bytes = field(repr=False)
    k_aut: bytes = field(repr=False)
    secret: bytes = field(repr=False)  # MK (AKA) or K_re (AKA')
    counter: int


@dataclass(slots=True)
class _Conversation:
    method: int
    identity: bytes = b""
    imsi: str | None = None
    stage: str = "identity"
    eap_id: int = 0
    rounds: int = 0
    resynced: bool = False
    rand: bytes = b""
    xres: bytes = b""
    keys: AkaKeys | None = None
    reauth: _Reauth | None = None
    nonce_s: bytes = b""
    counter: int = 0
    next_reauth_id: bytes = b""
    expires: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class EapAkaServer:
    """EAP-AKA and EAP-AKA' full and fast authentication against the AuC."""

    def __init__(self, auth: AuthService, audit: Any, *, network_name: str = "WLAN",
                 rand: Callable[[int], bytes] = pooled_random, ttl: float = 60.0,
                 max_conversations: int = 100_000, max_identities: int = 1_000_000,
                 identities: EapIdentityStore | None = None,
                 observer: Callable[[SimEvent], object] | None = None) -> None:
        """``observer`` gets each re-sync as a fraud-detector event (``auth-sync-failure``,
        or ``auth-sqn-ahead`` when SQN_MS was beyond the AuC's SEQ_HE)."""
        if not network_name:
            raise ValueError("network name must not be empty")
        self._observer = observer
        self._auth = auth
        self._audit = audit
        self.network_name = network_name
        self._rand = rand
        self._ttl = ttl
        self._max = max_conversations
        self._max_ids = max_identities
        self._conversations: OrderedDict[bytes, _Conversation] = OrderedDict()
        self._pseudonyms: OrderedDict[bytes, str] = OrderedDict()
        self._reauth_ids: OrderedDict[bytes, _Reauth] = OrderedDict()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._store = identities
        #: Opens every State this server issues: a RADIUS worker's index, which the
        #: kernel's steering program reads to bring later rounds back (aaa._steer).
        self.state_prefix = b""
        #: Several processes serve the same peers (RADIUS workers): re-authentication
        #: identities are taken from the store only, where taking one deletes it, so a
        #: copy in one worker's memory can never be used after another worker took it.
        self.shared = False
        self.completed = 0
        self.failures = 0

    def as_worker(self, index: int) -> None:
        """Serve as RADIUS worker ``index`` of several processes (see ``state_prefix``
        and ``shared``); re-authentication then needs the identity store."""
        if not 0 <= index <= 255:
            raise ValueError("a worker index must fit one octet")
        self.state_prefix = bytes((index,))
        self.shared = True

    def close(self) -> None:
        """Write the identities still queued for the store."""
        if self._store is not None:
            self._store.close()

    def __repr__(self) -> str:
        return (f"EapAkaServer(network={self.network_name!r}, "
                f"conversations={len(self._conversations)})")

    # -- entry point -------------------------------------------------------------

    def respond(self, eap_message: bytes, state: bytes | None, actor: str) -> EapOutcome:
        """Answer one EAP-Response (the concatenated EAP-Message attributes)."""
        return self.respond_many([(eap_message, state, actor)])[0]

    def respond_many(self, responses: list[tuple[bytes, bytes | None, str]]
                     ) -> list[EapOutcome]:
        """Answer EAP-Responses that arrived together, in order: (EAP message, State,
        actor) each. The AuC vectors of the full authentications among them are drawn
        in one call (:meth:`AuthService.eap_vectors_many`: one durable SQN group
        commit and one audit append); it returns, and so does this, only once every
        SQN advance is on disk, so no AKA-Challenge can leave before it."""
        pending: list[_Pending] = []
        outcomes: list[EapOutcome] = []
        self._local.pending = pending
        try:
            for index, (eap_message, state, actor) in enumerate(responses):
                outcome = self._respond(eap_message, state, actor)
                if outcome is _DEFERRED:
                    pending[-1].index = index
                    pending[-1].actor = actor
                outcomes.append(outcome)
        finally:
            self._local.pending = None
        if pending:
            self._challenges(pending, outcomes)
        return outcomes

    def _respond(self, eap_message: bytes, state: bytes | None, actor: str) -> EapOutcome:
        try:
            packet = decode_eap(eap_message)
        except MalformedEap:
            return self._fail(0, None, actor, "malformed-eap")
        if packet.code != EapCode.RESPONSE:
            return self._fail(packet.identifier, None, actor, "not-a-response")
        conversation = self._take(state) if state else None
        try:
            if packet.type == EapType.IDENTITY:
                outcome = self._identity(packet.identifier, packet.data[1:], actor)
            elif conversation is None:
                return self._fail(packet.identifier, None, actor, "unknown-state")
            elif packet.type == EapType.NAK or packet.type != conversation.method:
                return self._fail(packet.identifier, conversation, actor, "method-refused")
            elif packet.identifier != conversation.eap_id:
                return self._fail(packet.identifier, conversation, actor, "identifier")
            else:
                message = AkaMessage.decode(packet.data)
                outcome = self._step(conversation, packet, eap_message[: 4 + len(packet.data)],
                                     message, actor)
        except MalformedEap:
            return self._fail(packet.identifier, conversation, actor, "malformed-eap")
        except SimtrustError as exc:
            return self._fail(packet.identifier, conversation, actor,
                              str(exc.context.get("reason") or exc.code), detail=exc.detail)
        if outcome is _DEFERRED:
            # A vector error fails the conversation as it would have failed here.
            self._local.pending[-1].fail_id = packet.identifier
            self._local.pending[-1].fail_conv = conversation
        return outcome

    # -- identities ----------------------------------------------------------------

    def _identity(self, eap_id: int, text: bytes, actor: str,
                  conversation: _Conversation | None = None) -> EapOutcome:
        name = text.split(b"@", 1)[0].decode("ascii", "replace")
        prefix = name[:1]
        conv = conversation or _Conversation(EapType.AKA_PRIME)
        conv.identity = text
        conv.rounds += 1
        if prefix in _PERMANENT and name[1:].isdigit() and 14 <= len(name) - 1 <= 15:
            conv.method = _PERMANENT[prefix]
            conv.imsi = name[1:]
            return self._challenge(conv, eap_id)
        if prefix in _PSEUDONYM:
            conv.method = _PSEUDONYM[prefix]
            with self._lock:
                imsi = self._pseudonyms.get(name.encode())
            if imsi is None and self._store is not None:
                imsi = self._store.pseudonym(name.encode())
            if imsi is not None:
                conv.imsi = imsi
                return self._challenge(conv, eap_id)
            return self._ask_identity(conv, eap_id, AkaAttr.FULLAUTH_ID_REQ, actor)
        if prefix in _REAUTH:
            conv.method = _REAUTH[prefix]
            with self._lock:
                reauth = None if self.shared else self._reauth_ids.pop(text, None)
            if self._store is not None:
                if reauth is None:
                    stored = self._store.take_reauth(text)
                    if stored is not None:
                        reauth = _Reauth(stored.imsi, stored.method, stored.k_encr,
                                         stored.k_aut, stored.secret, stored.counter)
                else:
                    self._store.delete(text)
            if reauth is not None and reauth.method == conv.method:
                return self._reauthenticate(conv, reauth, eap_id)
            return self._ask_identity(conv, eap_id, AkaAttr.FULLAUTH_ID_REQ, actor)
        return self._ask_identity(conv, eap_id, AkaAttr.PERMANENT_ID_REQ, actor)

    def _ask_identity(self, conv: _Conversation, eap_id: int, request: int,
                      actor: str) -> EapOutcome:
        if conv.rounds > _MAX_ID_ROUNDS:
            return self._fail(eap_id, conv, actor, "identity-rounds")
        message = AkaMessage(conv.method, Subtype.IDENTITY)
        message.add(request, bytes(2))
        conv.stage = "identity"
        return self._request(conv, eap_id, message)

    # -- full authentication --------------------------------------------------------

    def _challenge(self, conv: _Conversation, eap_id: int) -> EapOutcome:
        """Queue the conversation for a vector: drawn for the burst by respond_many."""
        assert conv.imsi is not None
        self._local.pending.append(_Pending(conv, eap_id, Imsi(conv.imsi)))
        return _DEFERRED

    def _challenges(self, pending: list[_Pending], outcomes: list[EapOutcome]) -> None:
        """Draw the vectors of the queued full authentications in one AuC call and put
        each one's AKA-Challenge (or failure) in its place."""
        requests = [(p.imsi, self.network_name if p.conv.method == EapType.AKA_PRIME
                     else None, _name(p.conv.method)) for p in pending]
        try:
            vectors = self._auth.eap_vectors_many(requests)
        except SimtrustError as exc:
            vectors = [exc] * len(pending)
        for p, vector in zip(pending, vectors, strict=True):
            if isinstance(vector, SimtrustError):
                outcomes[p.index] = self._fail(
                    p.fail_id, p.fail_conv, p.actor,
                    str(vector.context.get("reason") or vector.code), detail=vector.detail)
            elif isinstance(vector, Exception):
                raise vector
            else:
                outcomes[p.index] = self._challenge_with(p.conv, p.eap_id, vector)

    def _challenge_with(self, conv: _Conversation, eap_id: int,
                        vector: EapAkaPrimeVector | UmtsVector) -> EapOutcome:
        message = AkaMessage(conv.method, Subtype.CHALLENGE)
        if isinstance(vector, EapAkaPrimeVector):
            keys = aka_prime_keys(conv.identity, vector.ck_prime, vector.ik_prime)
        else:
            keys = aka_keys(conv.identity, vector.ik, vector.ck)
        rand, autn, xres = vector.rand, vector.autn, vector.xres
        conv.rand, conv.xres, conv.keys = rand, xres, keys
        message.add(AkaAttr.RAND, bytes(2) + rand)
        message.add(AkaAttr.AUTN, bytes(2) + autn)
        if conv.method == EapType.AKA_PRIME:
            message.add(AkaAttr.KDF_INPUT, identity_value(self.network_name.encode()))
            message.add(AkaAttr.KDF, (1).to_bytes(2, "big"))
        else:
            # RFC 5448 §4: this server also supports EAP-AKA' (bidding-down protection).
            message.add(AkaAttr.BIDDING, b"\x80\x00")
        pseudonym, reauth_id = self._next_identities(conv)
        iv = self._rand(16)
        message.add(AkaAttr.IV, bytes(2) + iv)
        message.add(AkaAttr.ENCR_DATA, bytes(2) + encrypt_attributes(keys.k_encr, iv, [
            (AkaAttr.NEXT_PSEUDONYM, identity_value(pseudonym)),
            (AkaAttr.NEXT_REAUTH_ID, identity_value(reauth_id)),
        ]))
        conv.next_reauth_id = reauth_id
        conv.extra["pseudonym"] = pseudonym
        conv.stage = "challenge"
        return self._request(conv, eap_id, message, mac_key=keys.k_aut)

    def _next_identities(self, conv: _Conversation) -> tuple[bytes, bytes]:
        pseudo_prefix, reauth_prefix = _PREFIX[conv.method]
        token = base64.b32encode(self._rand(15)).decode().lower()
        pseudonym = (pseudo_prefix + token).encode()
        realm = b""
        if b"@" in conv.identity:
            realm = b"@" + conv.identity.split(b"@", 1)[1]
        reauth_id = (reauth_prefix + base64.b32encode(self._rand(15)).decode().lower()).encode()
        return pseudonym, reauth_id + realm

    def _step(self, conv: _Conversation, packet: EapPacket, raw: bytes, message: AkaMessage,
              actor: str) -> EapOutcome:
        eap_id = packet.identifier
        subtype = message.subtype
        if subtype == Subtype.CLIENT_ERROR:
            return self._fail(eap_id, conv, actor, "client-error")
        if subtype == Subtype.AUTHENTICATION_REJECT:
            return self._fail(eap_id, conv, actor, "peer-rejected-network")
        if conv.stage == "identity" and subtype == Subtype.IDENTITY:
            value = message.get(AkaAttr.IDENTITY)
            if value is None:
                return self._fail(eap_id, conv, actor, "identity-missing")
            return self._identity(eap_id, read_identity(value), actor, conv)
        if conv.stage == "challenge" and subtype == Subtype.SYNCHRONIZATION_FAILURE:
            auts = message.get(AkaAttr.AUTS)
            if auts is None or len(auts) != 14 or conv.resynced or conv.imsi is None:
                return self._fail(eap_id, conv, actor, "resync-refused")
            subscriber = Imsi(conv.imsi)
            seq_he = self._auth.seq_he(subscriber) if self._observer is not None else 0
            sqn_ms = self._auth.resynchronise(subscriber, conv.rand, auts, actor="eap-aka")
            if self._observer is not None:
                ahead = self._auth.seq_ahead(subscriber, sqn_ms, seq_he)
                self._observer(SimEvent(time.time(), imsi_digits(conv.imsi),
                                        "auth-sqn-ahead" if ahead else "auth-sync-failure"))
            conv.resynced = True
            return self._challenge(conv, eap_id)
        if conv.stage == "challenge" and subtype == Subtype.CHALLENGE:
            return self._challenge_response(conv, eap_id, raw, message, actor)
        if conv.stage == "reauth" and subtype == Subtype.REAUTHENTICATION:
            return self._reauth_response(conv, eap_id, raw, message, actor)
        return self._fail(eap_id, conv, actor, "unexpected-subtype")

    def _challenge_response(self, conv: _Conversation, eap_id: int, raw: bytes,
                            message: AkaMessage, actor: str) -> EapOutcome:
        keys = conv.keys
        assert keys is not None
        assert conv.imsi is not None
        if not self._mac_ok(conv.method, keys.k_aut, raw, message, b""):
            return self._fail(eap_id, conv, actor, "mac")
        res_attr = message.get(AkaAttr.RES)
        if res_attr is None or len(res_attr) < 2:
            return self._fail(eap_id, conv, actor, "res-missing")
        bits = int.from_bytes(res_attr[:2], "big")
        res = res_attr[2 : 2 + (bits + 7) // 8]
        if bits % 8 or not hmac.compare_digest(res, conv.xres):
            return self._fail(eap_id, conv, actor, "res")
        secret = keys.mk if conv.method == EapType.AKA else keys.k_re
        self._remember_reauth(conv.next_reauth_id, _Reauth(
            conv.imsi, conv.method, keys.k_encr, keys.k_aut, secret, 1))
        self.remember_pseudonym(conv.extra["pseudonym"], conv.imsi, conv.method)
        self.completed += 1
        return EapOutcome(EapPacket(EapCode.SUCCESS, eap_id).encode(), None, conv.imsi,
                          keys.msk, _name(conv.method))

    # -- fast re-authentication ----------------------------------------------------

    def _reauthenticate(self, conv: _Conversation, reauth: _Reauth, eap_id: int) -> EapOutcome:
        conv.imsi = reauth.imsi
        conv.reauth = reauth
        conv.nonce_s = self._rand(16)
        conv.counter = reauth.counter
        _pseudo, next_id = self._next_identities(conv)
        conv.next_reauth_id = next_id
        iv = self._rand(16)
        message = AkaMessage(conv.method, Subtype.REAUTHENTICATION)
        message.add(AkaAttr.IV, bytes(2) + iv)
        message.add(AkaAttr.ENCR_DATA, bytes(2) + encrypt_attributes(reauth.k_encr, iv, [
            (AkaAttr.COUNTER, conv.counter.to_bytes(2, "big")),
            (AkaAttr.NONCE_S, bytes(2) + conv.nonce_s),
            (AkaAttr.NEXT_REAUTH_ID, identity_value(next_id)),
        ]))
        conv.stage = "reauth"
        return self._request(conv, eap_id, message, mac_key=reauth.k_aut)

    def _reauth_response(self, conv: _Conversation, eap_id: int, raw: bytes,
                         message: AkaMessage, actor: str) -> EapOutcome:
        reauth = conv.reauth
        assert reauth is not None
        if not self._mac_ok(conv.method, reauth.k_aut, raw, message, conv.nonce_s):
            return self._fail(eap_id, conv, actor, "mac")
        iv, encrypted = message.get(AkaAttr.IV), message.get(AkaAttr.ENCR_DATA)
        if iv is None or encrypted is None or len(iv) != 18:
            return self._fail(eap_id, conv, actor, "encr-data-missing")
        inner = dict(decrypt_attributes(reauth.k_encr, iv[2:], encrypted[2:]))
        if AkaAttr.COUNTER_TOO_SMALL in inner:
            # RFC 4187 §5.5: fall back to a full authentication of the same subscriber.
            conv.rounds = 0
            return self._challenge(conv, (eap_id + 1) % 256)
        counter = inner.get(AkaAttr.COUNTER)
        if counter is None or int.from_bytes(counter, "big") != conv.counter:
            return self._fail(eap_id, conv, actor, "counter")
        if conv.method == EapType.AKA:
            msk, _emsk = aka_reauth_keys(conv.identity, conv.counter, conv.nonce_s,
                                         reauth.secret)
        else:
            msk, _emsk = aka_prime_reauth_keys(reauth.secret, conv.identity, conv.counter,
                                               conv.nonce_s)
        if conv.counter < _MAX_REAUTH:
            self._remember_reauth(conv.next_reauth_id, _Reauth(
                reauth.imsi, reauth.method, reauth.k_encr, reauth.k_aut, reauth.secret,
                conv.counter + 1))
        self.completed += 1
        return EapOutcome(EapPacket(EapCode.SUCCESS, eap_id).encode(), None, reauth.imsi, msk,
                          _name(conv.method) + "-reauth")

    # -- helpers -------------------------------------------------------------------

    @staticmethod
    def _mac_ok(method: int, k_aut: bytes, raw: bytes, message: AkaMessage,
                extra: bytes) -> bool:
        given = message.get(AkaAttr.MAC)
        if given is None or len(given) != 18:
            return False
        return hmac.compare_digest(given[2:], mac_of(method, k_aut, zero_mac(raw), extra))

    def _request(self, conv: _Conversation, last_id: int, message: AkaMessage, *,
                 mac_key: bytes | None = None) -> EapOutcome:
        eap_id = (last_id + 1) % 256
        if mac_key is not None:
            message.add(AkaAttr.MAC, bytes(18))
        packet = EapPacket(EapCode.REQUEST, eap_id, message.encode_data()).encode()
        if mac_key is not None:
            mac = mac_of(conv.method, mac_key, packet)
            packet = packet[:-16] + mac
        conv.eap_id = eap_id
        prefix = self.state_prefix
        state = prefix + self._rand(16 - len(prefix))
        self._keep(state, conv)
        return EapOutcome(packet, state)

    def _fail(self, eap_id: int, conv: _Conversation | None, actor: str, reason: str,
              detail: str = "") -> EapOutcome:
        self.failures += 1
        imsi = conv.imsi if conv is not None else None
        self._audit.append(
            actor=actor, action="radius.eap", subject=f"imsi:{imsi or '-'}", outcome="failure",
            reason=reason, details={"method": _name(conv.method) if conv else None,
                                    "detail": detail[:200]},
        )
        return EapOutcome(EapPacket(EapCode.FAILURE, eap_id).encode(), None, imsi)

    def _keep(self, state: bytes, conv: _Conversation) -> None:
        now = time.monotonic()
        conv.expires = now + self._ttl
        with self._lock:
            self._conversations[state] = conv
            while len(self._conversations) > self._max:
                self._conversations.popitem(last=False)
            # Drop the expired heads (oldest first).
            while self._conversations:
                head = next(iter(self._conversations.values()))
                if head.expires >= now:
                    break
                self._conversations.popitem(last=False)

    def _take(self, state: bytes) -> _Conversation | None:
        with self._lock:
            conv = self._conversations.pop(state, None)
        if conv is None or conv.expires < time.monotonic():
            return None
        return conv

    def _remember_reauth(self, reauth_id: bytes, reauth: _Reauth) -> None:
        if self._store is not None:
            self._store.put_reauth(reauth_id, reauth.imsi, reauth.method, reauth.k_encr,
                                   reauth.k_aut, reauth.secret, reauth.counter)
        if self.shared:
            return
        with self._lock:
            self._reauth_ids[reauth_id] = reauth
            while len(self._reauth_ids) > self._max_ids:
                self._reauth_ids.popitem(last=False)

    def remember_pseudonym(self, pseudonym: bytes, imsi: str,
                           method: int = EapType.AKA_PRIME) -> None:
        if self._store is not None:
            self._store.put_pseudonym(pseudonym, imsi, method)
        with self._lock:
            self._pseudonyms[pseudonym] = imsi
            while len(self._pseudonyms) > self._max_ids:
                self._pseudonyms.popitem(last=False)


def _name(method: int) -> str:
    return "eap-aka-prime" if method == EapType.AKA_PRIME else "eap-aka"
