"""The C key derivation ``_native``: the same octets as the Python reference, the TS 33.401
K_ASME vector, HMAC equal to the standard library's, and clear errors on misuse.

Without the extension these tests skip, except the first, which fails when
``SIMTRUST_REQUIRE_NATIVE=1`` (CI) so that a build that silently fell back is noticed.
"""

from __future__ import annotations

import hmac
import os
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from simtrust.errors import InvalidInput
from simtrust.subscriber.auc import (
    AucSqnState,
    EpsVector,
    HeAv5g,
    Milenage,
    eps_vectors,
    he_avs_5g,
    kausf,
    res_star,
    vectors,
)
from tests.subscriber.auc.conftest import h

try:
    from simtrust.subscriber.auc import _native
except ImportError:
    _native = None  # type: ignore[assignment]  # the extension is optional; tests skip

needs_native = pytest.mark.skipif(
    _native is None,
    reason="simtrust.subscriber.auc._native is not built (no C compiler or OpenSSL headers "
    "when the package was installed); the pure-Python key derivation is in use",
)

# Batch sizes at the edges the code switches on: the batch path (vectors._BATCH_MIN = 4)
# and the release of the GIL in _native.c (NOGIL_MIN = 256).
EDGES = (1, 3, 4, 5, 255, 256, 257)


@contextmanager
def python_kdf() -> Iterator[None]:
    """Run the batch generators on the pure-Python key derivation."""
    saved = vectors._native
    vectors._native = None
    try:
        yield
    finally:
        vectors._native = saved


def test_extension_is_built_when_required() -> None:
    if _native is None:
        if os.environ.get("SIMTRUST_REQUIRE_NATIVE") == "1":
            pytest.fail(
                "SIMTRUST_REQUIRE_NATIVE=1 but simtrust.subscriber.auc._native does not import: "
                "install a C compiler and libssl-dev, then reinstall the package"
            )
        pytest.skip(
            "simtrust.subscriber.auc._native is not built "
            "(set SIMTRUST_REQUIRE_NATIVE=1 to make this a failure)"
        )
    assert "native" == vectors.KDF_BACKEND


def _rand_source(seed: int) -> Callable[[int], bytes]:
    rng = random.Random(seed)
    return rng.randbytes


sizes = st.sampled_from(EDGES) | st.integers(min_value=1, max_value=40)
octets16 = st.binary(min_size=16, max_size=16)
states = st.builds(
    AucSqnState, seq=st.integers(min_value=0, max_value=(1 << 43) - 300), ind=st.integers(0, 31)
)


@needs_native
@settings(max_examples=60, deadline=None)
@given(k=octets16, opc=octets16, state=states, count=sizes, seed=st.integers(0, 2**32))
@example(k=bytes(16), opc=bytes(16), state=AucSqnState(), count=4, seed=0)
def test_eps_vectors_native_equals_python(
    k: bytes, opc: bytes, state: AucSqnState, count: int, seed: int
) -> None:
    mil = Milenage(k, opc)
    sn_id = random.Random(seed).randbytes(3)
    native, native_after = eps_vectors(mil, state, count, sn_id, rand=_rand_source(seed))
    with python_kdf():
        reference, after = eps_vectors(mil, state, count, sn_id, rand=_rand_source(seed))
    assert reference == native
    assert after == native_after
    assert [EpsVector] * count == [type(v) for v in native]


@needs_native
@settings(max_examples=60, deadline=None)
@given(
    k=octets16,
    opc=octets16,
    state=states,
    count=sizes,
    seed=st.integers(0, 2**32),
    sn_name=st.text(max_size=80),
)
def test_he_avs_native_equals_python(
    k: bytes, opc: bytes, state: AucSqnState, count: int, seed: int, sn_name: str
) -> None:
    mil = Milenage(k, opc)
    native, _ = he_avs_5g(mil, state, count, sn_name, rand=_rand_source(seed))
    with python_kdf():
        reference, _ = he_avs_5g(mil, state, count, sn_name, rand=_rand_source(seed))
    assert reference == native
    assert [HeAv5g] * count == [type(v) for v in native]


@pytest.mark.parametrize("count", [1, 4])
def test_overlong_serving_network_name_is_invalid_input_on_every_path(count: int) -> None:
    with pytest.raises(InvalidInput, match="65535"):
        he_avs_5g(Milenage(bytes(16), bytes(16)), AucSqnState(), count, "x" * 65536)


@needs_native
@settings(max_examples=40, deadline=None)
@given(
    records=st.integers(min_value=1, max_value=20).flatmap(
        lambda n: st.tuples(st.binary(min_size=64 * n, max_size=64 * n), st.just(n))
    ),
    sn_name=st.text(min_size=1, max_size=40),
    amf=st.binary(min_size=2, max_size=2),
)
def test_he_av_batch_matches_the_kdf_functions(
    records: tuple[bytes, int], sn_name: str, amf: bytes
) -> None:
    """Checked against kdf.res_star and kdf.kausf, not the batch code it replaces."""
    raw, n = records
    rands = bytes(range(16)) * n
    got = _native.he_av_batch(raw, rands, sn_name.encode(), amf, HeAv5g)
    for i, av in enumerate(got):
        r = raw[64 * i : 64 * i + 64]
        ck, ik, x = r[32:48], r[48:64], r[16:22]
        expected = HeAv5g(
            rands[16 * i : 16 * i + 16],
            x + amf + r[:8],
            res_star(ck, ik, sn_name, rands[16 * i : 16 * i + 16], r[24:32]),
            kausf(ck, ik, sn_name, x),
        )
        assert expected == av


@needs_native
@settings(max_examples=40, deadline=None)
@given(count=sizes, length=st.integers(min_value=0, max_value=200), seed=st.integers(0, 2**32))
def test_hmac_sha256_batch_equals_the_standard_library(count: int, length: int, seed: int) -> None:
    rng = random.Random(seed)
    keys, messages = rng.randbytes(32 * count), rng.randbytes(length * count)
    expected = b"".join(
        hmac.digest(keys[32 * i : 32 * i + 32], messages[length * i : length * (i + 1)], "sha256")
        for i in range(count)
    )
    assert expected == _native.hmac_sha256_batch(keys, messages, count)


def _kasme_case(kdf_vectors: dict[str, Any]) -> tuple[bytes, bytes, bytes, bytes]:
    """(record, SN id, CK ‖ IK, K_ASME) of the TS 33.401 vector, as a kernel record."""
    v = kdf_vectors["kasme_ts33401"]
    x = bytes(a ^ b for a, b in zip(h(v["SQN"]), h(v["AK"]), strict=True))
    ck_ik = h(v["CK"]) + h(v["IK"])
    record = bytes(16) + x + bytes(10) + ck_ik
    return record, h(v["serving_network_id"]), ck_ik, h(v["KASME"])


@needs_native
def test_kasme_vector_through_eps_batch(kdf_vectors: dict[str, Any]) -> None:
    record, sn_id, _, k_asme = _kasme_case(kdf_vectors)
    (vec,) = _native.eps_batch(record, bytes(16), sn_id, b"\x80\x00", EpsVector)
    assert k_asme == vec.kasme
    assert record[16:22] + b"\x80\x00" + record[:8] == vec.autn


@needs_native
def test_kasme_vector_through_hmac_sha256_batch(kdf_vectors: dict[str, Any]) -> None:
    record, sn_id, ck_ik, k_asme = _kasme_case(kdf_vectors)
    message = b"\x10" + sn_id + b"\x00\x03" + record[16:22] + b"\x00\x06"
    # The same pair three times: each output is computed on its own.
    assert k_asme * 3 == _native.hmac_sha256_batch(ck_ik * 3, message * 3, 3)


@needs_native
def test_buffers_other_than_bytes_are_accepted() -> None:
    keys, messages = bytes(range(64)), bytes(10)
    expected = _native.hmac_sha256_batch(keys, messages, 2)
    assert expected == _native.hmac_sha256_batch(bytearray(keys), memoryview(messages), 2)


RAW, RANDS = bytes(128), bytes(32)

MISUSE: list[tuple[str, Callable[[], object], str]] = [
    ("empty raw", lambda: _native.eps_batch(b"", b"", b"abc", b"\x80\x00", EpsVector), "raw"),
    ("partial record", lambda: _native.eps_batch(RAW[:100], RANDS, b"abc", b"ab", EpsVector), "raw"),
    ("rands short", lambda: _native.eps_batch(RAW, RANDS[:16], b"abc", b"ab", EpsVector), "rands"),
    ("sn_id length", lambda: _native.eps_batch(RAW, RANDS, b"ab", b"ab", EpsVector), "sn_id"),
    ("eps amf length", lambda: _native.eps_batch(RAW, RANDS, b"abc", b"a", EpsVector), "amf"),
    ("he rands long", lambda: _native.he_av_batch(RAW, RANDS * 2, b"n", b"ab", HeAv5g), "rands"),
    ("he amf length", lambda: _native.he_av_batch(RAW, RANDS, b"n", b"abc", HeAv5g), "amf"),
    ("sn_name length", lambda: _native.he_av_batch(RAW, RANDS, bytes(65536), b"ab", HeAv5g), "sn_name"),
    ("count zero", lambda: _native.hmac_sha256_batch(b"", b"", 0), "count"),
    ("keys length", lambda: _native.hmac_sha256_batch(bytes(63), bytes(4), 2), "keys"),
    ("messages split", lambda: _native.hmac_sha256_batch(bytes(64), bytes(5), 2), "messages"),
]  # fmt: skip


@needs_native
@pytest.mark.parametrize(("call", "field"), [m[1:] for m in MISUSE], ids=[m[0] for m in MISUSE])
def test_misuse_raises_value_error_naming_the_argument(
    call: Callable[[], object], field: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{field} must") as info:
        call()
    assert type(info.value) is ValueError


@needs_native
def test_record_class_must_be_a_tuple_subclass() -> None:
    with pytest.raises(TypeError, match="tuple subclass"):
        _native.eps_batch(RAW, RANDS, b"abc", b"ab", dict)  # type: ignore[arg-type]


@needs_native
def test_non_buffer_arguments_are_type_errors() -> None:
    with pytest.raises(TypeError):
        _native.hmac_sha256_batch("not bytes", bytes(4), 1)  # type: ignore[arg-type]


# -- milenage_eps: f1-f5 and K_ASME in one call ---------------------------------------


@needs_native
@settings(max_examples=300)
@given(
    k=st.binary(min_size=16, max_size=16),
    opc=st.binary(min_size=16, max_size=16),
    rand=st.binary(min_size=16, max_size=16),
    sqn=st.binary(min_size=6, max_size=6),
    amf=st.binary(min_size=2, max_size=2),
    sn_id=st.binary(min_size=3, max_size=3),
)
def test_milenage_eps_equals_the_python_vector(
    k: bytes, opc: bytes, rand: bytes, sqn: bytes, amf: bytes, sn_id: bytes
) -> None:
    amf = bytes([amf[0] | 0x80, amf[1]])  # the separation bit eps_vector forces
    reference = vectors.eps_vector(Milenage(k, opc), sqn, amf, sn_id, rand)
    native = _native.milenage_eps(k, opc, rand, sqn, amf, sn_id, EpsVector)
    assert type(native) is EpsVector
    assert native == reference


@needs_native
def test_milenage_eps_matches_ts35208(milenage_set: dict[str, Any]) -> None:
    s = milenage_set
    rand, sqn, amf = h(s["RAND"]), h(s["SQN"]), h(s["AMF"])
    v = _native.milenage_eps(h(s["K"]), h(s["OPc"]), rand, sqn, amf, b"\x00\xf1\x10", EpsVector)
    sqn_xor_ak = f"{int(s['SQN'], 16) ^ int(s['f5'], 16):012x}"
    assert v.xres.hex() == s["f2"].lower()
    assert v.autn.hex() == sqn_xor_ak + s["AMF"].lower() + s["f1"].lower()
    ck_ik = h(s["f3"]) + h(s["f4"])
    msg = b"\x10\x00\xf1\x10\x00\x03" + bytes.fromhex(sqn_xor_ak) + b"\x00\x06"
    assert v.kasme == hmac.new(ck_ik, msg, "sha256").digest()


@needs_native
def test_eps_vectors_take_the_one_call_path_for_few_vectors(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = _native.milenage_eps

    def counting(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(_native, "milenage_eps", counting)
    alg = Milenage(bytes(range(16)), bytes(range(16, 32)))
    seeded = random.Random(7)
    out, _ = eps_vectors(alg, AucSqnState(), 2, b"\x00\xf1\x10",
                         rand=seeded.randbytes)
    assert len(calls) == 2
    seeded = random.Random(7)
    rands = seeded.randbytes(32)
    sqns, _ = AucSqnState().issue_joined(2)
    expected = [vectors.eps_vector(alg, sqns[6 * i:6 * i + 6], b"\x80\x00", b"\x00\xf1\x10",
                                   rands[16 * i:16 * i + 16]) for i in range(2)]
    assert out == expected


MILENAGE_MISUSE: list[tuple[str, tuple[bytes, ...], str]] = [
    ("k", (bytes(15), bytes(16), bytes(16), bytes(6), b"ab", b"abc"), "k"),
    ("opc", (bytes(16), bytes(17), bytes(16), bytes(6), b"ab", b"abc"), "opc"),
    ("rand", (bytes(16), bytes(16), bytes(8), bytes(6), b"ab", b"abc"), "rand"),
    ("sqn", (bytes(16), bytes(16), bytes(16), bytes(5), b"ab", b"abc"), "sqn"),
    ("amf", (bytes(16), bytes(16), bytes(16), bytes(6), b"a", b"abc"), "amf"),
    ("sn_id", (bytes(16), bytes(16), bytes(16), bytes(6), b"ab", b"abcd"), "sn_id"),
]


@needs_native
@pytest.mark.parametrize(("args", "field"), [m[1:] for m in MILENAGE_MISUSE],
                         ids=[m[0] for m in MILENAGE_MISUSE])
def test_milenage_eps_misuse_names_the_argument(args: tuple[bytes, ...], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field} must"):
        _native.milenage_eps(*args, EpsVector)
