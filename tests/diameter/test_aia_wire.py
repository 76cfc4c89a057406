"""The AIA's wire form, encoded straight from the vectors, equals the answer built AVP by AVP."""

from __future__ import annotations

from typing import Any, cast

from hypothesis import given
from hypothesis import strategies as st

from simtrust.diameter import Avp, Message
from simtrust.diameter._apps import CoreNetworkApps
from simtrust.diameter._node import answer_to
from simtrust.subscriber import AuthInfo, AuthQuery, HssOutcome, Plmn
from simtrust.subscriber.auc.vectors import EpsVector

V = 10415
S6A = 16777251

vectors = st.one_of(
    st.builds(EpsVector, st.binary(min_size=16, max_size=16), st.binary(min_size=4, max_size=16),
              st.binary(min_size=16, max_size=16), st.binary(min_size=32, max_size=32)),
    # sizes the AuC never produces take the AVP-by-AVP path: still the same bytes
    st.builds(EpsVector, st.binary(max_size=40), st.binary(max_size=40),
              st.binary(max_size=40), st.binary(max_size=40)))
ids = st.integers(min_value=0, max_value=2**32 - 1)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-;é", min_size=1, max_size=40)


def _by_avps(request: Message, found: list[EpsVector], host: str, realm: str) -> bytes:
    """The AIA of TS 29.272 §7.2.6 as Avp objects, encoded by Message.encode."""
    info = Avp.grouped(1413, [
        Avp.grouped(1414, [Avp.u32(1419, i, V), Avp(1447, v.rand, V), Avp(1448, v.xres, V),
                           Avp(1449, v.autn, V), Avp(1450, v.kasme, V)], V)
        for i, v in enumerate(found, 1)], V)
    return answer_to(request, [
        request.avps[0],
        Avp.grouped(260, [Avp.u32(266, V), Avp.u32(258, S6A)]),
        Avp.u32(268, 2001), info,
        Avp.u32(277, 1), Avp.text(264, host), Avp.text(296, realm),
    ]).encode()


@given(found=st.lists(vectors, min_size=1, max_size=7), session=names, host=names,
       realm=names, hbh=ids, e2e=ids, flags=st.sampled_from([0x80, 0xC0, 0xD0]))
def test_the_encoded_aia_is_the_answer_built_avp_by_avp(
    found: list[EpsVector], session: str, host: str, realm: str, hbh: int, e2e: int,
    flags: int,
) -> None:
    apps = CoreNetworkApps(cast(Any, None), cast(Any, None), host, realm)
    request = Message(318, flags, S6A, hbh, e2e, [
        Avp.text(263, session), Avp.u32(277, 1), Avp.text(1, "001010000000001")])
    query = AuthQuery("001010000000001", Plmn("001", "01"), len(found), None, "diameter:m")
    encoded = apps._aia(request, query, AuthInfo(HssOutcome.OK, "", list(found)))
    assert _by_avps(request, found, host, realm) == encoded


def test_a_refused_air_is_still_answered_with_a_message() -> None:
    apps = CoreNetworkApps(cast(Any, None), cast(Any, None), "hss", "realm")
    request = Message(318, 0xC0, S6A, 1, 2, [Avp.text(263, "s;1")])
    query = AuthQuery("001010000000001", Plmn("001", "01"), 1, None, "diameter:m")
    answer = apps._aia(request, query, AuthInfo(HssOutcome.UNKNOWN_EPS_SUBSCRIPTION, ""))
    assert isinstance(answer, Message)
    assert 5420 == answer.find(297).children()[1].as_u32()  # type: ignore[union-attr]
