"""EAP-AKA and EAP-AKA' over RADIUS: the RFC key-derivation vectors, and whole
authentications against an independent peer (tests/aaa/eap_peer.py: MILENAGE on
cryptography's AES, keys on hmac and its own SHA-1 compression, RADIUS on pyrad) —
permanent, pseudonym and fast re-authentication identities, AT_AUTS re-synchronisation,
a wrong RES, a suspended SIM, MSK delivered in MS-MPPE keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyrad.packet import AccessAccept, AccessReject

from simtrust.aaa import EapAkaServer, EapIdentityStore
from simtrust.aaa._eap import aka_keys, aka_prime_keys, fips186_prf
from simtrust.subscriber import OpKind, SimSecrets, SimState, TuakParams
from simtrust.subscriber.auc import Tuak
from simtrust.subscriber.auc import Usim as AucUsim
from simtrust.subscriber.auc import ck_ik_prime as auc_ck_ik_prime

from . import eap_peer
from .conftest import K1, OPC1, SECRET, Aaa, iccid, imsi
from .eap_peer import AKA, AKA_PRIME, Peer, Usim

VECTORS = json.loads((Path(__file__).parent / "data" / "eap_aka_vectors.json").read_text())
CASES = VECTORS["rfc5448_appendix_c"]["cases"]
REALM = "wlan.mnc001.mcc001.3gppnetwork.org"


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"case{c['case']}")
def test_rfc5448_appendix_c(case: dict[str, str]) -> None:
    ck_p, ik_p = auc_ck_ik_prime(h(case["ck"]), h(case["ik"]), case["network_name"],
                                 h(case["autn"])[:6])
    assert (case["ck_prime"], case["ik_prime"]) == (ck_p.hex(), ik_p.hex())
    keys = aka_prime_keys(case["identity"].encode(), ck_p, ik_p)
    assert case["k_encr"] == keys.k_encr.hex()
    assert case["k_aut"] == keys.k_aut.hex()
    assert case["k_re"] == keys.k_re.hex()
    assert case["msk"] == keys.msk.hex()
    assert case["emsk"] == keys.emsk.hex()
    # The test peer reproduces the same vectors (so it can be trusted as a peer).
    peer_ck, peer_ik = eap_peer.ck_ik_prime(h(case["ck"]), h(case["ik"]),
                                            case["network_name"].encode(), h(case["autn"])[:6])
    assert (ck_p, ik_p) == (peer_ck, peer_ik)
    material = eap_peer.prf_prime(ik_p + ck_p, b"EAP-AKA'" + case["identity"].encode(), 208)
    assert case["msk"] == material[80:144].hex()


def test_rfc4187_prf() -> None:
    prf = VECTORS["rfc4187_appendix_a_prf"]
    assert prf["output"] == fips186_prf(h(prf["xkey"]), 40).hex()
    assert prf["output"] == eap_peer.fips_prf(h(prf["xkey"]), 40).hex()
    keys = aka_keys(b"0001010000000001@realm", bytes(range(16)), bytes(range(16, 32)))
    mk = eap_peer.hashlib.sha1(b"0001010000000001@realm" + bytes(range(16))
                               + bytes(range(16, 32))).digest()
    assert eap_peer.fips_prf(mk, 160)[32:96] == keys.msk


def test_peer_milenage_matches_ts_35_208(shared_dir: Path) -> None:
    sets = json.loads((shared_dir / "vectors" / "3gpp" / "milenage_ts35208.json").read_text())
    for s in sets["sets"]:
        usim = Usim(h(s["K"]), h(s["OPc"]))
        f = usim.functions(h(s["RAND"]), h(s["SQN"]), h(s["AMF"]))
        assert {k: f[k].hex() for k in f} == {k: s[k] for k in f}, s["set"]


@pytest.fixture
def peer(aaa: Aaa) -> Iterator[Peer]:
    aaa.add_sim(1)
    p = Peer(Usim(K1, OPC1), str(imsi(1)), SECRET.encode(), aaa.auth_port)
    try:
        yield p
    finally:
        p.close()


def _identity(prefix: str, n: int = 1) -> bytes:
    return f"{prefix}{imsi(n)}@{REALM}".encode()


@pytest.mark.parametrize(("prefix", "method"), [("6", AKA_PRIME), ("0", AKA)])
def test_full_authentication_delivers_msk_and_address(aaa: Aaa, peer: Peer, prefix: str,
                                                      method: int) -> None:
    result = peer.authenticate(_identity(prefix))
    assert AccessAccept == result.code
    assert method == result.method
    assert [1] == result.seen
    assert ["10.45.0.1"] == result.reply["Framed-IP-Address"]
    assert 64 == len(result.msk)
    assert aaa.services.server.eap is not None


def test_pseudonym_then_fast_reauthentication(aaa: Aaa, peer: Peer) -> None:
    first = peer.authenticate(_identity("6"))
    assert AccessAccept == first.code
    assert first.pseudonym.startswith(b"7")
    by_pseudonym = peer.authenticate(first.pseudonym + f"@{REALM}".encode())
    assert AccessAccept == by_pseudonym.code
    assert [1] == by_pseudonym.seen
    reauth = peer.authenticate(by_pseudonym.reauth_id)
    assert AccessAccept == reauth.code
    assert [13] == reauth.seen
    again = peer.authenticate(peer.reauth["id"])  # type: ignore[arg-type]
    assert AccessAccept == again.code
    assert [13] == again.seen
    assert again.msk != reauth.msk


@pytest.mark.parametrize("prefix", ["6", "0"])
def test_pseudonym_and_reauth_identity_survive_a_restart(aaa: Aaa, peer: Peer,
                                                         prefix: str) -> None:
    """The identities handed out are in the store: a server with empty memory (a restarted
    process) still knows the pseudonym, and the re-authentication identity with its keys."""
    rt = aaa.rt
    first = peer.authenticate(_identity(prefix))
    assert AccessAccept == first.code
    old = aaa.services.server.eap
    assert isinstance(old, EapAkaServer)
    old.close()  # writes what is queued, as a shutdown does
    aaa.services.server.eap = EapAkaServer(
        rt.subscriber.auth, rt.audit, identities=EapIdentityStore(rt.db, rt.keyring, rt.clock))
    reauth = peer.authenticate(first.reauth_id)
    assert AccessAccept == reauth.code
    assert [13] == reauth.seen
    by_pseudonym = peer.authenticate(first.pseudonym + f"@{REALM}".encode())
    assert AccessAccept == by_pseudonym.code
    assert [1] == by_pseudonym.seen  # straight to the challenge: the pseudonym was known
    # A re-authentication identity is good once, in memory and in the store.
    replay = peer.authenticate(first.reauth_id)
    assert [5, 1] == replay.seen[:2]
    assert aaa.services.server.eap.close() is None
    k_aut = peer.reauth["keys"]["k_aut"]  # type: ignore[index]
    blobs = [bytes(r[0]) for r in rt.db.query(
        "SELECT keys_sealed FROM aaa_eap_identities WHERE kind = 'reauth'")]
    assert blobs
    assert all(k_aut not in blob for blob in blobs)  # sealed at rest


def test_eap_aka_fast_reauthentication(peer: Peer) -> None:
    first = peer.authenticate(_identity("0"))
    assert first.reauth_id.startswith(b"4")
    reauth = peer.authenticate(first.reauth_id)
    assert AccessAccept == reauth.code
    assert [13] == reauth.seen


def test_unknown_identities_are_asked_for_the_permanent_one(peer: Peer) -> None:
    stale = peer.authenticate(f"7unknownpseudonym@{REALM}".encode())
    assert AccessAccept == stale.code
    assert [5, 1] == stale.seen
    anonymous = peer.authenticate(f"anonymous@{REALM}".encode())
    assert AccessAccept == anonymous.code
    assert [5, 1] == anonymous.seen


def test_sqn_out_of_range_is_resynchronised_with_auts(aaa: Aaa, peer: Peer) -> None:
    peer.usim.sqn_ms = 1 << 40
    result = peer.authenticate(_identity("6"))
    assert AccessAccept == result.code
    assert [1, 1] == result.seen
    events = aaa.rt.audit.query(action="auc.resync")
    assert ["success"] == [e.outcome for e in events]


def test_wrong_res_is_rejected_with_eap_failure(aaa: Aaa, peer: Peer) -> None:
    result = peer.authenticate(_identity("6"), tamper_res=True)
    assert AccessReject == result.code
    events = aaa.rt.audit.query(action="radius.eap")
    assert ["res"] == [e.reason for e in events]


def test_suspended_sim_gets_no_challenge(aaa: Aaa, peer: Peer) -> None:
    aaa.rt.subscriber.inventory.transition(iccid(1), SimState.SUSPENDED, actor="t")
    result = peer.authenticate(_identity("6"))
    assert AccessReject == result.code
    assert [] == result.seen


def test_attach_rules_still_apply_after_eap(aaa: Aaa, peer: Peer) -> None:
    extra: dict[str, Any] = {"3GPP-IMEISV": "3520990000000101", "3GPP-SGSN-MCC-MNC": "26202"}
    result = peer.authenticate(_identity("6"), extra=extra)
    assert AccessReject == result.code
    assert any("roaming-not-permitted" in m for m in result.reply["Reply-Message"])


class _SimtrustUsim:
    """simtrust's own USIM (not an independent peer) playing a TUAK SIM."""

    def __init__(self, k: bytes, topc: bytes) -> None:
        self.usim = AucUsim(Tuak(k, topc, res_bits=64, mac_bits=64, ck_bits=128, ik_bits=128))

    def authenticate(self, rand: bytes, autn: bytes) -> tuple[bytes, bytes, bytes] | bytes:
        response, self.usim = self.usim.authenticate(rand, autn)
        return response.res, response.ck, response.ik


def test_tuak_sim_authenticates_with_eap_aka_prime(aaa: Aaa) -> None:
    k, topc = bytes(range(32)), bytes(range(32, 64))
    aaa.add_sim(7, secrets=SimSecrets(k, topc, OpKind.TOPC),
                tuak=TuakParams(res_bits=64, mac_bits=64, ck_bits=128, ik_bits=128))
    peer = Peer(_SimtrustUsim(k, topc), str(imsi(7)), SECRET.encode(),  # type: ignore[arg-type]
                aaa.auth_port)
    try:
        result = peer.authenticate(_identity("6", 7))
    finally:
        peer.close()
    assert AccessAccept == result.code
    assert 64 == len(result.msk)
