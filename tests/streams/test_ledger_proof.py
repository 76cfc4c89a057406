"""A meter reading proven from the ledger alone (issue 17, "Done when"): the frame's
signature, its batch root anchored on the ledger, and its author key named by the SIM's
DID document on the ledger; on SQLite and PostgreSQL, through Python, HTTP and the CLI."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.api.app import create_app
from simtrust.cli import main
from simtrust.config import load_settings
from simtrust.crypto.merkle import merkle_root
from simtrust.errors import DecodeError, InvalidSignature, NotFound, SimtrustError
from simtrust.identity import Ed25519Signer
from simtrust.runtime import Runtime
from simtrust.streams import (
    Author,
    MeterReading,
    did_ed25519_keys,
    encode_reading,
    frame_id,
    prove_reading_on_ledger,
)
from tests.conftest import close_runtime, make_runtime
from tests.streams.test_service import Box
from tests.streams.world import TENANT, setup_tenant, sim_meter


@pytest.fixture
def box(store_kind: str, tmp_path: Path) -> Iterator[Box]:
    holder = Box(make_runtime(store_kind, tmp_path / "home"))
    yield holder
    close_runtime(holder.rt)


def _stored_reading(rt: Runtime, anchor: bool = True) -> tuple[str, str]:
    setup_tenant(rt, sims=1)
    meter = sim_meter(rt, 1)
    channel = rt.streams.open_channel(TENANT, meter.author.announce.to_bytes(),
                                      actor="t")["id"]
    rt.streams.register_meter(TENANT, channel, meter.credential, actor="t")
    frame = meter.author.publish(encode_reading(MeterReading(meter.meter_did, 1_000, 100)))
    message_id = str(rt.streams.publish(channel, frame.to_bytes(), actor="t")["message_id"])
    if anchor:
        rt.streams.anchor(channel, actor="t")
    return message_id, meter.sim.did


def test_a_stored_reading_is_proven_from_the_ledger(box: Box) -> None:
    rt = box.rt
    message_id, sim_did = _stored_reading(rt)
    proof = rt.prove_reading(message_id)
    assert (True, message_id, sim_did) == (proof["verified"], proof["message_id"],
                                           proof["sim_did"])
    anchor = rt.ledger.anchor_covering(proof["domain"], proof["position"])
    assert anchor is not None
    assert anchor["root"].hex() == proof["root"]


def test_changed_bytes_a_foreign_key_or_no_anchor_fail(sqlite_runtime: Runtime) -> None:
    rt = sqlite_runtime
    message_id, sim_did = _stored_reading(rt)
    stored = rt.streams.message(message_id)
    frame, proof = base64.b64decode(stored["frame"]), stored["proof"]

    def anchor_at(domain: str, position: int) -> dict[str, Any] | None:
        return rt.ledger.anchor_covering(domain, position)

    def keys(_did: str) -> list[bytes]:
        return did_ed25519_keys(rt.identity.resolve(sim_did).document)

    assert prove_reading_on_ledger(frame, proof, sim_did, anchor_at=anchor_at,
                                   sim_keys=keys)["verified"]
    changed = bytearray(frame)
    changed[170] ^= 1  # a payload byte: the signature no longer verifies
    with pytest.raises(InvalidSignature):
        prove_reading_on_ledger(bytes(changed), proof, sim_did, anchor_at=anchor_at,
                                sim_keys=keys)
    with pytest.raises(InvalidSignature):  # signed, anchored, but not by a key of that SIM
        prove_reading_on_ledger(frame, proof, sim_did, anchor_at=anchor_at,
                                sim_keys=lambda _did: [b"\x01" * 32])
    with pytest.raises(NotFound):
        prove_reading_on_ledger(frame, proof, sim_did, anchor_at=lambda *_: None, sim_keys=keys)
    with pytest.raises(NotFound):
        prove_reading_on_ledger(frame, None, sim_did, anchor_at=anchor_at, sim_keys=keys)
    moved = {**proof, "position": proof["position"] + 1}
    with pytest.raises((InvalidSignature, NotFound)):
        prove_reading_on_ledger(frame, moved, sim_did, anchor_at=anchor_at, sim_keys=keys)


def test_not_anchored_yet_is_not_found(sqlite_runtime: Runtime) -> None:
    message_id, _ = _stored_reading(sqlite_runtime, anchor=False)
    with pytest.raises(NotFound):
        sqlite_runtime.prove_reading(message_id)


def test_api(sqlite_runtime: Runtime) -> None:
    rt = sqlite_runtime
    message_id, sim_did = _stored_reading(rt)
    operator = rt.tenants.create_key("operator-admin", "operator")
    rt.tenants.create_tenant("other", "Other")
    stranger = rt.tenants.create_key("tenant-admin", "other admin", "other")
    with TestClient(create_app(rt)) as api:
        ok = api.get(f"/v1/streams/messages/{message_id}/ledger-proof",
                     headers={"Authorization": f"Bearer {operator.secret}"})
        assert (200, sim_did) == (ok.status_code, ok.json()["sim_did"]), ok.text
        hidden = api.get(f"/v1/streams/messages/{message_id}/ledger-proof",
                         headers={"Authorization": f"Bearer {stranger.secret}"})
        assert 404 == hidden.status_code
        assert hidden.headers["content-type"].startswith("application/problem+json")


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3), max_leaves=10)
_SIGNER = Ed25519Signer.generate()
_AUTHOR = Author(_SIGNER, lambda: 1_767_225_600_000)  # type: ignore[arg-type]
_FRAME = _AUTHOR.publish(b"reading").to_bytes()
_ROOT = merkle_root([frame_id(_FRAME)])  # the root of a one-message batch


@settings(max_examples=150, deadline=None)
@given(frame=st.one_of(st.just(_FRAME), st.binary(max_size=300)),
       proof=st.dictionaries(st.sampled_from(
           ["domain", "position", "message_id", "inclusion", "first", "x"]),
           _json | st.just(frame_id(_FRAME).hex()) | st.integers(0, 3), max_size=6),
       keys=st.sampled_from([[], [_SIGNER.public_key]]))
def test_untrusted_frames_and_proofs_never_crash(frame: bytes, proof: dict[str, Any],
                                                 keys: list[bytes]) -> None:
    """Arbitrary bytes or a real frame with an arbitrary proof: evidence or a simtrust error."""
    with contextlib.suppress(SimtrustError):
        prove_reading_on_ledger(frame, proof, "did:example:x", anchor_at=lambda *_: {
            "root": _ROOT, "message_id": b"\0" * 32, "order": 1}, sim_keys=lambda _did: keys)


def test_decode_errors_are_named() -> None:
    with pytest.raises(DecodeError):
        prove_reading_on_ledger(b"junk", {}, "did:example:x", anchor_at=lambda *_: None,
                                sim_keys=lambda _did: [])


def test_cli_prove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    rt = Runtime.initialise(load_settings(env={}, home=home))
    try:
        message_id, sim_did = _stored_reading(rt)
    finally:
        rt.close()
    monkeypatch.setenv("SIMTRUST_HOME", str(home))
    with pytest.raises(SystemExit) as done:
        main(["stream", "prove", message_id, "--json"])
    out = capsys.readouterr()
    assert (0, sim_did) == (done.value.code or 0, json.loads(out.out)["sim_did"]), out.err
    with pytest.raises(SystemExit) as done:
        main(["stream", "prove", "00" * 32, "--json"])
    out = capsys.readouterr()
    assert (1, "") == (done.value.code, out.out)
    assert 1 == len(out.err.strip().splitlines())
