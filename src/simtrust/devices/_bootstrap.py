"""The LwM2M bootstrap server (Core V1_1_1 §6.1.7 client-initiated bootstrap: Bootstrap-
Request on /bs, Bootstrap-Delete, Bootstrap-Write of Security (0) and Server (1) instances,
Bootstrap-Finish).

Devices authenticate with a key derived from their SIM: the PSK identity
``3GPP-bootstrapping,<B-TID>`` names a GBA context and the key is Ks_NAF for this server's
NAF_Id (TS 33.220 §4.5.3 over Zn, TS 33.222 §5.4 PSK TLS; Ua protocol id
0x01 0x00 0x01 ‖ the cipher suite). SIMs without GBA use a per-device bootstrap PSK.
What the device receives: a fresh PSK for the device-management server (or, when its
tenant has an ``lwm2m`` CA, a key and certificate of that CA for certificate mode:
Security resource 2 = 2, resources 3/4/5 = its certificate, the server's trust anchor,
its private key, Core §E.1; ``devices/_certauth.py``; or, when the device enrolled its own
key by EST-coaps in the same session, ``devices/_est_coaps.py``, Security Mode 4 with its
certificate and no secret key) and, when its enterprise runs one,
an account for the enterprise's own LwM2M server. Writes larger than one datagram go
block-wise (RFC 7959, ``devices/_blockwise.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from simtrust.bootstrap import NafId, NafKey
from simtrust.devices._blockwise import BodyTooLarge, exchange
from simtrust.devices._coap import CON, Code, Message, Opt, uint_option
from simtrust.devices._content import CF_SENML_CBOR, CF_SENML_JSON, CF_TLV, encode_content
from simtrust.devices._credentials import BOOTSTRAP, DM, CredentialStore
from simtrust.devices._est_coaps import EST_PATH, EstCoaps
from simtrust.devices._objects import Path, Value
from simtrust.devices._server import SimFinder, parse_endpoint
from simtrust.devices._transport import CoapEndpoint, Peer, PskEntry
from simtrust.domain import Imsi
from simtrust.errors import DecodeError, SimtrustError
from simtrust.subscriber import SimState

__all__ = [
    "GBA_PSK_PREFIX",
    "UA_PSK_TLS_CCM8",
    "BootstrapServer",
    "EnterpriseServer",
    "NafKeySource",
]

log = logging.getLogger(__name__)

#: TS 33.222 §5.4.0.1: the psk_identity of a GBA_ME device.
GBA_PSK_PREFIX = "3GPP-bootstrapping,"
#: TS 33.220 Annex H: shared-key TLS (RFC 4279) with cipher suite TLS_PSK_WITH_AES_128_CCM_8
#: (0xC0A8), the one suite the bootstrap link offers (LwM2M Core §7.1.6.2).
UA_PSK_TLS_CCM8 = bytes((0x01, 0x00, 0x01, 0xC0, 0xA8))
BOOTSTRAP_CIPHERS = ("TLS-PSK-WITH-AES-128-CCM-8",)


#: (tenant, ICCID, IMSI, IMEI) → (device certificate DER, PKCS#8 key DER, server trust
#: anchor DER), or None when the tenant provisions PSKs.
CertProvisioner = Callable[[str, str, str, str | None], tuple[bytes, bytes, bytes] | None]
SECURITY_MODE_PSK, SECURITY_MODE_CERTIFICATE, SECURITY_MODE_EST = 0, 2, 4


class NafKeySource(Protocol):
    """Zn towards the BSF (``simtrust.bootstrap.Bsf``)."""

    def naf_key(self, b_tid_value: str, naf_id: NafId) -> NafKey: ...


@dataclass(frozen=True, slots=True)
class EnterpriseServer:
    """An enterprise's own LwM2M server, provisioned next to the operator's (PSK mode)."""

    uri: str
    short_server_id: int = 2
    lifetime: int = 86400

    def __post_init__(self) -> None:
        if not self.uri.startswith(("coap://", "coaps://")) or len(self.uri) > 255:
            raise ValueError("an LwM2M server URI is coap:// or coaps://")
        if not 2 <= self.short_server_id <= 65534:
            raise ValueError("short server ids 2..65534 are left for enterprise servers")


class BootstrapServer:
    """Answers Bootstrap-Request and provisions the device over the same DTLS session."""

    def __init__(self, naf_keys: NafKeySource, naf_id: NafId, credentials: CredentialStore,
                 sims: SimFinder, clock: Callable[[], datetime], *, dm_uri: str,
                 enterprise: Callable[[str], EnterpriseServer | None] = lambda _t: None,
                 dm_lifetime: int = 86400, allow_nosec: bool = False,
                 certificates: CertProvisioner | None = None,
                 est: EstCoaps | None = None) -> None:
        self.certificates = certificates
        self.est = est
        self._naf_keys = naf_keys
        self.naf_id = naf_id
        self._credentials = credentials
        self._sims = sims
        self._clock = clock
        self.dm_uri = dm_uri
        self.enterprise = enterprise
        self._dm_lifetime = dm_lifetime
        self._allow_nosec = allow_nosec
        self.endpoint = CoapEndpoint(self.handle)
        self.status: dict[str, str] = {}
        self.refused: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"BootstrapServer({self.naf_id}, dm={self.dm_uri})"

    # -- PSK identities -------------------------------------------------------------------

    def resolve(self, identity: str) -> PskEntry | None:
        """The bootstrap key behind a PSK identity: Ks_NAF for a GBA B-TID, or a stored
        per-device bootstrap PSK; None for anything else (the handshake fails)."""
        if identity.startswith(GBA_PSK_PREFIX):
            try:
                key = self._naf_keys.naf_key(identity[len(GBA_PSK_PREFIX):], self.naf_id)
            except SimtrustError:
                return None
            return PskEntry(key.key, key.imsi, None, BOOTSTRAP)
        return self._credentials.resolve(identity, BOOTSTRAP)

    # -- Bootstrap-Request -----------------------------------------------------------------

    def _refuse(self, reason: str, msg: Message, code: int) -> Message:
        self.refused[reason] = self.refused.get(reason, 0) + 1
        return msg.reply(code, reason.encode())

    def handle(self, peer: Peer, msg: Message) -> Message | None:
        if self.est is not None and msg.path[:2] == EST_PATH:
            return self.est.handle(peer, msg)
        if msg.path != ["bs"]:
            return self._refuse("not-found", msg, Code.NOT_FOUND)
        if msg.code != Code.POST:
            return self._refuse("method", msg, Code.METHOD_NOT_ALLOWED)
        query = msg.query
        name = query.get("ep", "")
        try:
            imei, imsi = parse_endpoint(name)
            pct = int(query.get("pct", str(CF_TLV)))
        except (DecodeError, ValueError):
            return self._refuse("bad-request", msg, Code.BAD_REQUEST)
        if pct not in (CF_TLV, CF_SENML_JSON, CF_SENML_CBOR):
            pct = CF_TLV
        entry = peer.entry
        if peer.secure:
            if entry is None or entry.purpose != BOOTSTRAP or entry.imsi is None:
                return self._refuse("wrong-credential", msg, Code.FORBIDDEN)
            if imsi is not None and imsi != entry.imsi:
                return self._refuse("endpoint-mismatch", msg, Code.FORBIDDEN)
            imsi = entry.imsi
        elif not self._allow_nosec or imsi is None:
            return self._refuse("nosec", msg, Code.FORBIDDEN)
        sim = self._sims.find_sim(Imsi(imsi))
        if sim is None or sim.state not in (SimState.ACTIVE, SimState.TEST):
            return self._refuse("sim-not-active", msg, Code.FORBIDDEN)
        if self.status.get(name) == "provisioning":
            return msg.reply(Code.CHANGED)
        self.status[name] = "provisioning"
        task = asyncio.get_running_loop().create_task(
            self._provision(peer, name, imsi, sim.tenant_id, pct, sim.iccid.value, imei))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return msg.reply(Code.CHANGED)

    async def _op(self, peer: Peer, code: int, path: Sequence[int | str], payload: bytes = b"",
                  fmt: int | None = None) -> None:
        options: list[tuple[int, bytes]] = [(Opt.URI_PATH, str(p).encode()) for p in path]
        if fmt is not None:
            options.append((Opt.CONTENT_FORMAT, uint_option(fmt)))
        try:
            resp = await exchange(self.endpoint, peer, Message(CON, code, 0, b"",
                                                               tuple(options), payload),
                                  timeout=60.0)
        except (BodyTooLarge, DecodeError) as exc:
            raise ConnectionError(f"block-wise transfer failed: {exc}") from exc
        if not 0x40 <= resp.code < 0x80:
            raise ConnectionError(f"device answered {resp.code >> 5}.{resp.code & 31:02d} "
                                  f"to {code} on /{'/'.join(map(str, path))}")

    async def _write(self, peer: Peer, path: Path, values: Mapping[Path, Value],
                     fmt: int) -> None:
        await self._op(peer, Code.PUT, path, encode_content(fmt, values, path), fmt)

    async def _provision(self, peer: Peer, name: str, imsi: str, tenant_id: str,
                         fmt: int, iccid: str = "", imei: str | None = None) -> None:
        try:
            # Bootstrap-Delete "/" keeps only the bootstrap account (Core §6.1.7.5).
            await self._op(peer, Code.DELETE, ())
            enrolled = None if self.est is None else self.est.take(imsi)
            issued = None if self.certificates is None or enrolled is not None else (
                self.certificates(tenant_id, iccid, imsi, imei))
            if enrolled is not None:  # the device holds its key (EST-coaps, Mode 4)
                security: dict[Path, Value] = {
                    (0, 1, 2): SECURITY_MODE_EST, (0, 1, 3): enrolled[0],
                    (0, 1, 4): enrolled[1]}
            elif issued is not None:
                cert, private, trust = issued
                security = {
                    (0, 1, 2): SECURITY_MODE_CERTIFICATE, (0, 1, 3): cert, (0, 1, 4): trust,
                    (0, 1, 5): private}
            else:
                identity, key = self._credentials.issue(DM, imsi, tenant_id)
                security = {(0, 1, 2): SECURITY_MODE_PSK, (0, 1, 3): identity.encode(),
                            (0, 1, 4): b"", (0, 1, 5): key}
            await self._write(peer, (0, 1), {
                (0, 1, 0): self.dm_uri, (0, 1, 1): False, **security, (0, 1, 10): 1}, fmt)
            await self._write(peer, (1, 1), {
                (1, 1, 0): 1, (1, 1, 1): self._dm_lifetime, (1, 1, 6): True,
                (1, 1, 7): "U"}, fmt)
            ent = self.enterprise(tenant_id)
            if ent is not None:
                ent_identity, ent_key = self._credentials.issue(
                    f"ent{ent.short_server_id}", imsi, tenant_id)
                await self._write(peer, (0, 2), {
                    (0, 2, 0): ent.uri, (0, 2, 1): False, (0, 2, 2): 0,
                    (0, 2, 3): ent_identity.encode(), (0, 2, 4): b"", (0, 2, 5): ent_key,
                    (0, 2, 10): ent.short_server_id}, fmt)
                await self._write(peer, (1, 2), {
                    (1, 2, 0): ent.short_server_id, (1, 2, 1): ent.lifetime,
                    (1, 2, 6): True, (1, 2, 7): "U"}, fmt)
            await self._op(peer, Code.POST, ("bs",))
        except (ConnectionError, TimeoutError, ConnectionResetError, SimtrustError) as exc:
            log.info("bootstrap of %s failed: %s", name, type(exc).__name__)
            self.status[name] = f"failed: {exc}"
            return
        self.status[name] = "finished"
